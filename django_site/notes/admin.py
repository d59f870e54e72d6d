from django.contrib import admin

from django_site.notes.models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ("text", "created_at")
    search_fields = ("text",)
