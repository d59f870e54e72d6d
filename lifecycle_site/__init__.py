"""The suite's layer around an adopted Django project: settings (`lifecycle_site.settings`) and WSGI
(`lifecycle_site.wsgi`). Shipped in the images, never in the project's tree; the project's code is not edited."""
