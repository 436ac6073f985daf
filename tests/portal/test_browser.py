"""End to end in a real headless browser (Debian's Chromium, driven by Playwright from
PyPI with the system browser; `playwright install` is never run).

A CPA signs in with password + TOTP, invites a client, uploads a PDF for that client and
downloads it again; screenshots of the dashboard and the account page at desktop and
phone widths land in artifacts/screenshots/ (kept out of git).
"""

import contextlib
import re
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import connections

from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD
from tests.portal.conftest import PDF_BYTES, totp_code
from tests.support.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
PORTS = range(18700, 18900)  # this project's port range for test servers
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the live server sees committed rows
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium; .ci/extra-setup installs it in CI)",
    ),
]


def _ensure_role_groups():
    """Earlier transactional tests flush the database, role Groups (made by data
    migrations) included: put them back as the migrations made them."""
    import importlib

    from django.contrib.auth.models import Group, Permission

    if Group.objects.filter(name=Role.CPA).exists():
        return
    roles = importlib.import_module("accounts.migrations.0002_role_groups")
    grants = importlib.import_module("organizations.migrations.0003_role_permissions")
    wanted = {role: [] for role in roles.ROLES}
    moved = {("accounts", "auditevent"): "auditlog"}  # auditlog/0001 moved the model
    for role, entries in roles.DEFAULTS.items():
        for app_label, model, actions in entries:
            app_label = moved.get((app_label, model), app_label)
            wanted[role] += [(app_label, f"{a}_{model}") for a in actions]
    for role, models in grants.GRANTS.items():
        for model, actions in models.items():
            wanted[role] += [("organizations", f"{a}_{model}") for a in actions]
    for role, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


@pytest.fixture
def server():
    from pytest_django.live_server_helper import LiveServer

    _ensure_role_groups()
    live = LiveServer(f"127.0.0.1:{free_port(PORTS)}")
    yield live
    # Let request threads of the (closed) browser's connections finish before the
    # server stops sharing its database connection with them.
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=10)
    live.stop()


@pytest.fixture
def browser(server, monkeypatch):  # after the server: closed before it stops
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test
    # makes between browser steps are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()
        # ORM calls made while Playwright's loop runs get their own connections
        # (asgiref's context-local storage): close them, or they outlive the test.
        connections.close_all()


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width, height in (("desktop", 1280, 800), ("phone", 375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        # Nothing overflows sideways at this width.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width}px"
    page.set_viewport_size({"width": 1280, "height": 800})


def test_cpa_with_totp_invites_uploads_and_downloads(
    server, browser, mfa_user, tmp_path, settings
):
    import requests

    from accounts.models import User
    from organizations.models import Document, Invitation

    cpa, _codes = mfa_user(Role.CPA, first_name="Casey", last_name="Accountant")
    # django-otp delays a device after a wrong code; this test sends a right one next.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = []
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    # Sign in: password, then the TOTP code on a second page.
    page.goto(f"{server.url}/portal/login")
    _shoot(page, "login")
    page.fill("input[name=email]", cpa.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/login/verify")
    page.fill("input[name=code]", "000000")
    page.click("main button[type=submit]")
    page.wait_for_selector("#id_code_errors")  # the error beside its field
    _shoot(page, "login-verify-error")
    page.fill("input[name=code]", totp_code(cpa, offset_steps=1))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.url}/portal/")
    assert page.inner_text("h1") == "Dashboard"
    assert cpa.organization.name in page.inner_text(".stats")
    _shoot(page, "dashboard")

    # Invite a client by email.
    page.click("nav >> text=Clients")
    page.fill("input[name=email]", "new.client@example.com")
    page.click("button:has-text('Send invitation')")
    page.wait_for_selector("text=Invitation sent to new.client@example.com")
    _shoot(page, "clients")
    assert Invitation.objects.filter(email="new.client@example.com").exists()
    token = re.search(r"^\s{4}(\S+)\s*$", mail.outbox[-1].body, re.M).group(1)

    # The client registers with the code from the email (README "Identity" register).
    response = requests.post(
        f"{server.url}/api/auth/register",
        json={
            "email": "new.client@example.com",
            "password": "client-passphrase-2025",
            "first_name": "Nora",
            "last_name": "Client",
            "invitation": token,
        },
        headers={"Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    client = User.objects.get(email="new.client@example.com")
    assert (client.role, client.organization_id) == (Role.CLIENT, cpa.organization_id)

    # Upload a PDF for that client from the client's page.
    page.goto(f"{server.url}/portal/clients")
    page.click("text=Nora Client")
    page.wait_for_url(f"**/portal/clients/{client.pk}")
    pdf = tmp_path / "return-2025.pdf"
    pdf.write_bytes(PDF_BYTES)
    page.fill("input[name=title]", "Tax return 2025")
    page.set_input_files("input[name=file]", str(pdf))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_selector("text=Uploaded “Tax return 2025”.")
    _shoot(page, "client")
    document = Document.objects.get(owner=client)
    assert document.content_type == "application/pdf"

    # Download it again: the same bytes.
    with page.expect_download() as download_info:
        page.click("a:has-text('Download')")
    download = download_info.value
    assert download.suggested_filename == "return-2025.pdf"
    assert Path(download.path()).read_bytes() == PDF_BYTES

    page.goto(f"{server.url}/portal/")
    assert page.inner_text("#document-count") == "1"
    assert page.inner_text("#client-count") == "1"
    _shoot(page, "dashboard")

    page.goto(f"{server.url}/portal/account")
    assert page.inner_text("h1") == "Account"
    _shoot(page, "account")

    # No CSP violation or script error on any page.
    assert problems == []
    context.close()


def test_client_enrols_totp_with_the_qr_page(server, browser, make_user):
    import pyotp

    client = make_user(Role.CLIENT, first_name="Quinn", last_name="Client")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{server.url}/portal/login")
    page.fill("input[name=email]", client.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/portal/")

    page.goto(f"{server.url}/portal/account")
    page.fill("#mfa input[name=password]", DEFAULT_PASSWORD)  # asked again
    page.click("button:has-text('Set up two-factor')")
    page.wait_for_url("**/portal/account/mfa/totp/confirm")
    assert page.locator("figure.qr svg").count() == 1  # drawn inline, no request
    box = page.locator("figure.qr svg").bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100
    _shoot(page, "totp-enrol")
    secret = page.inner_text("code.secret").strip()
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Your backup codes")
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10
    _shoot(page, "backup-codes")
    page.click("text=I saved them")
    page.wait_for_selector("text=Signing in asks for a code")
    context.close()


def _sign_in(page, server, user, next_url="/portal/"):
    page.goto(f"{server.url}/portal/login?next={next_url}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{next_url}")


def _sessions_with_long_agents(user, count=3):
    from accounts.models import UserSession
    from accounts.tokens import issue_tokens

    for n in range(count):
        issue_tokens(user, mfa=False)
    UserSession.objects.filter(user=user, kind="api").update(
        last_ip="2001:db8:85a3::8a2e:370:7334",
        last_user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    )


def test_session_lists_read_at_phone_width(server, browser, make_user):
    """The admin's sessions list and the portal's: at 375 px nothing is cut (no
    sideways scrolling of the page or of the admin's table) and each portal row keeps
    its labels."""
    admin = make_user(Role.ADMIN, first_name="Ada", last_name="Admin")
    client = make_user(Role.CLIENT, first_name="Quinn", last_name="Client")
    _sessions_with_long_agents(admin)
    _sessions_with_long_agents(client)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()

    _sign_in(page, server, admin, "/admin/")
    page.goto(f"{server.url}/admin/accounts/usersession/")
    assert page.locator("#result_list tbody tr").count() >= 4
    _shoot(page, "admin-sessions")
    page.set_viewport_size({"width": 375, "height": 812})
    table = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert table[0] <= table[1], f"the sessions table is cut at 375 px: {table}"
    context.close()

    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    _sign_in(page, server, client)
    page.goto(f"{server.url}/portal/account")
    rows = page.locator("#sessions tbody tr")
    assert rows.count() >= 4
    labels = rows.first.evaluate(
        "row => [...row.querySelectorAll('td')].map("
        "td => getComputedStyle(td, '::before').content)"
    )
    assert labels[:4] == ['"Since"', '"Last used"', '"From"', '"Second factor"']
    _shoot(page, "portal-sessions")
    context.close()


EVIL_PAGE = b"""<!doctype html><html><body><pre id="out">not run</pre><script>
fetch("/portal/account", {credentials: "include"})
  .then((r) => r.text())
  .then((t) => { document.getElementById("out").textContent = "read:" + t; })
  .catch((e) => { document.getElementById("out").textContent = "blocked:" + e; });
</script></body></html>"""


def test_a_back_ends_page_cannot_read_the_portal(server, browser, make_user):
    """Issue 24: a back end's text/html, proxied on XenX's origin, ran its script
    there and read a signed-in staff member's /portal/account (email, CSRF token).
    Proxied pages are sandboxed (``Content-Security-Policy: sandbox``: an opaque
    origin, no script) unless the service ``serves_pages``; the second service shows
    what the script reads without the sandbox."""
    from gateway.services import service_create
    from tests.support.upstream import FakeUpstream

    staff = make_user(Role.STAFF)
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(EVIL_PAGE), EVIL_PAGE)
    )
    upstream = FakeUpstream(answer)
    try:
        service_create(name="pages", instances=[upstream.url], public=True)
        service_create(
            name="site", instances=[upstream.url], public=True, serves_pages=True
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.url}/portal/login")
        page.fill("input[name=email]", staff.email)
        page.fill("input[name=password]", DEFAULT_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/portal/")

        def outcome(service):
            page.goto(f"{server.url}/api/{service}/index.html")
            with contextlib.suppress(Exception):  # the script may never run
                page.wait_for_function(
                    "document.getElementById('out').textContent !== 'not run'",
                    timeout=3000,
                )
            return page.text_content("#out")

        sandboxed = outcome("pages")
        assert staff.email not in sandboxed
        assert "csrfmiddlewaretoken" not in sandboxed
        assert sandboxed == "not run"  # no script ran at all
        # The same page from a service that serves pages runs on XenX's origin.
        unsandboxed = outcome("site")
        assert unsandboxed.startswith("read:") and staff.email in unsandboxed
        context.close()
    finally:
        upstream.close()
