"""In Chromium, as people use it: the hospital's notifications and a care communication reach Samsø's home
care; the nurse reads her unit's messages and the citizens in hospital now, opens the thread and
replies; the GP writes a care communication with an attachment from the citizen's course. Each page is
checked with axe (WCAG 2.1 A/AA) in Danish and English, and photographed for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from naer import clock
from naer.access import accounts
from naer.messaging.receive import receive
from tests import messaging_world as mw
from tests.accessibility import check
from tests.conftest import PASSWORD, SCREENSHOTS, served, sign_in
from tests.coordination_world import NOW, World, build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    from naer.api.app import create_app
    from naer.store.migrate import upgrade
    from naer.web.coordination import add_course_pages
    from naer.web.gate import SignInGate
    from naer.web.messages import add_message_pages
    from naer.web.signin import add_access_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('messaging-browser') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    mw.prepare(made)
    for name in ("nurse", "gp"):
        accounts.set_password(made.db, name, PASSWORD)
    clock.set_clock(NOW)
    stay = mw.Stay(start=NOW - 30 * mw.HOUR)
    receive(made.db, orjson.dumps(stay.send("STIN", NOW - 30 * mw.HOUR)))
    receive(made.db, orjson.dumps(stay.send("STOR", NOW - 6 * mw.HOUR, leave_start=NOW - 6 * mw.HOUR)))
    other = mw.Stay("p-admitted", start=NOW - 50 * mw.HOUR)
    receive(made.db, orjson.dumps(other.send("STIN", NOW - 50 * mw.HOUR)))
    receive(made.db, orjson.dumps(other.send("SLHJ", NOW - 2 * mw.HOUR, end=NOW - 2 * mw.HOUR)))
    note = "Fru Hansen er udskrevet i dag. Se epikrisen.\nRing ved spørgsmål."
    receive(made.db, orjson.dumps(mw.care_message(text=note)))
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add_course_pages(app)
    add_message_pages(app)
    app.add_middleware(SignInGate)
    try:
        with served(app) as base:
            yield made, base
    finally:
        clock.set_clock(None)


def _page(browser: Any) -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser.new_context(viewport={"width": 1280, "height": 900}).new_page()


def test_the_nurse_reads_her_unit_s_messages_and_replies(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    clock.set_clock(NOW)
    nurse = _page(browser)
    sign_in(nurse, base, "nurse")
    nurse.goto(f"{base}/messages")
    listed = nurse.inner_text("main")
    assert "STOR: Start orlov" in listed and "Korrespondancemeddelelse" in listed
    nurse.screenshot(path=str(SCREENSHOTS / "messages-home-care.png"), full_page=True)
    check(nurse, "messages (da)")
    nurse.goto(f"{base}/messages?lang=en")
    assert "Hospital notification" in nurse.inner_text("main")
    check(nurse, "messages (en)")
    nurse.goto(f"{base}/messages/admitted?lang=da")
    text = nurse.inner_text("main")
    assert "Test P-Home" in text and "På orlov" in text and "P-Admitted" not in text  # discharged: not listed
    nurse.screenshot(path=str(SCREENSHOTS / "messages-admitted.png"), full_page=True)
    check(nurse, "citizens in hospital now (da)")
    nurse.goto(f"{base}/messages")
    nurse.click("table a:has-text('Korrespondancemeddelelse')")
    nurse.wait_for_selector("ol.thread li")
    assert "Ring ved spørgsmål." in nurse.inner_text("ol.thread")
    check(nurse, "a care communication (da)")
    nurse.fill("#reply-text", "Tak. Vi besøger hende i eftermiddag og ringer, hvis noget er galt.")
    nurse.fill("#reply-phone", "87 92 30 00")
    nurse.click("button:has-text('Send svaret')")
    nurse.wait_for_selector("text=Meddelelsen er sendt.")
    assert "Kvitteret" in nurse.inner_text("dl.facts")  # the department (in this Nær) acknowledged it
    assert "Vi besøger hende" in nurse.inner_text("ol.thread")
    nurse.screenshot(path=str(SCREENSHOTS / "message-reply-sent.png"), full_page=True)
    check(nurse, "a sent reply (da)")
    nurse.goto(nurse.url.split("?")[0] + "?lang=en")
    check(nurse, "a sent reply (en)")
    nurse.context.close()


def test_the_gp_writes_with_an_attachment(site: tuple[World, str], browser: Any, tmp_path: Any) -> None:
    _, base = site
    clock.set_clock(NOW)
    gp = _page(browser)
    sign_in(gp, base, "gp")
    gp.goto(f"{base}/citizen/p-home/course")
    gp.click("text=Skriv en korrespondancemeddelelse")
    gp.wait_for_selector("form textarea#text")
    check(gp, "write a care communication (da)")
    gp.select_option("#receiver", mw.SORS["home-0741"])
    gp.select_option("#category", "medicine")
    gp.fill("#text", "Furosemid øges til 40 mg x 2 fra i morgen. Vægt dagligt, ring ved stigning over 2 kg.")
    pdf = tmp_path / "ordination.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% Naer test\n")
    gp.set_input_files("#attachment", str(pdf))
    gp.wait_for_selector("text=Filen er vedhæftet.")
    gp.fill("#attachment_title", "Medicinliste")
    gp.fill("#phone", "86 59 11 00")
    gp.screenshot(path=str(SCREENSHOTS / "message-new-gp.png"), full_page=True)
    gp.click("button[type=submit]:has-text('Send')")
    gp.wait_for_selector("text=Meddelelsen er sendt.")
    text = gp.inner_text("main")
    assert "Medicinliste" in text and "Kvitteret" in text
    check(gp, "a sent care communication (da)")
    gp.goto(f"{base}/citizen/p-home/message?lang=en")
    check(gp, "write a care communication (en)")
    gp.context.close()
