"""An upload the way a user makes one: log in to the Django admin over HTTPS (through the proxy, CSRF and session
cookies as a browser keeps them), post a multipart form with a file, and follow where the file is served."""

from __future__ import annotations

import http.client
import re
import secrets
import ssl
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path


@dataclass(frozen=True)
class AdminUpload:
    """Where a project's admin takes a file: the add page, the file field, the other fields, and Python (run in the
    prod container) that prints the uploaded file's URL."""

    add_path: str
    file_field: str
    fields: dict[str, str]
    url_of_upload: str


@dataclass
class Browser:
    port: int
    cafile: Path
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> tuple[int, str, str]:
        """(status, body text, Location); cookies kept; Origin and Referer as a browser sends them on a POST."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        connection = http.client.HTTPSConnection("localhost", self.port, context=context, timeout=30)
        headers = {"Host": "localhost", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if method == "POST":
            headers |= {"Origin": "https://localhost", "Referer": f"https://localhost{path}",
                        "Content-Type": content_type}  # fmt: skip
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for header in response.msg.get_all("Set-Cookie") or []:
                self.cookies.update({name: morsel.value for name, morsel in SimpleCookie(header).items()})
            return response.status, text, response.getheader("Location", "")
        finally:
            connection.close()

    def form_token(self, path: str) -> str:
        status, text, _ = self.request("GET", path)
        assert status == 200, (path, status, text[:300])
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
        assert found, f"{path}: no CSRF token in the form"
        return found.group(1)


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"adopt-{secrets.token_hex(8)}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]  # fmt: skip
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: text/plain\r\n\r\n".encode() + content + b"\r\n")  # fmt: skip
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload_through_the_admin(browser: Browser, upload: AdminUpload, user: str, password: str, content: bytes) -> None:
    token = browser.form_token("/admin/login/")
    login = urllib.parse.urlencode({"username": user, "password": password, "csrfmiddlewaretoken": token,
                                    "next": "/admin/"}).encode()  # fmt: skip
    status, text, location = browser.request("POST", "/admin/login/", login, "application/x-www-form-urlencoded")
    assert status == 302 and "sessionid" in browser.cookies, ("login", status, location, text[:500])
    fields = {**upload.fields, "csrfmiddlewaretoken": browser.form_token(upload.add_path), "_save": "Save"}
    body, content_type = multipart(fields, upload.file_field, "uploaded.txt", content)
    status, text, location = browser.request("POST", upload.add_path, body, content_type)
    assert status == 302, ("upload", status, text[:500])
