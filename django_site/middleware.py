"""The HTTP->HTTPS redirect, sent to the port that serves HTTPS.

Behind the suite's proxy, HTTPS is published on another host port (HTTPS_PORT) than the app's plain HTTP
(APP_PORT). Django's SecurityMiddleware redirects to the requested host and port, so
`http://127.0.0.1:8000/admin/` went to `https://127.0.0.1:8000/admin/`, where nothing speaks TLS. With
SECURE_SSL_PORT set (compose sets it to HTTPS_PORT for prod), this middleware, just outside SecurityMiddleware
(which stays, so `manage.py check --deploy` still sees it), moves that redirect to the same host name on
SECURE_SSL_PORT. It touches nothing else: only a 301 whose Location is exactly Django's SSL redirect.
"""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port


class HttpsRedirectPortMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        port = settings.SECURE_SSL_PORT
        if not port or response.status_code != 301 or request.is_secure():
            return response
        try:
            host = request.get_host()  # checked against ALLOWED_HOSTS
        except DisallowedHost:  # SECURE_SSL_HOST's redirect never asked
            return response
        path = request.get_full_path()
        if response.get("Location") != f"https://{host}{path}":
            return response  # another redirect, or SECURE_SSL_HOST's
        domain, _ = split_domain_port(host)
        response["Location"] = f"https://{domain if port == 443 else f'{domain}:{port}'}{path}"
        return response
