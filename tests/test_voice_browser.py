"""The call simulator in a real browser (Debian's chromium via Playwright):
keys by mouse and by keyboard, a spoken message, WCAG checked with axe-core,
and nothing refused by the Content-Security-Policy.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from gateway.database import get_database
from models import Callback, Listing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_calling_in_the_browser_with_mouse_and_keyboard(demo):
    app, base = demo
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1180, "height": 820}, locale="nl-NL")
        # A Content-Security-Policy refusal, a script error or a missing file shows here.
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/simulator/")
        log = page.locator("#call-log")
        panel = page.get_by_role("region", name="Bellen")
        # Nobody rings yet: the answering phone's buttons and keypad stay out of sight.
        for control in ("#notify-answer", "#notify-decline", "#notify-hangup", "#notify-keys"):
            expect(page.locator(control)).to_be_hidden()

        panel.get_by_role("button", name="Bellen").click()
        expect(log).to_contain_text("Welkom bij Buurtlijn")
        expect(page.locator("#call-state")).to_have_text("Druk één toets.")
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()

        panel.get_by_role("button", name="Toets 1").click()  # ask for help, by mouse
        expect(log).to_contain_text("Voor boodschappen, druk 1.")
        page.locator("body").press("1")  # groceries, by keyboard
        expect(log).to_contain_text("Toets de 4 cijfers van uw postcode.")
        expect(page.locator("#call-state")).to_have_text("Toets de 4 cijfers.")  # no '#' needed after four
        for key in "2034":
            page.locator("body").press(key)
        expect(log).to_contain_text("twee, nul, drie, vier")
        page.locator("body").press("1")
        expect(log).to_contain_text("Wanneer heeft u de hulp nodig?")
        page.locator("body").press("1")
        expect(page.locator("#call-record")).to_be_visible()
        panel.get_by_label("Hoe lang u praat (seconden)").fill("2")
        panel.get_by_role("button", name="Klaar: hekje (#)").click()
        expect(log).to_contain_text("Dank u wel! Uw vraag staat bij BUUV.")
        expect(page.locator("#call-state")).to_have_text("Geen gesprek.")
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
        browser.close()
    assert errors == []
    session = get_database(app).session()
    listing = session.scalars(select(Listing)).one()
    assert (listing.category, listing.postcode, listing.has_recording) == ("groceries", "2034", True)
    assert [c.reason for c in session.scalars(select(Callback))] == ["new_listing"]
    session.close()
