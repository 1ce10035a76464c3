"""The pages of the registers the sectors share, in process and as forms are sent: the competence
register (coverage on a day, expiry, an administrator's registration), the acute beds (occupancy and its
chart, admission with the responsible physician, a full unit refused, discharge), one citizen's medical
responsibility and framework delegations, and the care plan's forms on the course page. Every refusal
is shown on the page with the store's reason and nothing written; data is escaped where it lands."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer.access import sessions
from naer.api.auth import SESSION_COOKIE
from naer.coordination import beds
from naer.store.tables import resources
from tests.coordination_world import World, build, monday_morning  # noqa: F401 (monday_morning: autouse)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Any]]:
    from naer import clock
    from naer.api.app import create_app
    from naer.store.migrate import upgrade
    from naer.web.coordination import add_course_pages
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages
    from naer.web.teamwork import add_teamwork_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('teamwork-pages') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    beds.provide_beds(made.db, "acute-0741", 2)
    beds.provide_beds(made.db, "acute-small", 1)
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add_course_pages(app)
    add_teamwork_pages(app)
    app.add_middleware(SignInGate)
    try:
        yield made, app
    finally:
        clock.set_clock(None)


def _as(site: tuple[World, Any], person: str) -> TestClient:
    w, app = site
    secret = sessions.start(w.db, person, "testclient", 1)
    return TestClient(app, cookies={SESSION_COOKIE: secret})


def _send(client: TestClient, page: str, action: str, **fields: str) -> Any:
    """Open ``page`` (for the form token), then send the form to ``action`` as a browser does."""
    assert client.get(page).status_code in (200, 400, 404, 409, 412, 422)
    from urllib.parse import urlencode

    body = urlencode({"csrf": client.cookies.get("naer_csrf") or "", **fields})
    return client.post(action, content=body, headers=FORM, follow_redirects=False)


def _count(w: World, kind: str) -> int:
    with w.db.connect() as con:
        query = select(func.count()).select_from(resources).where(resources.c.resource_type == kind)
        return int(con.execute(query).scalar_one())


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_competence_register_page(site: tuple[World, Any]) -> None:
    w, _app = site
    admin = _as(site, "admin")
    page = admin.get("/competence?competence=iv-therapy&organization=muni-0741")
    assert page.status_code == 200 and "Kompetenceregister" in page.text
    assert "0 af 3 personer har" in _text(page.text)  # three nurses work on Samsø, none holds it yet
    done = _send(admin, "/competence", "/competence", practitioner="pr-nurse", competence="iv-therapy",
                 completed="2026-11-02", issuer="acute-0741")  # fmt: skip
    assert done.status_code == 303, done.text
    page = admin.get("/competence?competence=iv-therapy&organization=muni-0741&day=2026-12-07")
    assert (
        "1 af 3 personer har" in _text(page.text) and "pr-nurse" not in _text(page.text).split("Navn")[1][:40]
    )
    assert "nurse" in _text(page.text)  # the holder by name (the test people's family name)
    before = _count(w, "Practitioner")
    for bad in ({"completed": "2026-13-40"}, {"completed": "2999-01-01"}, {"completed": ""}):
        refused = _send(admin, "/competence", "/competence", practitioner="pr-nurse2",
                        competence="iv-therapy", **bad)  # fmt: skip
        assert refused.status_code == 400 and 'class="error"' in refused.text, bad
    assert _count(w, "Practitioner") == before
    english = admin.get("/competence?lang=en&competence=iv-therapy&organization=muni-0741&within=30")
    assert "Expiring or expired" in english.text
    nurse = _as(site, "nurse")
    mine = nurse.get("/competence")  # a nurse sees her municipality by default, and cannot register
    assert (
        mine.status_code == 200
        and "Samsø Kommune" in mine.text
        and "Registrér et gennemført" not in mine.text
    )
    assert _send(nurse, "/competence", "/competence", practitioner="pr-nurse2", competence="iv-therapy",
                 completed="2026-11-02").status_code == 403  # fmt: skip
    assert _as(site, "planner").get("/competence").status_code == 403
    assert _as(site, "citizen").get("/competence").status_code == 403
    unknown = admin.get("/competence?organization=nowhere")
    assert unknown.status_code == 422 and "Organization/nowhere" in unknown.text
    assert admin.get("/competence?day=31.12.2026").status_code == 400
    anonymous = TestClient(site[1]).get("/competence", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_the_acute_beds_page(site: tuple[World, Any]) -> None:
    w, _app = site
    assert "Samsø Sundheds- og Akuthus" in _as(site, "acute-nurse").get("/beds").text  # her own unit first
    nurse = _as(site, "nurse")  # the home-care nurse admits the citizen she cares for
    page = nurse.get("/beds?unit=acute-0741")
    assert page.status_code == 200
    spec = re.search(r'<script type="application/json" id="spec-occupancy">(.*?)</script>', page.text, re.S)
    assert spec is not None
    chart = json.loads(spec.group(1))  # occupied beds each day of the last 30, against the unit's beds
    assert len(chart["layer"][0]["data"]["values"]) == 30 and chart["layer"][1]["data"]["values"] == [
        {"beds": 2}
    ]
    assert "role-gp" in page.text  # the GP may be chosen as the responsible physician
    admitted = _send(nurse, "/beds?unit=acute-small", "/beds/admit", unit="acute-small", patient="p-home",
                     physician="role-gp", reason="<b>Pneumoni</b>")  # fmt: skip
    assert admitted.status_code == 303 and admitted.headers["location"].startswith("/beds?unit=acute-small")
    page = nurse.get("/beds?unit=acute-small")
    text = _text(page.text)
    assert "1 af 1 plads optaget" in text and "Test P-Home" in text
    before = _count(w, "Encounter")
    full = _send(nurse, "/beds?unit=acute-small", "/beds/admit", unit="acute-small", patient="p-admitted",
                 physician="role-gp")  # fmt: skip
    assert full.status_code == 409 and "is full" in full.text and 'value="p-admitted"' in full.text
    assert _count(w, "Encounter") == before
    nobody = _send(nurse, "/beds", "/beds/admit", unit="acute-0741", patient="p-home",
                   physician="role-nurse")  # a nurse is no physician  # fmt: skip
    assert nobody.status_code == 422 and _count(w, "Encounter") == before
    stay = re.search(r'action="/beds/([^/"]+)/discharge"', page.text)
    assert stay is not None
    wrong = _send(nurse, "/beds?unit=acute-small", f"/beds/{stay.group(1)}/discharge", unit="acute-small",
                  disposition="moon", version="1")  # fmt: skip
    assert wrong.status_code == 400
    out = _send(nurse, "/beds?unit=acute-small", f"/beds/{stay.group(1)}/discharge", unit="acute-small",
                disposition="home", version="1")  # fmt: skip
    assert out.status_code == 303
    assert "0 af 1 plads optaget" in _text(nurse.get("/beds?unit=acute-small").text)
    assert nurse.get("/beds?unit=home-0741").status_code == 404  # not an acute unit
    assert _as(site, "planner").get("/beds").status_code == 403


def test_responsibility_and_delegation_pages(site: tuple[World, Any]) -> None:
    w, _app = site
    gp = _as(site, "gp")
    page = gp.get("/citizen/p-home/responsibility")
    assert page.status_code == 200 and "Ingen registreret" in page.text
    taken = _send(gp, "/citizen/p-home/responsibility", "/citizen/p-home/responsibility", setting="home",
                  start="2026-12-07")  # fmt: skip
    assert taken.status_code == 303
    page = gp.get("/citizen/p-home/responsibility")
    assert "Behandling i eget hjem" in page.text and "indtil videre" in page.text
    teams = _count(w, "CareTeam")
    overlap = _send(gp, "/citizen/p-home/responsibility", "/citizen/p-home/responsibility", setting="home",
                    start="2026-12-10")  # fmt: skip
    assert overlap.status_code == 409 and "end it first" in overlap.text and _count(w, "CareTeam") == teams
    refused = _send(gp, "/citizen/p-home/responsibility", "/citizen/p-home/delegation",
                    treatment="prescribing",
                    start="2026-12-07", end="2027-01-07", conditions="x", instruction_title="x",
                    instruction="x")  # fmt: skip
    assert refused.status_code == 422 and "cannot be delegated" in refused.text
    made = _send(gp, "/citizen/p-home/responsibility", "/citizen/p-home/delegation",
                 treatment="iv-antibiotics", start="2026-12-07", end="2027-01-07",
                 conditions="Ved CRP > 100 og feber <script>alert(1)</script>",
                 instruction_title="IV antibiotika i hjemmet", instruction="1. Tjek navn og CPR ...",
                 instruction_version="2026-1")  # fmt: skip
    assert made.status_code == 303, made.text
    nurse = _as(site, "nurse")
    page = nurse.get("/citizen/p-home/responsibility")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "Påtag dig behandlingsansvaret" not in page.text  # a nurse holds no medical responsibility
    delegation = re.search(r'action="/citizen/p-home/delegation/([^/"]+)/assign"', page.text)
    assert delegation is not None
    tasks = _count(w, "Task")
    no_course = _send(nurse, "/citizen/p-home/responsibility",
                      f"/citizen/p-home/delegation/{delegation.group(1)}/assign", nurse="role-nurse2",
                      day="2026-12-08")  # fmt: skip
    assert no_course.status_code == 422 and "does not hold the competence" in no_course.text
    assert _count(w, "Task") == tasks
    assert _send(nurse, "/citizen/p-home/responsibility", "/citizen/p-home/responsibility", setting="home",
                 start="2027-02-01").status_code == 403  # fmt: skip
    stranger = _as(site, "nurse-other")
    assert stranger.get("/citizen/p-home/responsibility").status_code == 404
    page_url = "/citizen/p-home/responsibility"
    team = re.search(r'action="/citizen/p-home/responsibility/([^/"]+)/end"', gp.get(page_url).text)
    assert team is not None
    teams = _count(w, "CareTeam")
    wrong = f"/citizen/p-admitted/responsibility/{team.group(1)}/end"
    elsewhere = _send(gp, page_url, wrong, end="2026-12-20")
    assert elsewhere.status_code == 422 and "not Patient/p-admitted" in elsewhere.text  # one citizen's page
    requests = _count(w, "ServiceRequest")
    long = _send(gp, page_url, "/citizen/p-home/delegation", treatment="iv-antibiotics", start="2026-12-07",
                 end="2027-01-07", conditions="c", instruction_title="t",
                 instruction="æ" * 100_000)  # fmt: skip
    assert long.status_code == 303 and _count(w, "ServiceRequest") == requests + 1  # as long as it may be
    too_long = _send(gp, page_url, "/citizen/p-home/delegation", instruction="x" * 1_100_000)
    assert too_long.status_code == 413 and "længere" in too_long.text
    assert _count(w, "CareTeam") == teams


def test_the_care_plan_forms_on_the_course_page(site: tuple[World, Any]) -> None:
    w, _app = site
    nurse = _as(site, "nurse")
    page = nurse.get("/citizen/p-home/course")
    assert page.status_code == 200 and "Tilføj til planen" in page.text
    added = _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/goal",
                  description="Kan gå <i>til</i> købmanden", area="function", due="2027-03-01",
                  version="0")  # fmt: skip
    assert added.status_code == 303 and added.headers["location"].endswith("#plan")
    page = nurse.get("/citizen/p-home/course")
    assert "Kan gå &lt;i&gt;til&lt;/i&gt; købmanden" in page.text
    goals = _count(w, "Goal")
    stale = _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/goal", description="Igen",
                  version="0")  # fmt: skip
    assert stale.status_code == 412 and _count(w, "Goal") == goals and 'value="Igen"' not in stale.text
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    bad = _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/goal", description="Mål",
                due="næste år", version=version.group(1))  # fmt: skip
    assert bad.status_code == 400 and "due" in bad.text and _count(w, "Goal") == goals
    activity = _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/activity",
                     description="Hjælp til jobcenter", area="employment", organization="muni-0741",
                     version=version.group(1))  # fmt: skip
    assert activity.status_code == 303
    assert "Hjælp til jobcenter" in nurse.get("/citizen/p-home/course").text
    assert _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/thresholds",
                 thresholds="x").status_code == 404  # fmt: skip
    assert _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/nothing").status_code == 404
    extra = _send(nurse, "/citizen/p-home/course", "/citizen/p-home/plan/psychiatry", coordinator="psych",
                  sneaky="1")  # fmt: skip
    assert extra.status_code == 400  # a field the form does not have is refused, as by the API
