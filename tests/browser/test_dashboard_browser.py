"""The dashboard in a real browser: Debian's chromium driven by Playwright, axe-core for WCAG.

The app runs on a real port (werkzeug in a thread) over SQLite, with the fake
Twilio server as Twilio. Also takes the screenshots of the README (queue.png,
item.png and match.png, an item about a match the helper said yes to): into
the test's temporary folder, or into docs/screenshots with
BUURTLIJN_SCREENSHOTS=1, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select, update
from werkzeug.serving import make_server

from gateway import create_app
from gateway.database import get_database
from gateway.twilio_sim import post_signed, sms_params
from models import Callback, Match, Message
from models.base import utcnow
from models.marketplace import record_listing
from models.phones import mask, parse_phone, readable
from models.queue import queue_callback
from models.residents import resident_for, set_postcode
from tests.conftest import ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, GATEWAY_NUMBER, ROOT, app_config, wait_until
from tests.dashboard_support import BRAM_PHONE, MILA_PHONE, PASSWORD, make_brokers, seed_listing
from tests.fake_twilio import FakeTwilio

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TABLET = {"width": 1180, "height": 820}  # a 10-inch tablet, landscape
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_phone_counter = iter(range(10_000))
# What residents say when a test does not care: the screenshots show these, so they read like the real thing.
DESCRIPTIONS = {
    ("request", "groceries"): "Wie kan er op vrijdag boodschappen voor mij meenemen? Ik kom slecht de deur uit.",
    ("offer", "groceries"): "Ik doe elke zaterdag boodschappen bij de Dirk en neem graag iets mee.",
    ("request", "chores"): "De lamp in de gang is stuk en ik kan zelf niet meer op een trap.",
    ("offer", "chores"): "Ik ben handig met gereedschap en heb een ladder.",
}


def new_phone() -> str:
    return f"+316{20000000 + next(_phone_counter):08d}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, fake_twilio_server) -> Iterator[Flask]:
    database = tmp_path_factory.mktemp("browser") / "buurtlijn.sqlite3"
    shutil.copy(sqlite_template, database)
    app = create_app(app_config(f"sqlite:///{database}", fake_twilio_server))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    app.config["BASE_URL_FOR_TESTS"] = base
    make_brokers(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    get_database(app).dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def base(served: Flask) -> str:
    return served.config["BASE_URL_FOR_TESTS"]


CONSOLE_ERRORS: list[str] = []


def new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport=TABLET, locale="nl-NL", timezone_id="Europe/Amsterdam")
    page = context.new_page()
    # A Content-Security-Policy refusal (an inline script or style, a foreign asset) shows here.
    page.on("console", lambda message: CONSOLE_ERRORS.append(message.text) if message.type == "error" else None)
    return page


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("heading", name="Wachtrij")).to_be_visible()


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def seed(app: Flask, kind: str = "request", category: str = "groceries", postcode: str = "2034",
         description: str | None = None) -> tuple[int, int, str]:
    phone = new_phone()
    listing_id, callback_id = seed_listing(app, phone, kind, category, postcode,
                                           description or DESCRIPTIONS[(kind, category)])
    return listing_id, callback_id, phone


def listing_without_item(app: Flask, kind: str, category: str, postcode: str, description: str) -> tuple[int, str]:
    """A listing already dealt with by a broker (no queue item of its own); returns (listing id, phone)."""
    phone = new_phone()
    with get_database(app).transaction() as session:
        resident = resident_for(session, parse_phone(phone))
        set_postcode(resident, postcode)
        listing = record_listing(session, resident, kind=kind, channel="sms", category=category,
                                 description=description, postcode=postcode, timing="this_week",
                                 queue_for_broker=False)
        return listing.id, phone


def helper_said_ja(app: Flask, base: str, request_description: str, offer_description: str,
                   category: str = "chores") -> tuple[int, int, str, str]:
    """A match proposed through the API, and the helper's JA by SMS as Twilio posts it (signed).

    Returns (match id, the "helper said yes" item's id, requester's phone, helper's phone).
    """
    request_id, requester = listing_without_item(app, "request", category, "2034", request_description)
    offer_id, helper = listing_without_item(app, "offer", category, "2035", offer_description)
    proposal = urllib.request.Request(
        f"{base}/api/v1/matches", data=json.dumps({"request_id": request_id, "offer_id": offer_id}).encode(),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(proposal, timeout=10) as response:
        match_id = json.load(response)["id"]

    def proposal_sid() -> str | None:
        with get_database(app).transaction() as session:
            return session.scalar(select(Message.twilio_sid).where(Message.phone == helper,
                                                                   Message.match_id == match_id))

    # Twilio says the proposal reached the helper's phone: only then does a JA accept it.
    assert wait_until(lambda: proposal_sid() is not None, timeout=10)
    sid = proposal_sid()
    status, _twiml = post_signed(f"{base}/twilio/sms/status", {
        "MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered", "SmsStatus": "delivered",
        "AccountSid": ACCOUNT_SID, "From": GATEWAY_NUMBER, "To": helper, "ApiVersion": "2010-04-01"}, AUTH_TOKEN)
    assert status == 200
    status, _twiml = post_signed(f"{base}/twilio/sms", sms_params(account_sid=ACCOUNT_SID, from_=helper,
                                                                  to=GATEWAY_NUMBER, body="JA"), AUTH_TOKEN)
    assert status == 200
    with get_database(app).transaction() as session:
        assert session.get(Match, match_id).status == "accepted"
        item = session.scalars(select(Callback.id).where(Callback.match_id == match_id,
                                                         Callback.reason == "match_accepted")).one()
    return match_id, item, requester, helper


def bodies_to(fake: FakeTwilio, phone: str) -> list[str]:
    return [message["Body"] for message in fake.messages() if message["To"] == phone]


def masked(phone: str) -> str:
    assert mask(phone) == f"06 •••• {phone[-4:]}"
    return mask(phone)


def test_log_in_claim_call_and_propose_a_match(served, browser, base, fake_twilio_server):
    _, callback_id, phone = seed(served, "request", "groceries", "2034", "Wie haalt mijn boodschappen?")
    offer_id, _, _ = seed(served, "offer", "groceries", "2035", "Ik fiets elke dag langs de supermarkt")
    page = new_page(browser)

    page.goto(f"{base}/dashboard")
    expect(page).to_have_url(f"{base}/login?next=/dashboard")
    assert_accessible(page)
    log_in(page, base, "mila@buuv.example")
    card = page.locator(f"#item-{callback_id}")
    expect(card).to_contain_text(masked(phone))
    assert readable(phone) not in page.content()
    assert_accessible(page)

    card.get_by_role("button", name="Oppakken").click()
    expect(page).to_have_url(f"{base}/dashboard/items/{callback_id}")
    # The holder sees the full number, as Dutch people write it.
    expect(page.locator("#resident-phone")).to_have_text(f"06 {phone[4:8]} {phone[8:]}")
    expect(page.locator(f"#suggestion-{offer_id}")).to_contain_text("Ik fiets elke dag langs de supermarkt")
    assert_accessible(page)

    calls_before = len(fake_twilio_server.calls())
    page.get_by_role("button", name=f"Bel {readable(phone)} via Buurtlijn").click()
    assert fake_twilio_server.wait_for(lambda fake: len(fake.calls()) > calls_before, timeout=10)
    placed = fake_twilio_server.calls()[-1]
    assert placed["To"] == MILA_PHONE and placed["Url"].startswith(f"{base}/twilio/bridge/")
    expect(page.locator("#call-progress")).to_contain_text("Buurtlijn belt uw telefoon")

    page.locator(f"#suggestion-{offer_id}").get_by_role("button", name="Match voorstellen met deze").click()
    expect(page.locator(".flash.ok")).to_have_text("Opgeslagen: Match voorgesteld. Het item is uit de wachtrij.")
    expect(page.locator(f"#item-{callback_id}")).to_have_count(0)
    page.context.close()
    assert [e for e in CONSOLE_ERRORS if "Content Security Policy" in e] == []


def test_a_second_broker_is_told_the_item_is_taken(served, browser, base):
    _, callback_id, phone = seed(served)
    mila, bram = new_page(browser), new_page(browser)
    log_in(mila, base, "mila@buuv.example")
    log_in(bram, base, "bram@buuv.example")
    mila.locator(f"#item-{callback_id}").get_by_role("button", name="Oppakken").click()
    expect(mila.locator("#resident-phone")).to_have_text(readable(phone))

    bram.locator(f"#item-{callback_id}").get_by_role("button", name="Oppakken").click()  # his page was older
    expect(bram.locator(".flash.error")).to_have_text("Dit item is al opgepakt door Mila. Kies een ander item.")
    bram.goto(f"{base}/dashboard/items/{callback_id}")
    expect(bram.locator("#resident-phone")).to_have_text(masked(phone))
    expect(bram.get_by_text("Mila heeft dit item. U ziet het nummer niet.")).to_be_visible()
    expect(bram.get_by_role("button", name="Niet bereikt, later opnieuw")).to_have_count(0)
    mila.context.close()
    bram.context.close()


@pytest.mark.parametrize(
    ("button", "note", "flash"),
    [
        ("Geholpen, geen match nodig", "", "Opgeslagen: Geholpen, geen match nodig."),
        ("Niet bereikt, later opnieuw", "", "Opgeslagen: niet bereikt. De bewoner krijgt bericht dat we belden."),
        ("Verkeerd nummer", "Nummer hoort bij een bedrijf", "Opgeslagen: Verkeerd nummer."),
        ("Doorverwezen: sociaal wijkteam", "Veel zorgen; wijkteam belt", "Opgeslagen: Doorverwezen naar het sociaal wijkteam."),
        ("Doorverwezen: huisarts", "Klachten: huisarts weet ervan", "Opgeslagen: Doorverwezen naar de huisarts."),
        ("Doorverwezen: andere hulp", "Schuldhulp", "Opgeslagen: Doorverwezen naar andere hulp."),
    ],
)
def test_each_outcome_is_one_click(served, browser, base, button, note, flash):
    _, callback_id, _ = seed(served)
    page = new_page(browser)
    log_in(page, base, "bram@buuv.example")
    page.locator(f"#item-{callback_id}").get_by_role("button", name="Oppakken").click()
    if note:
        page.get_by_label("Notitie (mag leeg blijven)").fill(note)
    page.get_by_role("button", name=button).click()
    expect(page.locator(".flash.ok")).to_contain_text(flash)
    expect(page.locator(f"#waiting-list #item-{callback_id}")).to_have_count(0)
    page.context.close()


def _tab_to(page: Page, name: str, limit: int = 80) -> None:
    """Press Tab until the focused element's accessible text starts with ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        text = page.evaluate("() => (document.activeElement.innerText || document.activeElement.value || '').trim()")
        if text.startswith(name):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("none", ""), f"no visible focus on {name!r}"
            return
    raise AssertionError(f"could not reach {name!r} with the Tab key")


def test_the_callback_workflow_works_by_keyboard_alone(served, browser, base, fake_twilio_server):
    with get_database(served).transaction() as session:
        resident = resident_for(session, parse_phone(new_phone()))
        resident.district = "noord"
        callback_id = queue_callback(session, "callback_requested", resident_id=resident.id, priority=99).id
    page = new_page(browser)
    page.goto(f"{base}/login")
    # The e-mail field takes focus on arrival; wait for it rather than race the autofocus.
    expect(page.get_by_label("E-mailadres")).to_be_focused()
    page.keyboard.type("bram@buuv.example")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Wachtrij")).to_be_visible()

    _tab_to(page, "Volgende oppakken")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/dashboard/items/{callback_id}")

    calls_before = len(fake_twilio_server.calls())
    _tab_to(page, "Bel ")
    page.keyboard.press("Enter")
    assert fake_twilio_server.wait_for(lambda fake: len(fake.calls()) > calls_before, timeout=10)
    assert fake_twilio_server.calls()[-1]["To"] == BRAM_PHONE
    expect(page.locator("#call-progress")).to_be_visible()

    _tab_to(page, "Niet bereikt, later opnieuw")
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_contain_text("Opgeslagen: niet bereikt.")
    page.context.close()


def test_helper_says_ja_and_the_broker_confirms_with_both(served, browser, base, fake_twilio_server):
    match_id, item_id, requester, helper = helper_said_ja(
        served, base, "Mijn tuinhek hangt scheef. Wie kan mij helpen het te maken?",
        "Ik klus graag en heb zaterdag tijd. Ik woon bij het Molenplein.")
    # They text each other through Buurtlijn: a link is replaced, a long text is cut; the broker sees both.
    for text in ("Tot zaterdag! Kijk even op bit.ly/tuinhek <b>", "Ik neem de boor mee. " * 30):
        status, _twiml = post_signed(f"{base}/twilio/sms", sms_params(account_sid=ACCOUNT_SID, from_=requester,
                                                                      to=GATEWAY_NUMBER, body=text), AUTH_TOKEN)
        assert status == 200
    page = new_page(browser)
    log_in(page, base, "mila@buuv.example")
    card = page.locator(f"#item-{item_id}")
    expect(card).to_contain_text("Helper zei ja: match bevestigen")
    expect(card).to_contain_text("Match: geaccepteerd")

    card.get_by_role("button", name="Oppakken").click()
    expect(page).to_have_url(f"{base}/dashboard/items/{item_id}")
    # The holder sees their own resident's number, once, in the resident's panel.
    expect(page.locator("#resident-phone")).to_have_text(readable(requester))
    expect(page.locator("#match-requester")).not_to_contain_text(readable(requester))
    expect(page.locator("#match-requester")).to_contain_text("Mijn tuinhek hangt scheef")
    expect(page.locator("#match-helper")).to_contain_text(masked(helper))  # the other side: always masked
    expect(page.locator("#match-helper")).to_contain_text("Ik klus graag en heb zaterdag tijd")
    expect(page.locator("#match-history")).to_contain_text("Helper zei ja")
    relays = page.locator("#match-relays > li")
    expect(relays).to_have_count(2)
    expect(relays.nth(0)).to_contain_text("Buur die hulp vraagt aan Helper")
    expect(relays.nth(0)).to_contain_text("ingekort")
    expect(relays.nth(1)).to_contain_text("link of nummer weggehaald")
    expect(relays.nth(1)).to_contain_text("Kijk even op bit.ly/tuinhek <b>")  # the original, as text
    assert readable(helper) not in page.content()
    expect(page.get_by_role("button", name=f"Bel ook de helper {masked(helper)} via Buurtlijn")).to_be_visible()
    assert_accessible(page)

    day = dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=3)
    meeting = dt.datetime.combine(day, dt.time(10, 30), tzinfo=AMSTERDAM)
    page.get_by_label("Afgesproken moment (mag leeg blijven)").fill(meeting.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Notitie bij de match (mag leeg blijven)").fill("Allebei gebeld; helper neemt zijn boor mee.")
    page.get_by_role("button", name="Match bevestigen").click()
    expect(page.locator(".flash.ok")).to_contain_text(
        f"De match is bevestigd voor {meeting.strftime('%d-%m-%Y %H:%M')}.")
    expect(page.locator(f"#item-{item_id}")).to_have_count(0)

    with get_database(served).transaction() as session:
        match = session.get(Match, match_id)
        assert (match.status, match.meeting_at) == ("confirmed", meeting.astimezone(dt.timezone.utc))
        assert session.get(Callback, item_id).status == "done"
    for phone in (requester, helper):
        assert fake_twilio_server.wait_for(
            lambda fake, phone=phone: any(b.startswith("Afgesproken:") for b in bodies_to(fake, phone)), timeout=10)
        [confirmation] = [b for b in bodies_to(fake_twilio_server, phone) if b.startswith("Afgesproken:")]
        assert "om 10:30" in confirmation
    page.context.close()


def test_screenshots_of_the_queue_and_an_item(served, browser, base, tmp_path):
    """A realistic queue for the README; every shown page also passes axe-core."""
    screenshots = DOCS_SCREENSHOTS if os.environ.get("BUURTLIJN_SCREENSHOTS") == "1" else tmp_path
    samples: list[tuple[str, str, str, str]] = [
        ("offer", "groceries", "2035", "Ik kan op dinsdag en donderdag boodschappen doen bij de Vomar."),
        ("request", "transport", "2011", "Wie rijdt mij volgende week naar het Spaarne Gasthuis?"),
        ("request", "digital", "2021", "Mijn nieuwe telefoon doet raar met WhatsApp."),
        ("offer", "company", "2031", "Graag een wandeling of een kop koffie, ik woon bij het Reinaldapark."),
        ("request", "chores", "2014", "Lamp in de gang is kapot, ik kan zelf niet op een trap."),
    ]
    for kind, category, postcode, description in samples:
        seed(served, kind, category, postcode, description)
    _, callback_id, requester = seed(served, "request", "groceries", "2034",
                                     "Ik ben slecht ter been. Wie haalt één keer per week mijn boodschappen?")
    with get_database(served).transaction() as session:
        session.execute(update(Callback).where(Callback.id == callback_id)
                        .values(due_at=utcnow() - dt.timedelta(days=4)))
        # The same neighbour also asked to be called back: both show, so one call settles both.
        same_resident = resident_for(session, parse_phone(requester))
        also_asked = queue_callback(session, "callback_requested", resident_id=same_resident.id).id
        resident = resident_for(session, parse_phone(new_phone()))
        resident.district = "oost"
        queue_callback(session, "callback_requested", resident_id=resident.id, note="Wil graag even bellen")
    _match_id, match_item, _requester, _helper = helper_said_ja(
        served, base, "Mijn kleinzoon woont ver weg. Wie helpt mij met videobellen op mijn tablet?",
        "Ik werk in de ICT en help graag met telefoons en tablets.", category="digital")

    page = new_page(browser)
    log_in(page, base, "mila@buuv.example")
    page.goto(f"{base}/dashboard?district=")
    expect(page.locator(f"#item-{callback_id}")).to_contain_text("+1 open bij deze bewoner")
    assert_accessible(page)
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / "queue.png"), full_page=False)

    page.locator(f"#item-{callback_id}").get_by_role("button", name="Oppakken").click()
    page.get_by_role("button", name="Bel ").click()
    expect(page.locator("#call-progress")).to_be_visible()
    expect(page.locator("#also-open").get_by_role("link")).to_have_attribute(
        "href", f"/dashboard/items/{also_asked}")
    assert_accessible(page)
    page.screenshot(path=str(screenshots / "item.png"), full_page=True)

    page.goto(f"{base}/dashboard")
    page.locator(f"#item-{match_item}").get_by_role("button", name="Oppakken").click()
    expect(page.locator("#match")).to_be_visible()
    assert_accessible(page)
    page.screenshot(path=str(screenshots / "match.png"), full_page=True)
    for name in ("queue.png", "item.png", "match.png"):
        assert (screenshots / name).stat().st_size > 10_000
    page.context.close()


def test_english_and_coordinator_pages_pass_axe(served, browser, base):
    from models.api_clients import create_api_client

    with get_database(served).transaction() as session:
        create_api_client(session, "BUUV marktplaats", "write")
    page = new_page(browser)
    log_in(page, base, "cor@buuv.example")
    for path in ("/dashboard/brokers", "/dashboard/api-clients", "/dashboard/audit", "/dashboard/events", "/dashboard/new"):
        page.goto(base + path)
        assert_accessible(page)
    page.get_by_role("button", name="Switch the dashboard to English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)
    page.get_by_role("button", name="Zet het dashboard in het Nederlands").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    page.context.close()


def test_a_residents_privacy_pages_pass_axe_and_erase_by_keyboard(served, browser, base):
    _listing_id, callback_id, phone = seed(served)
    page = new_page(browser)
    log_in(page, base, "cor@buuv.example")
    page.goto(f"{base}/dashboard/items/{callback_id}")
    page.get_by_role("link", name="Inzage en wissen (privacy)").click()
    expect(page.get_by_role("heading", name="Alles wissen")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Afdrukbare pagina").click()
    expect(page.get_by_role("heading", name="Uw gegevens bij Buurtlijn (BUUV)")).to_be_visible()
    assert_accessible(page)
    page.go_back()
    page.get_by_label("Ja, ik wil alles over deze bewoner wissen").check()
    page.get_by_role("button", name="Alles wissen").press("Enter")
    expect(page.get_by_text("Alles over deze bewoner is gewist.").first).to_be_visible()
    assert readable(phone) not in page.content() and phone not in page.content()
    assert_accessible(page)


def test_the_report_page_passes_axe_works_by_keyboard_and_prints(served, browser, base):
    from tests.test_reports import _seed

    with get_database(served).transaction() as session:
        _seed(session)
    page = new_page(browser)
    log_in(page, base, "cor@buuv.example")
    page.get_by_role("link", name="Rapportage").click()
    expect(page.get_by_role("heading", name="Rapportage", level=1)).to_be_visible()
    assert_accessible(page)
    # By keyboard alone: choose the period and the grouping, then show.
    page.get_by_label("Periode").select_option("custom")
    page.get_by_label("Van", exact=True).fill("2026-03-01")
    page.get_by_label("Tot en met", exact=True).fill("2026-03-31")
    page.get_by_label("Indelen naar").focus()
    page.keyboard.press("ArrowDown")  # district -> category
    _tab_to(page, "Toon")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Cijfers van 01-03-2026 tot en met 31-03-2026")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Soort hulp").first).to_be_visible()
    assert page.locator("svg.chart").count() == 5
    assert_accessible(page)
    # Printed: no navigation, no form; the tables and charts stay.
    page.emulate_media(media="print")
    expect(page.locator(".dash-nav")).to_be_hidden()
    expect(page.locator(".report-form")).to_be_hidden()
    expect(page.locator("svg.chart").first).to_be_visible()
    page.emulate_media(media="screen")
    page.get_by_role("button", name="Switch the dashboard to English").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Zet het dashboard in het Nederlands").click()
    page.context.close()


# --- on the road: a phone at 390 px ---------------------------------------------------------------

PHONE = {"width": 390, "height": 844}  # a phone held upright


def _fits_the_phone(page: Page) -> None:
    """No sideways scrolling of the page; a wide table scrolls inside its own box."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate("""(limit) => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > limit && !e.closest('.table-wrap'))
        .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))""",
                         PHONE["width"])
    assert width <= PHONE["width"], f"the page {page.url} is {width}px wide: {wide}"
    assert_accessible(page)


def test_the_item_page_works_on_a_phone_for_every_kind_of_item(served, browser, base):
    # With suggestions: a request and an offer that fits it.
    _, with_suggestions, _ = seed(served, "request", "groceries", "2034",
                                  "Wie haalt op vrijdag mijn boodschappen? Ik woon op de derde verdieping zonder lift.")
    offer_id, _, _ = seed(served, "offer", "groceries", "2034", DESCRIPTIONS[("offer", "groceries")])
    # With texts: a resident's words the gateway did not understand, one of them long and without spaces.
    texter = new_phone()
    for body in ("Goedemiddag, mijn buurvrouw zoekt iemand voor de hond, kunt u bellen?",
                 "https://voorbeeld.nl/" + "heel-lang-zonder-spaties-" * 8):
        status, _twiml = post_signed(f"{base}/twilio/sms", sms_params(account_sid=ACCOUNT_SID, from_=texter,
                                                                      to=GATEWAY_NUMBER, body=body), AUTH_TOKEN)
        assert status == 200
    with get_database(served).transaction() as session:
        with_texts = session.scalars(select(Callback.id).join(Message, Message.callback_id == Callback.id)
                                     .where(Message.phone == texter)).first()
    assert with_texts is not None
    # With a match: the helper said yes.
    _match_id, with_match, _, _ = helper_said_ja(
        served, base, "Mijn computer start niet meer op. Wie kan er even naar kijken?",
        "Ik ben handig met computers en kom graag langs.", category="digital")

    context = browser.new_context(viewport=PHONE, locale="nl-NL", timezone_id="Europe/Amsterdam",
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    log_in(page, base, "mila@buuv.example")
    _fits_the_phone(page)
    for item in (with_suggestions, with_texts, with_match):
        page.goto(f"{base}/dashboard/items/{item}")
        page.get_by_role("button", name="Dit item oppakken").click()
        expect(page.locator("#resident-phone")).to_be_visible()
        page.locator("#listing-edit summary").click() if page.locator("#listing-edit").count() else None
        _fits_the_phone(page)
        # Every button on the page can be reached (scrolled to) and lies within the screen's width.
        for button in page.locator("main button:visible").all():
            button.scroll_into_view_if_needed()
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], button.inner_text()
    expect(page.locator(f"#suggestion-{offer_id}")).to_have_count(0)  # the last page was the match's
    page.goto(f"{base}/dashboard/items/{with_suggestions}")
    expect(page.locator(f"#suggestion-{offer_id}")).to_be_visible()
    page.goto(f"{base}/dashboard/items/{with_texts}")
    expect(page.locator("#texts")).to_contain_text("mijn buurvrouw zoekt iemand voor de hond")
    context.close()


def test_a_broker_is_disabled_only_after_saying_yes(served, browser, base):
    from models.accounts import create_broker

    with get_database(served).transaction() as session:
        create_broker(session, email="tim@buuv.example", name="Tim", role="broker", phone=None, password=PASSWORD)
    page = new_page(browser)
    log_in(page, base, "cor@buuv.example")
    page.goto(f"{base}/dashboard/brokers")
    tim = page.locator("tr", has_text="tim@buuv.example")
    tim.get_by_role("button", name="Uitschakelen").click()
    expect(page.get_by_text("Weet u zeker dat u Tim (tim@buuv.example) wilt uitschakelen?")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Nee, terug").click()
    expect(tim).to_contain_text("Actief")
    tim.get_by_role("button", name="Uitschakelen").click()
    page.get_by_role("button", name="Ja, uitschakelen").click()
    expect(page.locator(".flash.ok")).to_have_text("tim@buuv.example is uitgeschakeld en kan niet meer inloggen.")
    expect(page.locator("tr", has_text="tim@buuv.example")).to_contain_text("Uitgeschakeld")
    page.context.close()


def test_a_broker_closes_and_reopens_a_listing_from_its_page(served, browser, base):
    listing_id, callback_id, _ = seed(served, "request", "chores", "2034", DESCRIPTIONS[("request", "chores")])
    page = new_page(browser)
    log_in(page, base, "bram@buuv.example")
    page.locator(f"#item-{callback_id}").get_by_role("button", name="Oppakken").click()
    page.get_by_role("button", name="Sluiten: ingetrokken").click()
    expect(page.get_by_text("Weet u zeker dat u dit wilt sluiten als ingetrokken?")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Ja, sluiten").click()
    expect(page.locator(".flash.ok")).to_contain_text("Gesloten (gestopt): Vraag")
    page.get_by_role("button", name="Weer openzetten").click()
    expect(page.locator(".flash.ok")).to_contain_text("Weer open: Vraag")
    page.locator("#listing-edit summary").click()
    page.locator("#edit-postcode").fill("2011")
    page.get_by_role("button", name="Wijzigingen opslaan").click()
    expect(page.locator(".flash.ok")).to_contain_text("Aangepast: Vraag")
    assert_accessible(page)
    with get_database(served).transaction() as session:
        from models import Listing

        listing = session.get(Listing, listing_id)
        assert (listing.status, listing.postcode, listing.district) == ("open", "2011", "centrum")
    page.context.close()
