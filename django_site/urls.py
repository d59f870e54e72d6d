from django.contrib import admin
from django.urls import include, path, re_path

from django_site.views import health

urlpatterns = [
    # With and without the trailing slash: healthchecks and curl users rarely agree on it.
    re_path(r"^health/?$", health, name="health"),
    path("admin/", admin.site.urls),
    path("", include("django_site.notes.urls")),
]
