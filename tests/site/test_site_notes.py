"""The notes app: model, JSON API and HTML page, against the real database."""

import json

import pytest

from django_site.notes.models import Note

pytestmark = pytest.mark.django_db


def post_json(client, payload):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post("/api/notes", data=body, content_type="application/json")


def test_note_round_trip_keeps_unicode_text():
    created = Note.objects.create(text="café ☕ and 🦄")
    loaded = Note.objects.get(pk=created.pk)
    assert loaded.text == "café ☕ and 🦄"
    assert loaded.created_at is not None


def test_notes_are_listed_newest_first():
    older = Note.objects.create(text="older")
    newer = Note.objects.create(text="newer")
    assert list(Note.objects.all()) == [newer, older]


def test_api_post_creates_note_then_get_lists_it(https_client):
    created = post_json(https_client, {"text": "buy milk"})
    assert created.status_code == 201
    note = created.json()
    assert note["text"] == "buy milk"
    assert set(note) == {"id", "text", "created_at"}

    listed = https_client.get("/api/notes")
    assert listed.status_code == 200
    assert listed.json() == {"notes": [note], "count": 1}


def test_api_also_answers_with_trailing_slash(https_client):
    assert post_json(https_client, {"text": "slash"}).status_code == 201
    response = https_client.get("/api/notes/")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_api_lists_at_most_fifty_newest_notes_and_counts_all(https_client):
    Note.objects.bulk_create(Note(text=f"note {number}") for number in range(55))
    body = https_client.get("/api/notes").json()
    assert body["count"] == 55
    assert len(body["notes"]) == 50
    assert body["notes"][0]["id"] > body["notes"][-1]["id"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(["text"], id="json-list-not-object"),
        pytest.param({}, id="text-missing"),
        pytest.param({"text": "   "}, id="text-blank"),
        pytest.param({"text": 42}, id="text-not-a-string"),
        pytest.param({"text": "x" * 201}, id="text-too-long"),
    ],
)
def test_api_rejects_bad_note_with_400_json_error(https_client, payload):
    response = post_json(https_client, payload)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert Note.objects.count() == 0


def test_api_accepts_text_of_exactly_200_characters(https_client):
    assert post_json(https_client, {"text": "x" * 200}).status_code == 201


def test_api_rejects_other_methods(https_client):
    assert https_client.delete("/api/notes").status_code == 405


def test_page_lists_notes_and_shows_form_with_csrf_token(https_client):
    Note.objects.create(text="already here")
    response = https_client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "already here" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="text"' in page


def test_page_form_post_creates_note_and_redirects(csrf_checking_https_client):
    client = csrf_checking_https_client
    page = client.get("/")
    token = page.context["csrf_token"]

    # Over HTTPS, Django's CSRF check also wants a same-origin Referer, as a browser sends.
    response = client.post(
        "/", {"text": "from the form", "csrfmiddlewaretoken": str(token)}, headers={"Referer": "https://testserver/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert Note.objects.get().text == "from the form"
    assert "from the form" in client.get("/").content.decode()


def test_page_form_post_without_csrf_token_is_refused(csrf_checking_https_client):
    response = csrf_checking_https_client.post("/", {"text": "forged"}, headers={"Referer": "https://testserver/"})
    assert response.status_code == 403
    assert Note.objects.count() == 0


def test_page_form_post_with_blank_text_shows_error(https_client):
    response = https_client.post("/", {"text": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert Note.objects.count() == 0


def test_note_admin_lists_notes(admin_client):
    Note.objects.create(text="seen by staff")
    response = admin_client.get("/admin/notes/note/", secure=True)
    assert response.status_code == 200
    assert "seen by staff" in response.content.decode()
