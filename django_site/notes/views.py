import json

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from django_site.notes.forms import NoteForm
from django_site.notes.models import Note

NEWEST_NOTES_SHOWN = 50


def newest_notes():
    return Note.objects.all()[:NEWEST_NOTES_SHOWN]


@require_http_methods(["GET", "HEAD", "POST"])
def index(request):
    """The notes page: lists the newest notes and posts the form back to itself."""
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            form.save()
            # Redirect after POST so reloading the page does not add the note twice.
            return redirect("notes:index")
        status = 400
    else:
        form = NoteForm()
        status = 200
    return render(request, "notes/index.html", {"form": form, "notes": newest_notes()}, status=status)


# A token-less JSON demo API: it reads no session or cookie, so CSRF has nothing to protect here.
# Session-authenticated views (the page above, the admin) keep CSRF protection.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def notes_api(request):
    """GET: the newest notes and the total count. POST {"text": "..."}: create a note, 201."""
    if request.method == "POST":
        return create_note(request)
    notes = [note.as_json() for note in newest_notes()]
    return JsonResponse({"notes": notes, "count": Note.objects.count()})


def create_note(request):
    try:
        payload = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json_error("the request body is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("text", ""), str):
        return json_error('send a JSON object such as {"text": "buy milk"}')
    form = NoteForm(payload)
    if not form.is_valid():
        messages = [f"{field}: {message}" for field, errors in form.errors.items() for message in errors]
        return json_error("; ".join(messages))
    note = form.save()
    return JsonResponse(note.as_json(), status=201)


def json_error(message):
    return JsonResponse({"error": message}, status=400)
