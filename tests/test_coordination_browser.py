"""In Chromium, as people use it: a home-care nurse asks the medical department for advice from the
citizen's page, the department's physician finds it in the inbox and answers, the nurse reads the answer
and closes the thread; a follow-up handed over at discharge shows in the nurse's inbox. Each page is
checked with axe (WCAG 2.1 A/AA) in Danish and English, and photographed for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from naer import clock
from naer.access import accounts
from tests.accessibility import check
from tests.conftest import PASSWORD, SCREENSHOTS, served, sign_in
from tests.coordination_world import NOW, World, build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    from naer.api.app import create_app
    from naer.coordination import beds
    from naer.store.migrate import upgrade
    from naer.web.coordination import (
        add_coordination_pages,
        add_course_pages,
        add_figures_pages,
        add_task_pages,
    )
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages
    from naer.web.teamwork import add_teamwork_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('coordination-browser') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    for name in ("nurse", "phys", "planner", "citizen", "gp", "admin"):
        accounts.set_password(made.db, name, PASSWORD)
    beds.provide_beds(made.db, "acute-0741", 4)
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add_coordination_pages(app)
    add_course_pages(app)
    add_task_pages(app)
    add_figures_pages(app)
    add_teamwork_pages(app)
    app.add_middleware(SignInGate)
    try:
        with served(app) as base:
            yield made, base
    finally:
        clock.set_clock(None)


def _page(browser: Any) -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser.new_context(viewport={"width": 1280, "height": 900}).new_page()


def test_advice_from_question_to_closed_thread(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    clock.set_clock(NOW)
    nurse = _page(browser)
    sign_in(nurse, base, "nurse")
    nurse.goto(f"{base}/citizen/p-home")
    nurse.click("text=Bed en hospitalsafdeling om rådgivning")
    nurse.wait_for_selector("form textarea#question")
    check(nurse, "advice form (da)")
    nurse.select_option("#department", "dept-med")
    nurse.select_option("#urgency", "same-day")
    nurse.fill(
        "#question", "Feber 38,9 og hoste siden i går. Skal vi starte antibiotika?\nBT 128/74, SAT 94 %."
    )
    nurse.click("button[type=submit]:has-text('Send')")
    nurse.wait_for_selector("ol.thread li")
    assert "Sendt" in nurse.inner_text("dl.facts") and "Medicinsk afdeling" in nurse.inner_text("dl.facts")
    assert "7. december 2026 15.30" in nurse.inner_text("dl.facts") or "15:30" in nurse.inner_text("dl.facts")
    nurse.screenshot(path=str(SCREENSHOTS / "advice-sent-nurse.png"), full_page=True)
    check(nurse, "advice thread, sent (da)")
    thread = nurse.url

    physician = _page(browser)
    sign_in(physician, base, "phys")
    physician.goto(f"{base}/inbox")
    physician.wait_for_selector("#new")
    assert "Test P-Home" in physician.inner_text("table.inbox >> nth=2")
    physician.screenshot(path=str(SCREENSHOTS / "inbox-department.png"), full_page=True)
    check(physician, "inbox (da)")
    physician.goto(f"{base}/inbox?lang=en")
    assert "Due within 24 hours" in physician.inner_text("main")
    check(physician, "inbox (en)")
    physician.goto(thread + "?lang=da")
    physician.click("button:has-text('Modtag')")
    physician.wait_for_selector("text=Modtaget")
    physician.fill(
        "#text-answer", "Start amoxicillin 750 mg x 3 i 7 dage. Ny CRP i morgen; ring ved SAT < 92 %."
    )
    physician.click("button:has-text('Besvar')")
    physician.wait_for_selector("ol.thread li.answer")
    physician.screenshot(path=str(SCREENSHOTS / "advice-answered-physician.png"), full_page=True)

    nurse.goto(f"{base}/inbox?whose=person")
    assert "Rådgivning" in nurse.inner_text("#answered + div")
    nurse.goto(thread)
    assert "amoxicillin" in nurse.inner_text("ol.thread")
    nurse.click("button:has-text('Afslut')")
    nurse.wait_for_selector("text=Afsluttet")
    check(nurse, "advice thread, closed (da)")
    nurse.goto(thread + "?lang=en")
    assert "Closed" in nurse.inner_text("dl.facts")
    check(nurse, "advice thread, closed (en)")
    nurse.context.close()
    physician.context.close()


def test_a_refused_question_keeps_what_was_written(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    nurse = _page(browser)
    sign_in(nurse, base, "nurse")
    nurse.goto(f"{base}/advice/new?patient=p-home&lang=da")
    nurse.select_option("#department", "")  # no department and no recent discharge: refused
    nurse.select_option("#urgency", "same-day")  # (no urgency is chosen for the nurse: acute is a choice)
    nurse.fill("#question", "<script>alert(1)</script> Hvad gør vi?")
    nurse.click("button[type=submit]:has-text('Send')")
    nurse.wait_for_selector("p.error")
    assert "name the department" in nurse.inner_text("p.error")
    assert nurse.input_value("#question") == "<script>alert(1)</script> Hvad gør vi?"  # kept, and as text
    nurse.screenshot(path=str(SCREENSHOTS / "advice-refused.png"), full_page=True)
    check(nurse, "advice form with an error (da)")
    nurse.context.close()


def test_the_planner_has_no_inbox(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    page = _page(browser)
    sign_in(page, base, "planner")
    answer = page.goto(f"{base}/inbox")
    assert answer is not None and answer.status == 403
    assert "sundhedsprofessionelle" in page.inner_text("main")
    page.context.close()


def test_a_follow_up_shows_in_the_nurses_inbox(site: tuple[World, str], browser: Any) -> None:
    import urllib.request

    w, base = site
    body = {
        "encounter": "e-adm-imp",
        "needs": [{"sector": "home-care", "need": "Daglig vægt", "due": "2026-12-08"}],
    }
    request = urllib.request.Request(
        f"{base}/workflow/discharge", data=orjson.dumps(body), headers=w.headers("phys"), method="POST"
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201
    page = _page(browser)
    sign_in(page, base, "nurse")
    page.goto(f"{base}/inbox")
    assert "Daglig vægt" in page.inner_text("#new + div")
    page.screenshot(path=str(SCREENSHOTS / "inbox-home-care.png"), full_page=True)
    page.click("#new + div >> text=Opfølgning efter udskrivelse: Daglig vægt")
    page.wait_for_selector("dl.facts")
    assert "Overdraget" in page.inner_text("dl.facts")
    check(page, "follow-up task (da)")
    page.eval_on_selector("form[action$='/accept'] input[name=version]", "e => e.value = 'abc'")
    refused = page.expect_response(lambda r: r.url.endswith("/accept"))
    with refused as answer:
        page.click("button:has-text('Acceptér')")
    assert answer.value.status == 400  # a form without a version of the Task moves nothing
    assert "Overdraget" in page.inner_text("dl.facts")
    page.click("button:has-text('Acceptér')")
    page.wait_for_selector("text=Modtaget")
    page.fill("#text-done", "Vægt 71,2 kg, stabil")
    page.click("button:has-text('Markér som udført')")
    page.wait_for_selector("text=Udført")
    assert "Vægt 71,2 kg, stabil" in page.inner_text("ol.thread")
    page.screenshot(path=str(SCREENSHOTS / "follow-up-done.png"), full_page=True)
    page.goto(page.url + "?lang=en")
    assert "Done" in page.inner_text("dl.facts")
    check(page, "follow-up task (en)")
    page.context.close()


def test_the_course_page_and_the_citizens_own_plan(site: tuple[World, str], browser: Any) -> None:
    import urllib.request

    w, base = site
    for section, body in (
        ("goal", {"description": "Kan gå til købmanden selv", "area": "function"}),
        ("activity", {"description": "Genoptræning to gange ugentligt", "organization": "rehab-0741",
                      "area": "function"}),
        ("palliative", {"place_of_care": "Hjemme", "contact": "Akutteamet, tlf. 7012 3456"}),
    ):  # fmt: skip
        request = urllib.request.Request(
            f"{base}/workflow/care-plan/p-home/{section}",
            data=orjson.dumps(body),
            headers=w.headers("gp"),
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200
    nurse = _page(browser)
    sign_in(nurse, base, "nurse")
    nurse.goto(f"{base}/citizen/p-home")
    nurse.click("text=Borgerens forløb og fælles plan")
    nurse.wait_for_selector("table.course")
    text = nurse.inner_text("main")
    assert (
        "Hvem har ansvaret for hvad" in text and "Lægehuset Samsø" in text and "Genoptræning to gange" in text
    )
    assert "Hjemmepleje" in nurse.inner_text("table.course")
    nurse.screenshot(path=str(SCREENSHOTS / "course-nurse.png"), full_page=True)
    check(nurse, "course (da)")
    for year in ("abc", "2100", "-1"):
        bad = nurse.goto(f"{base}/citizen/p-home/course?year={year}")
        assert bad is not None and bad.status == 400, year
    nurse.goto(f"{base}/citizen/p-home/course?lang=en")
    assert "Who is responsible for what" in nurse.inner_text("main")
    check(nurse, "course (en)")
    nurse.context.close()
    citizen = _page(browser)
    sign_in(citizen, base, "citizen")
    citizen.goto(f"{base}/my-plan?lang=da")
    assert "Min plan" in citizen.inner_text("h1") and "Kan gå til købmanden selv" in citizen.inner_text(
        "main"
    )
    citizen.screenshot(path=str(SCREENSHOTS / "my-plan-citizen.png"), full_page=True)
    check(citizen, "my plan (da)")
    answer = citizen.goto(f"{base}/citizen/p-home/course")
    assert answer is not None and answer.status == 403  # the clinicians' page
    citizen.context.close()


def test_the_department_books_a_referral(site: tuple[World, str], browser: Any) -> None:
    import urllib.request

    w, base = site
    body = {
        "patient": "p-home",
        "department": "dept-med",
        "track": "fast-track",
        "suspicion": "Vægttab og anæmi",
    }
    request = urllib.request.Request(
        f"{base}/workflow/referral", data=orjson.dumps(body), headers=w.headers("gp"), method="POST"
    )
    with urllib.request.urlopen(request) as answer:
        task = orjson.loads(answer.read())["entry"][0]["resource"]
    page = _page(browser)
    sign_in(page, base, "phys")
    page.goto(f"{base}/task/{task['id']}")
    assert "Henvisning til udredning" in page.inner_text("h1")
    page.fill("#text-book", "CT-skanning torsdag kl. 9")
    page.click("button:has-text('Book første undersøgelse')")
    page.wait_for_selector("text=Undersøgelse booket")
    assert "CT-skanning torsdag kl. 9" in page.inner_text("ol.thread")
    check(page, "referral task (da)")
    page.context.close()


def test_the_collaborations_figures(site: tuple[World, str], browser: Any) -> None:
    import urllib.request

    w, base = site
    body = {"patient": "p-home", "department": "dept-med", "urgency": "same-day", "question": "Til tallene"}
    asked = urllib.request.Request(
        f"{base}/workflow/advice", data=orjson.dumps(body), headers=w.headers("nurse"), method="POST"
    )
    with urllib.request.urlopen(asked) as answer:
        assert answer.status == 201
    physician = _page(browser)
    sign_in(physician, base, "phys")
    physician.click("text=Samarbejdet")
    physician.wait_for_selector("h1")
    text = physician.inner_text("main")
    assert "Rådgivning besvaret inden for den aftalte svartid" in text and "Medicinsk afdeling" in text
    physician.screenshot(path=str(SCREENSHOTS / "figures-physician.png"), full_page=True)
    check(physician, "figures (da)")
    physician.goto(f"{base}/figures?lang=en")
    assert "Advice answered within the agreed time" in physician.inner_text("main")
    check(physician, "figures (en)")
    physician.context.close()
    planner = _page(browser)
    sign_in(planner, base, "planner")
    planner.goto(f"{base}/figures?lang=da")
    assert "færre end 5" in planner.inner_text("main")  # a handful of requests: not shown to planners
    planner.context.close()


def test_the_registers_beds_responsibility_and_the_plans_forms(site: tuple[World, str], browser: Any) -> None:
    """The administrator registers a course; the GP takes the medical responsibility and delegates IV
    antibiotics; the nurse admits the citizen to an acute bed, assigns the treatment to herself (she
    holds the competence), and adds a goal to the care plan from the course page."""
    _, base = site
    clock.set_clock(NOW)
    admin = _page(browser)
    sign_in(admin, base, "admin")
    admin.goto(f"{base}/competence?organization=muni-0741&competence=iv-therapy")
    admin.fill("#practitioner", "pr-nurse")
    admin.select_option("#reg-competence", "iv-therapy")
    admin.fill("#completed", "2026-11-02")
    admin.click("button:has-text('Registrér')")
    admin.wait_for_selector("p.notice")
    assert "1 af" in admin.inner_text("p.figure")
    admin.screenshot(path=str(SCREENSHOTS / "competence-admin.png"), full_page=True)
    check(admin, "competence register (da)")
    admin.goto(f"{base}/competence?organization=muni-0741&competence=iv-therapy&lang=en")
    assert "Who can do it" in admin.inner_text("main")
    check(admin, "competence register (en)")
    admin.context.close()

    gp = _page(browser)
    sign_in(gp, base, "gp")
    gp.goto(f"{base}/citizen/p-home/responsibility?lang=da")
    gp.click("summary:has-text('Påtag dig behandlingsansvaret')")
    gp.select_option("#setting", "acute-bed")
    gp.click("button:has-text('Påtag ansvaret')")
    gp.wait_for_selector("p.notice")
    gp.click("summary:has-text('Delegér en behandling')")
    gp.select_option("#treatment", "iv-antibiotics")
    gp.fill("#d-end", "2027-01-06")
    gp.fill("#conditions", "Ved feber over 38,5 og CRP over 100")
    gp.fill("#instruction_title", "IV antibiotika på akutpladsen")
    gp.fill(
        "#instruction", "1. Kontrollér identitet.\n2. Anlæg PVK.\n3. Giv piperacillin/tazobactam 4 g x 3."
    )
    gp.click("button:has-text('Delegér')")
    gp.wait_for_selector("p.notice")
    assert "Intravenøs antibiotika" in gp.inner_text("#delegations + div")
    gp.screenshot(path=str(SCREENSHOTS / "responsibility-gp.png"), full_page=True)
    check(gp, "responsibility and delegation (da)")
    gp.context.close()

    nurse = _page(browser)
    sign_in(nurse, base, "nurse")
    nurse.goto(f"{base}/beds?unit=acute-0741")
    nurse.fill("#patient", "p-home")
    nurse.select_option("#physician", "role-gp")
    nurse.fill("#reason", "Pneumoni, IV antibiotika")
    nurse.click("button:has-text('Indlæg')")
    nurse.wait_for_selector("p.notice")
    assert "Test P-Home" in nurse.inner_text("#stays + p + div")
    nurse.wait_for_selector("#chart-occupancy svg")
    nurse.screenshot(path=str(SCREENSHOTS / "beds-nurse.png"), full_page=True)
    check(nurse, "acute beds (da)")
    nurse.goto(f"{base}/beds?unit=acute-0741&lang=en")
    assert "Occupancy over the last 30 days" in nurse.inner_text("main")
    check(nurse, "acute beds (en)")
    nurse.goto(f"{base}/citizen/p-home/responsibility?lang=da")
    nurse.select_option("form[action$='/assign'] select", "role-nurse")
    nurse.click("form[action$='/assign'] button")
    nurse.wait_for_selector("p.notice")
    check(nurse, "responsibility, the nurse (da)")
    nurse.goto(f"{base}/citizen/p-home/course?lang=da")
    nurse.click("summary:has-text('Et mål')")
    nurse.fill("#goal-description", "Kan gå <b>til</b> købmanden igen")
    nurse.select_option("#goal-area", "function")
    nurse.click("button:has-text('Tilføj målet')")
    nurse.wait_for_selector("p.notice")
    assert "Kan gå <b>til</b> købmanden igen" in nurse.inner_text("main")  # shown as the text it is
    nurse.screenshot(path=str(SCREENSHOTS / "course-plan-forms-nurse.png"), full_page=True)
    check(nurse, "course with the plan's forms (da)")
    nurse.context.close()
