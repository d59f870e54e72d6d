from django import forms

from django_site.notes.models import Note


class NoteForm(forms.ModelForm):
    """Validates new notes for both the HTML page and the JSON API."""

    class Meta:
        model = Note
        fields = ("text",)
