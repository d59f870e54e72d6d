"""prod behind its HTTPS proxy, as a user meets it after `invoke up --stage prod`: a real TLS client that trusts only
the generated CA (never verification switched off), the whole site over HTTPS with no setting changed, HSTS from
Django (once), /health still plain HTTP on APP_PORT, plain HTTP on the HTTPS port answered by nothing, body limits,
and the certificate mounted read-only rather than built in."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from lifecycle.browser import CHROMIUM_FLAGS, new_nss_db, trust_ca
from lifecycle.tls import local_files
from tests.helpers import CHECKOUT
from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker
from tests.helpers.tools import UP_TIMEOUT

REPORTS = CHECKOUT / "reports"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(engine):
    """One prod stack behind its proxy, believing forwarded headers from the proxy only (the default); yields
    (checkout, what `invoke up` printed)."""
    project = IsolatedCheckout.new(trust_forwarded_headers=False)
    try:
        done = project.invoke_combined("up", "--stage", "prod", timeout=UP_TIMEOUT)
        assert done.returncode == 0, done.stdout[-4000:]
        yield project, done.stdout
    finally:
        project.remove()


@pytest.fixture(scope="module")
def checkout(site):
    return site[0]


@pytest.fixture(scope="module")
def base(checkout) -> str:
    return f"https://127.0.0.1:{checkout.https_port}/"


@pytest.fixture(scope="module")
def opener(checkout):
    """A client with a cookie jar that trusts the generated CA and nothing else."""
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(jar)
    )


def fetch(opener, url: str, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_up_prints_the_https_url(site):
    checkout, output = site
    assert f"https://127.0.0.1:{checkout.https_port}/" in output


def test_certificate_is_verified_against_the_generated_ca_only(checkout):
    strict = ssl.create_default_context()  # the system's CAs: must not know a checkout's private CA
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", checkout.https_port)) as raw,
    ):
        strict.wrap_socket(raw, server_hostname="127.0.0.1")


def test_home_page_over_https_with_hsts_set_once_by_django(opener, base):
    status, headers, body = fetch(opener, base)
    assert status == 200, body[:500]
    assert headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]  # no includeSubDomains, no preload
    assert len(headers.get_all("X-Content-Type-Options")) == 1, "the proxy must not add what Django sets"


def test_a_forwarded_proto_header_on_the_published_port_is_not_believed(checkout):
    """Issue 23 (Low): a local user on 127.0.0.1:APP_PORT who claims `X-Forwarded-Proto: https` is still on plain
    HTTP to Django: no HSTS header (Django sends it on secure requests only), while the proxy's requests get it."""
    for claim in ("https", "HTTPS", "https, https"):
        connection = http.client.HTTPConnection("127.0.0.1", checkout.port, timeout=30)
        connection.request("GET", "/health", headers={"X-Forwarded-Proto": claim, "X-Forwarded-Ssl": "on"})
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200, (claim, response.status)
        assert response.getheader("Strict-Transport-Security") is None, f"X-Forwarded-Proto: {claim} was believed"


def test_notes_api_write_then_read_over_https(opener, base):
    text = "written through the TLS proxy"
    status, _, body = fetch(
        opener, f"{base}api/notes", json.dumps({"text": text}).encode(), {"Content-Type": "application/json"}
    )
    assert status == 201, body
    status, _, body = fetch(opener, f"{base}api/notes")
    assert status == 200 and text in [note["text"] for note in json.loads(body)["notes"]]


def test_admin_login_page_with_its_stylesheets_and_a_csrf_checked_post(opener, base):
    status, _, page = fetch(opener, f"{base}admin/login/")
    assert status == 200
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert stylesheets, page[:1000]
    for href in stylesheets:
        status, headers, css = fetch(opener, urllib.parse.urljoin(base, href))
        assert status == 200 and headers.get_content_type() == "text/css" and css.strip(), href
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong"}).encode()
    status, _, answer = fetch(
        opener, f"{base}admin/login/", form, {"Referer": f"{base}admin/login/", "Origin": base.rstrip("/")}
    )
    # Wrong credentials, but past CSRF: Django knows the request came over HTTPS from this origin.
    assert status == 200 and "errornote" in answer, answer[:1000]


def test_health_answers_plain_http_on_app_port_and_the_rest_redirects(checkout):
    with urllib.request.urlopen(f"http://127.0.0.1:{checkout.port}/health", timeout=10) as response:
        assert response.status == 200 and json.load(response)["status"] == "ok"
    connection = http.client.HTTPConnection("127.0.0.1", checkout.port, timeout=10)
    connection.request("GET", "/api/notes")
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://127.0.0.1:{checkout.https_port}/api/notes"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_browser_sent_to_plain_http_ends_on_the_https_page(opener, checkout, host):
    """Typed as http://HOST:APP_PORT/admin/login/: the redirect leads to the proxy's HTTPS_PORT (it kept APP_PORT,
    where no TLS answers), the host name is kept, and the page loads over verified TLS."""
    with opener.open(f"http://{host}:{checkout.port}/admin/login/?next=/admin/", timeout=30) as response:
        assert response.url == f"https://{host}:{checkout.https_port}/admin/login/?next=/admin/"
        assert response.status == 200 and 'name="csrfmiddlewaretoken"' in response.read().decode()


def test_plain_http_on_the_https_port_gets_no_http_answer(checkout):
    with socket.create_connection(("127.0.0.1", checkout.https_port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Content-Length": str(11 * 2**20)}, 413, id="body-over-the-limit"),
        pytest.param({"Transfer-Encoding": "chunked"}, 411, id="chunked-body-without-length"),
    ],
)
def test_request_bodies_are_limited(checkout, headers, status):
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    connection = http.client.HTTPSConnection("127.0.0.1", checkout.https_port, timeout=10, context=context)
    connection.putrequest("POST", "/api/notes")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()  # no body sent: the proxy answers on the headers alone
    assert connection.getresponse().status == status


def test_certificate_and_key_are_mounted_read_only_not_built_in(checkout):
    (proxy,) = checkout.containers("proxy")
    mounts = json.loads(docker("inspect", "--format", "{{json .Mounts}}", proxy).stdout)
    tls = {m["Destination"]: m for m in mounts if "/tls/" in m["Destination"]}
    assert set(tls) == {"/usr/local/etc/haproxy/tls/site.pem", "/usr/local/etc/haproxy/tls/site.pem.key"}
    assert not any(m["RW"] for m in tls.values())
    image = docker("inspect", "--format", "{{.Config.Image}}", proxy).stdout.strip()
    listing = docker("run", "--rm", "--entrypoint", "ls", image, "-A", "/usr/local/etc/haproxy", check=False).stdout
    assert "tls" not in listing and "pem" not in listing


UNSTYLED_BACKGROUNDS = {"rgba(0, 0, 0, 0)", "transparent"}
NETWORK_CHANGE_ATTEMPTS = 5


def test_admin_login_is_styled_in_a_real_browser_that_trusts_the_generated_ca(checkout, base, tmp_path):
    """Headless Chromium (Debian's) with the CA in a fresh NSS database: no certificate error is ignored."""
    from selenium import webdriver  # requirements/tools.txt; nox -s e2e installs it
    from selenium.webdriver.chrome.service import Service

    home = tmp_path / "home"
    nss = home / ".pki" / "nssdb"
    nss.mkdir(parents=True)
    for argv in (new_nss_db(nss), trust_ca(nss, local_files(checkout.root).ca, "lifecycle test CA")):
        subprocess.run(argv, check=True, capture_output=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver"), env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        # Chromium aborts loads (the page's or a stylesheet's) with ERR_NETWORK_CHANGED when interfaces come and go
        # (other containers starting on this engine): load again, a bounded number of times. A certificate error
        # or a stylesheet that does not load does not go away this way.
        for _ in range(NETWORK_CHANGE_ATTEMPTS):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})  # every attempt loads everything from the proxy
            driver.get(f"{base}admin/login/")
            sheets = driver.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter(e => e.initiatorType === 'link').map(e => [e.name, e.responseStatus])"
            )
            if "ERR_NETWORK_CHANGED" not in driver.page_source and sheets and all(s == 200 for _, s in sheets):
                break
        REPORTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(REPORTS / "admin-login-https.png"))
        assert driver.current_url == f"{base}admin/login/"
        assert "Log in" in driver.title, f"not the login page (a certificate error?): {driver.title!r}"
        assert sheets and all(status == 200 for _, status in sheets), sheets
        rules = driver.execute_script("return Array.from(document.styleSheets).map(s => s.cssRules.length)")
        assert rules and min(rules) > 0, rules
        header = driver.find_element("id", "header")
        assert header.value_of_css_property("background-color") not in UNSTYLED_BACKGROUNDS
        body_font = driver.find_element("tag name", "body").value_of_css_property("font-family")
        assert "Times" not in body_font, f"the browser's default font: the stylesheet was not applied ({body_font})"
    finally:
        driver.quit()


# ------------------------------------------------------------------------------------------- maintenance mode
MAINTENANCE_LOAD_THREADS = 3
MAINTENANCE_MAX_REQUESTS = 20_000  # the load is bounded in count as well as time


class MaintenanceLoad:
    """Bounded load through the proxy while maintenance is switched: /health must always answer 200, / either the
    site (200) or the maintenance page (503 with Retry-After); anything else, or no answer, is a failure."""

    def __init__(self, port: int, context: ssl.SSLContext):
        self.port, self.context = port, context
        self.answers: dict[str, int] = {}
        self.failures: list[str] = []
        self.running = True
        self.threads = [
            threading.Thread(target=self.work, args=(i,), daemon=True) for i in range(MAINTENANCE_LOAD_THREADS)
        ]
        self.deadline = time.monotonic() + 300
        for thread in self.threads:
            thread.start()

    def one(self, path: str) -> str:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read().decode(errors="replace")
        finally:
            connection.close()
        if response.status == 200:
            return f"{path} 200"
        if path != "/health" and response.status == 503 and response.getheader("Retry-After") and "maintenance" in body:
            return f"{path} maintenance"
        raise AssertionError(f"{path}: HTTP {response.status} {body[:200]!r}")

    def work(self, number: int) -> None:
        path = "/health" if number == 0 else "/"
        while (
            self.running and time.monotonic() < self.deadline and sum(self.answers.values()) < MAINTENANCE_MAX_REQUESTS
        ):
            try:
                outcome = self.one(path)
            except (OSError, AssertionError, http.client.HTTPException) as error:
                self.failures.append(repr(error))
                continue
            self.answers[outcome] = self.answers.get(outcome, 0) + 1

    def finish(self) -> tuple[dict[str, int], list[str]]:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=60)
        return self.answers, self.failures


def container_ids(checkout) -> dict[str, str]:
    return {service: docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", checkout.container(service)).stdout
            for service in ("prod", "proxy")}  # fmt: skip


def test_maintenance_on_and_off_under_load_drops_nothing_and_restarts_nothing(checkout, base):
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    before = container_ids(checkout)
    load = MaintenanceLoad(checkout.https_port, context)
    try:
        time.sleep(2)
        switched_on = checkout.invoke_combined("maintenance.on")
        time.sleep(3)
        on_answer = fetch(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)), base)
        health = fetch(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)), f"{base}health")
        switched_off = checkout.invoke_combined("maintenance.off")
        time.sleep(3)
    finally:
        answers, failures = load.finish()
    print(f"maintenance under load: {answers}, {len(failures)} failed")
    assert switched_on.returncode == 0 and "maintenance on on the compose proxy" in switched_on.stdout, (
        switched_on.stdout
    )
    assert switched_off.returncode == 0, switched_off.stdout
    status, headers, page = on_answer
    assert status == 503 and headers["Retry-After"] == "120" and "Down for maintenance" in page
    assert health[0] == 200
    assert failures == [], failures[:5]
    assert answers.get("/ maintenance", 0) > 0 and answers.get("/ 200", 0) > 0 and answers.get("/health 200", 0) > 0
    assert fetch(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)), base)[0] == 200
    assert container_ids(checkout) == before  # no app (or proxy) container restarted


def test_maintenance_lets_the_allow_list_through(checkout, base):
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    gateway = docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}",
                     checkout.container("proxy")).stdout.split()  # fmt: skip
    try:
        # What the proxy sees of a client on 127.0.0.1 is the network's gateway (Docker's port forwarding).
        done = checkout.invoke_combined("maintenance.on", env={"MAINTENANCE_ALLOW": ",".join(gateway)})
        assert done.returncode == 0, done.stdout
        assert fetch(opener, base)[0] == 200
        done = checkout.invoke_combined("maintenance.on")  # the allow-list is replaced: now nobody
        assert done.returncode == 0, done.stdout
        assert fetch(opener, base)[0] == 503
    finally:
        checkout.invoke_combined("maintenance.off")
    assert fetch(opener, base)[0] == 200


def test_status_reports_the_running_prod_and_maintenance_in_under_2_s(checkout):
    done = checkout.invoke_combined("maintenance.on")
    assert done.returncode == 0, done.stdout
    try:
        done = checkout.invoke("status", "--json")
    finally:
        checkout.invoke_combined("maintenance.off")
    report = json.loads(done.stdout)
    lines = {line["name"]: line for line in report["lines"]}
    print(f"invoke status: {report['seconds']} s of probes")
    assert report["seconds"] < 2, report
    assert lines["compose prod"]["ok"] and lines["compose prod"]["text"].startswith("healthy")
    assert lines["migrations"] == {"name": "migrations", "ok": True, "text": "none pending (prod)", "fix": ""}
    assert (
        lines["maintenance (compose)"]["ok"] is False
        and lines["maintenance (compose)"]["fix"] == "invoke maintenance.off"
    )
    assert done.returncode == 1  # something is wrong (maintenance is on): scripts can tell
    assert lines["certificate"]["ok"]


# ------------------------------------------------------------------------------------------- metrics and logs
def test_one_request_is_traced_through_proxy_gunicorn_and_django_by_its_id(checkout, base):
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    status, headers, _ = fetch(opener, f"{base}no-such-page-traced", headers={"X-Request-ID": "client-chosen-id"})
    request_id = headers["X-Request-ID"]
    assert status == 404 and re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id  # the proxy's own, not ours
    deadline = time.monotonic() + 30  # log lines reach docker's log a moment after the answer
    while True:
        done = checkout.invoke("logs", "--request", request_id)
        records = [json.loads(line.split("| ", 1)[1]) for line in done.stdout.splitlines() if "| {" in line]
        sources = {record.get("logger", "proxy") for record in records}
        if {"proxy", "gunicorn.access", "django.request"} <= sources or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"proxy", "gunicorn.access", "django.request"} <= sources, done.stdout[-3000:]
    assert all(record["request_id"] == request_id for record in records)
    assert "client-chosen-id" not in done.stdout


INSIDE_SCRAPE = 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /metrics HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3'


def scrape_inside(checkout, host: str, port: int) -> str:
    """GET /metrics from inside the stack's network: from the proxy's container, as a scraper on the network does."""
    return docker("exec", checkout.container("proxy"), "bash", "-c", INSIDE_SCRAPE, host, str(port)).stdout


def sample(exposition: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(name + " "))


NOTES_GETS = 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="notes:api"}'
DB_STATEMENTS = 'django_db_execute_total{alias="default",vendor="mysql"}'


def test_metrics_only_inside_the_network_never_over_https(checkout, base):
    context = ssl.create_default_context(cafile=str(local_files(checkout.root).ca))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    for path in ("metrics", "metrics/", "metrics?x=1", "%6Detrics", "%2Fmetrics", "/metrics", "metrics/x"):
        assert fetch(opener, f"{base}{path}")[0] == 404, path
    # HAProxy's exporter, on the proxy's own port 8405, published nowhere.
    exported = scrape_inside(checkout, "127.0.0.1", 8405)
    assert exported.startswith("HTTP/1.1 200") and "haproxy_frontend_http_requests_total" in exported
    published = docker("port", checkout.container("proxy")).stdout
    assert "8405" not in published and "8443/tcp" in published
    # The app's own, on its port inside the network: every gunicorn worker's counts summed (exactly the requests
    # made), the database's statements counted and timed.
    before = scrape_inside(checkout, "prod", 8000)
    assert before.startswith("HTTP/1.0 200") and "django_db_query_duration_seconds_bucket{" in before, before[:500]
    for _ in range(12):
        assert fetch(opener, f"{base}api/notes")[0] == 200
    after = scrape_inside(checkout, "prod", 8000)
    assert sample(after, NOTES_GETS) - sample(before, NOTES_GETS) == 12
    assert sample(after, DB_STATEMENTS) >= sample(before, DB_STATEMENTS) + 12
    # On loopback (the app's published port): answered; relayed by a proxy (X-Forwarded-For): refused.
    with urllib.request.urlopen(f"http://127.0.0.1:{checkout.port}/metrics", timeout=10) as response:
        assert response.status == 200 and NOTES_GETS in response.read().decode()
    relayed = urllib.request.Request(
        f"http://127.0.0.1:{checkout.port}/metrics", headers={"X-Forwarded-For": "1.2.3.4"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(relayed, timeout=10)
    assert refused.value.code == 404
