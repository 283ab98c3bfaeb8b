"""The web client (/) and the API docs (/api/docs/) in headless Chromium (Debian's package,
driven by Playwright; never a downloaded browser), against the session's real server.

Every page is watched: a console error, an uncaught exception or a request to any host but the
server fails the test. Screenshots of the main screens go to test-output/screenshots/."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from helpers import PASSWORD, ROOT, api_request
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from expertconnect.handlers.docs import OPENAPI_PATH

CHROMIUM = os.environ.get("EXPERTCONNECT_TEST_CHROMIUM", "/usr/bin/chromium")
# Nothing of the browser's own may reach the network: no update checks, no sync, no first-run.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 900}
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (Debian: apt-get install chromium) "
            "or set EXPERTCONNECT_TEST_CHROMIUM"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    """Problems seen on the pages of one test: console errors, uncaught exceptions, requests
    to other hosts. `expected` console errors (regexes) are allowed once each, for tests that
    provoke an API error on purpose (Chromium logs every 4xx response as a console error)."""

    def __init__(self, server_url: str):
        self.netloc = urlsplit(server_url).netloc
        self.problems: list[str] = []
        self.expected: list[re.Pattern] = []
        # Allowed any number of times (a test that stops the server on purpose).
        self.tolerated: list[re.Pattern] = []

    def attach(self, page: Page) -> Page:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("request", self._request)
        page.on("websocket", lambda ws: self._url(ws.url))
        return page

    def _console(self, message) -> None:
        if message.type != "error":
            return
        for pattern in self.expected:
            if pattern.search(message.text):
                self.expected.remove(pattern)
                return
        if any(pattern.search(message.text) for pattern in self.tolerated):
            return
        self.problems.append(f"console error: {message.text} ({message.location})")

    def _request(self, request) -> None:
        self._url(request.url)

    def _url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "data":
            return
        if parts.netloc != self.netloc or parts.scheme not in ("http", "ws"):
            self.problems.append(f"request to another host: {url}")


@pytest.fixture
def watch(server):
    w = Watch(server.url)
    yield w
    assert w.problems == []


@pytest.fixture
def new_page(browser: Browser, watch: Watch):
    contexts: list[BrowserContext] = []

    def make(viewport=DESKTOP) -> Page:
        # en-GB: 24-hour times, so the assertions read "14:30"; the browser's own zone is not
        # used (times follow the profile's), and a different one here proves it.
        context = browser.new_context(
            viewport=viewport, locale="en-GB", timezone_id="America/New_York"
        )
        contexts.append(context)
        return watch.attach(context.new_page())

    yield make
    for context in contexts:
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


class Person:
    """One person's browser tab on the client."""

    def __init__(self, page: Page, server_url: str, first: str, last: str):
        self.page, self.url = page, server_url
        self.username = f"{first.lower()}_{uuid.uuid4().hex[:8]}"
        self.first, self.last = first, last
        self.name = f"{first} {last}"
        self.id: int | None = None
        self.token: str | None = None

    def go(self, route: str) -> None:
        self.page.goto(f"{self.url}/#{route}")
        expect(self.page.locator("h1")).to_be_visible()

    def register(self) -> None:
        page = self.page
        page.goto(self.url + "/")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        page.get_by_role("link", name="Create an account").click()
        form = page.get_by_role("form", name="Create an account")
        form.get_by_label("Username").fill(self.username)
        form.get_by_label("Email").fill(f"{self.username}@example.com")
        form.get_by_label("First name").fill(self.first)
        form.get_by_label("Last name").fill(self.last)
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("heading", name="My profile")).to_be_visible()
        self.token = page.evaluate("sessionStorage.getItem('expertconnect.token')")
        me = api_request(self.url, "GET", "/api/users/me/", token=self.token).json
        self.id = me["id"]

    def api(self, method: str, path: str, **kwargs):
        return api_request(self.url, method, path, token=self.token, **kwargs)

    def badge(self, which: str = "#badge") -> int:
        badge = self.page.locator(which)
        return int(badge.text_content() or 0) if badge.is_visible() else 0


def test_two_people_book_pay_chat_complete_and_review(server, new_page, watch):
    a = Person(new_page(DESKTOP), server.url, "Ada", "Asker")
    b = Person(new_page(PHONE), server.url, "Bea", "Expert")
    a.register()
    b.register()
    skill = f"Hydroponics{uuid.uuid4().hex[:6]}"

    # B lists a skill and weekly hours (UTC, the default time zone): tomorrow, 09:00-17:00.
    page = b.page
    add_skill = page.get_by_role("form", name="Add a skill")
    add_skill.get_by_label("Skill").fill(skill)
    add_skill.get_by_label("Level").select_option("expert")
    add_skill.get_by_role("button", name="Add skill").click()
    expect(page.get_by_role("list", name="My skills")).to_contain_text(skill)
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    add_time = page.get_by_role("form", name="Add availability")
    add_time.get_by_label("Day").select_option(str(tomorrow.isoweekday() % 7))
    add_time.get_by_label("From").fill("09:00")
    add_time.get_by_label("To").fill("17:00")
    add_time.get_by_role("button", name="Add time").click()
    expect(page.get_by_role("list", name="My weekly availability")).to_contain_text(
        "09:00\u201317:00"
    )
    shot(page, "profile-phone")
    b.go("/meetings")

    # A lives in Kolkata (UTC+05:30): B's 09:00 UTC is 14:30 for A.
    page = a.page
    about = page.get_by_role("form", name="About me")
    about.get_by_label("Time zone").fill("Asia/Kolkata")
    about.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    page.get_by_role("link", name="Find experts").click()
    search = page.get_by_role("form", name="Search experts")
    search.get_by_label("Search").fill(skill)
    search.get_by_role("button", name="Search").click()
    found = page.get_by_role("list", name="Experts found")
    expect(found.get_by_role("listitem")).to_have_count(1)
    found.get_by_role("link", name=b.name).click()
    expect(page.get_by_role("heading", name=b.name)).to_be_visible()
    first_slot = page.locator("button.slot").first
    expect(first_slot).to_contain_text("14:30")
    shot(page, "expert-profile")
    first_slot.click()
    booking = page.get_by_role("form", name="Request a meeting")
    booking.get_by_label("Title").fill("Intro call")
    booking.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Intro call")).to_be_visible()
    expect(page.locator("#meeting-status")).to_have_text("pending")
    meeting_id = int(page.url.rsplit("/", 1)[1])

    # B sees the request appear live and confirms it.
    request = b.page.locator(f'li[data-meeting-id="{meeting_id}"]')
    expect(request).to_contain_text("Intro call")
    expect(b.page.locator("#badge")).to_have_text("1")
    shot(b.page, "meetings-phone")
    request.get_by_role("button", name="Confirm: Intro call").click()
    expect(request).to_have_attribute("data-status", "confirmed")

    # A's page follows live; A buys credits and pays.
    expect(page.locator("#meeting-status")).to_have_text("confirmed")
    page.get_by_role("link", name="Credits").click()
    buy = page.get_by_role("form", name="Buy credits")
    buy.get_by_label("Credits").fill("5")
    expect(buy.get_by_label("Amount")).to_have_value("5.00")
    buy.get_by_role("button", name="Buy").click()
    expect(page.locator("#balance")).to_have_text("6")
    a.go(f"/meetings/{meeting_id}")
    pay = page.get_by_role("form", name="Pay for this meeting")
    pay.get_by_label("Credits").fill("3")
    pay.get_by_role("button", name="Pay").click()
    expect(page.locator("#meeting-note")).to_have_text("Paid 3 credits. Your balance: 3.")
    escrow = "held" in a.api("GET", "/api/credits/balance/").json
    if escrow:
        expect(page.locator(".payment")).to_have_attribute("data-payment-status", "held")
        expect(page.locator(".payment")).to_contain_text("3 credits")
    else:
        # LEAD: without issue 12's escrow the expert is paid at once (credits_received) and the
        # meeting has no payment_status; this branch checks the payer's ledger instead.
        expect(page.locator(".payment")).to_have_count(0)
        assert b.api("GET", "/api/credits/balance/").json["balance"] == 4

    # A and B chat, both live.
    page.get_by_role("link", name=f"Message {b.name}").click()
    b.go(f"/messages/{a.id}")
    a_chat = page.get_by_role("list", name=f"Conversation with {b.name}")
    b_chat = b.page.get_by_role("list", name=f"Conversation with {a.name}")

    def say(person: Person, text: str) -> None:
        box = person.page.get_by_role("form", name="Send a message").get_by_role("textbox")
        box.fill(text)
        box.press("Enter")
        expect(box).to_have_value("")

    say(a, "Hello Bea, looking forward to it")
    expect(b_chat).to_contain_text("Hello Bea, looking forward to it")
    say(b, "Hi Ada! See you tomorrow")
    expect(a_chat).to_contain_text("Hi Ada! See you tomorrow")
    expect(a_chat.locator("li.mine .read").first).to_be_visible()  # B read it, live
    shot(page, "chat")

    # B's network drops while A sends two messages; back online, B shows both, once each.
    b.page.context.set_offline(True)
    expect(b.page.locator("#connection")).to_have_attribute("data-state", "offline")
    say(a, "First while you were offline")
    say(a, "Second while you were offline")
    expect(a_chat.locator("li")).to_have_count(4)
    expect(b_chat.locator("li")).to_have_count(2)
    b.page.context.set_offline(False)
    expect(b_chat.get_by_text("First while you were offline")).to_have_count(1)
    expect(b_chat.get_by_text("Second while you were offline")).to_have_count(1)
    expect(b_chat.locator("li")).to_have_count(4)
    expect(b.page.locator("#connection")).to_be_hidden()
    # Reading the chat read its message notifications too: the badge agrees with the server.
    expect(b.page.locator("#chat-badge")).to_be_hidden()
    # The client's mark_read may still be on its way when the badge hides: ask until the
    # server agrees, a bounded number of times.
    for _ in range(50):
        unread = b.api("GET", "/api/notifications/?is_read=false").json
        if not [n for n in unread if n["notification_type"] == "new_message"]:
            break
        b.page.wait_for_timeout(200)
    assert [n for n in unread if n["notification_type"] == "new_message"] == []
    expect(b.page.locator("#badge")).to_have_text(str(len(unread)) if unread else "")

    # A marks the meeting completed; B's credits page shows the payment arrived.
    a.go(f"/meetings/{meeting_id}")
    page.get_by_role("button", name="Mark completed: Intro call").click()
    expect(page.locator("#meeting-status")).to_have_text("completed")
    b.go("/credits")
    expect(b.page.locator("#balance")).to_have_text("4")  # 1 free + 3 paid
    if escrow:
        expect(page.locator(".payment")).to_have_attribute("data-payment-status", "released")
        expect(b.page.locator("#incoming")).to_have_text("0")
    shot(b.page, "credits-phone")

    # A leaves a review; it shows on B's public profile.
    review = page.get_by_role("form", name="Leave a review")
    review.get_by_label("Rating").select_option("5")
    review.get_by_label("Review").fill("Clear and practical, thank you")
    review.get_by_role("button", name="Send review").click()
    expect(page.get_by_role("form", name="Leave a review")).to_have_count(0)
    a.go(f"/experts/{b.id}")
    expect(page.locator(".rating")).to_have_text("Rated 5.0 / 5 (1 review)")
    expect(page.locator(".reviews")).to_contain_text("Clear and practical, thank you")
    shot(page, "expert-reviewed")


def test_forms_carry_autocomplete_names_and_api_errors_show_next_to_their_field(
    server, new_page, watch
):
    page = new_page(PHONE)
    page.goto(server.url + "/#/login")
    login = page.get_by_role("form", name="Log in")
    assert login.get_by_label("Username").get_attribute("autocomplete") == "username"
    assert login.get_by_label("Username").get_attribute("name") == "username"
    assert login.get_by_label("Password").get_attribute("autocomplete") == "current-password"
    # A wrong password: the API's {"error"} in the form's alert.
    watch.expected.append(re.compile(r"status of 401"))
    login.get_by_label("Username").fill("nobody_" + uuid.uuid4().hex[:8])
    login.get_by_label("Password").fill("wrong-password")
    login.get_by_role("button", name="Log in").click()
    expect(login.get_by_role("alert")).to_contain_text("Invalid")

    page.get_by_role("link", name="Create an account").click()
    form = page.get_by_role("form", name="Create an account")
    assert form.get_by_label("Password").get_attribute("autocomplete") == "new-password"
    # {"errors": {...}} lands under each named field, focus on the first.
    watch.expected.append(re.compile(r"status of 400"))
    form.get_by_label("Username").fill("x" * 200)
    form.get_by_label("Email").fill("not-an-email")
    form.get_by_label("Password").fill("short")
    form.get_by_role("button", name="Create account").click()
    for name in ("username", "email", "password"):
        error = form.locator(f'[data-error-for="{name}"]')
        expect(error).not_to_be_empty()
        expect(form.locator(f'[name="{name}"]')).to_have_attribute("aria-invalid", "true")
    expect(form.locator('[name="username"]')).to_be_focused()
    shot(page, "register-errors-phone")
    assert watch.expected == []


def test_the_docs_page_lists_every_operation_and_tries_one(server, new_page):
    document = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )
    page = new_page(DESKTOP)
    response = page.goto(server.url + "/api/docs/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.get_by_role("link", name="AsyncAPI document")).to_have_attribute(
        "href", "/api/asyncapi.json"
    )
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    health = page.locator("#operations-service-health")
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    expect(health.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    shot(page, "api-docs")


def _get(server, path: str, **headers) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_pages_are_served_with_a_self_only_policy_and_sensible_caching(server):
    page = _get(server, "/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    port = urlsplit(server.url).port
    assert f"connect-src 'self' ws://127.0.0.1:{port} wss://127.0.0.1:{port}" in policy
    assert page.headers["Cache-Control"] == "no-cache" and page.headers["Etag"]
    assert b'<script type="module" src="/static/app/main.js">' in page.body
    assert _get(server, "/", **{"If-None-Match": page.headers["Etag"]}).status == 304
    vendored = _get(server, "/static/vendor/swagger-ui-dist-5.35.0/LICENSE")
    assert vendored.status == 200 and "immutable" in vendored.headers["Cache-Control"]
    assert b"Apache License" in vendored.body
    missing = _get(server, "/static/app/nothing.js")
    assert missing.status == 404 and json.loads(missing.body) == {"error": "Not found"}
    assert _get(server, "/static/../handlers/web.py").status in (403, 404)
    assert api_request(server.url, "POST", "/", json={}).status == 405


def test_after_a_server_restart_the_chat_catches_up_with_no_duplicate(browser, start_server):
    """The server stops while B's chat is open and A writes once it is back: B's client
    reconnects with last_event_id and shows each message once."""
    own = start_server()
    watch = Watch(own.url)
    # While the server is down each reconnection attempt fails, and Chromium logs that.
    watch.tolerated += [
        re.compile(r"WebSocket connection to .* failed"),
        re.compile(r"Failed to load resource: net::ERR_CONNECTION_REFUSED"),
    ]
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    try:
        a = Person(watch.attach(context.new_page()), own.url, "Al", "Writer")
        a.register()
        b = Person(watch.attach(browser.new_context().new_page()), own.url, "Bo", "Reader")
        b.register()
        a.api("POST", "/api/messages/", json={"receiver_id": b.id, "content": "Before"})
        b.go(f"/messages/{a.id}")
        chat = b.page.get_by_role("list", name=f"Conversation with {a.name}")
        expect(chat.locator("li")).to_have_count(1)
        own.stop()
        expect(b.page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        own.start()
        for text in ("After one", "After two"):
            r = a.api("POST", "/api/messages/", json={"receiver_id": b.id, "content": text})
            assert r.status == 201, r.text
        expect(chat.get_by_text("After one")).to_have_count(1)
        expect(chat.get_by_text("After two")).to_have_count(1)
        expect(chat.locator("li")).to_have_count(3)
        expect(b.page.locator("#connection")).to_be_hidden()
        b.page.wait_for_timeout(300)  # a late duplicate would show by now
        expect(chat.locator("li")).to_have_count(3)
    finally:
        for ctx in browser.contexts:
            ctx.close()
    assert watch.problems == []
