from django.urls import path, re_path

from django_site.notes import views

app_name = "notes"

urlpatterns = [
    path("", views.index, name="index"),
    # With and without the trailing slash: APPEND_SLASH cannot redirect a POST.
    re_path(r"^api/notes/?$", views.notes_api, name="api"),
]
