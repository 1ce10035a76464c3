"""The register of initiatives as a page (/initiatives): each initiative with what it should move and,
once evaluated, the trusted design's estimate and the whole report beside it. For the roles that see the
dashboard; a report's files only by their own names; a broken results file is no 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from naer.access import sessions
from naer.api.auth import SESSION_COOKIE
from tests.coordination_world import World, build


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, evaluated_region: tuple[Path, Path]
) -> Iterator[tuple[World, Any, Path]]:
    from naer.api.app import create_app
    from naer.evaluation.register import find
    from naer.evaluation.report import write
    from naer.evaluation.run import evaluate
    from naer.evaluation.truth import read
    from naer.store.migrate import upgrade
    from naer.web import initiatives
    from naer.web.gate import SignInGate
    from naer.web.initiatives import add_initiative_pages
    from naer.web.signin import add_access_pages

    folder = tmp_path_factory.mktemp("initiative-pages")
    url = f"sqlite:///{folder / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    data, warehouse = evaluated_region
    reports = folder / "evaluation"
    write(reports / "samsoe-2019", evaluate(find("samsoe-2019"), warehouse, truth=read(data)))
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add_initiative_pages(app)
    app.add_middleware(SignInGate)
    patch = pytest.MonkeyPatch()
    patch.setattr(initiatives, "reports_folder", lambda: reports)
    try:
        yield made, app, reports
    finally:
        patch.undo()


def _as(site: tuple[World, Any, Path], person: str) -> TestClient:
    w, app, _ = site
    return TestClient(app, cookies={SESSION_COOKIE: sessions.start(w.db, person, "testclient", 1)})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_planner_sees_the_register_with_the_evaluation(site: tuple[World, Any, Path]) -> None:
    page = _as(site, "planner").get("/initiatives")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Samsø-forsøget" in text and "Initiativer og deres virkning" in text
    assert "Forebyggelige indlæggelser" in text or "forebyggelige" in text.lower()
    assert "Plantet sand virkning" in text and "Region Midtjylland" in text
    assert 'href="/initiatives/samsoe-2019/report/report.html"' in page.text
    english = _as(site, "planner").get("/initiatives?lang=en")
    assert "Initiatives and their effect" in english.text and "Samsø: new ways of working" in english.text


def test_the_report_and_its_charts_are_served_by_their_own_names_only(site: tuple[World, Any, Path]) -> None:
    client = _as(site, "planner")
    report = client.get("/initiatives/samsoe-2019/report/report.html")
    assert report.status_code == 200 and "Evaluering" in report.text
    assert "default-src 'none'" in report.headers["content-security-policy"]
    chart = client.get("/initiatives/samsoe-2019/report/acute-admissions-counterfactual.svg")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    for bad in ("..%2Fstore.sqlite", "results.json", "report.HTML", ".report.html", "x" * 300 + ".svg"):
        assert client.get(f"/initiatives/samsoe-2019/report/{bad}").status_code == 404, bad
    assert client.get("/initiatives/nope/report/report.html").status_code == 404


def test_the_page_is_for_the_roles_that_see_the_dashboard(site: tuple[World, Any, Path]) -> None:
    assert _as(site, "citizen").get("/initiatives").status_code == 403
    assert _as(site, "citizen").get("/initiatives/samsoe-2019/report/report.html").status_code == 403
    _, app, _ = site
    anonymous = TestClient(app).get("/initiatives", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401)


def test_a_broken_results_file_is_no_500(site: tuple[World, Any, Path]) -> None:
    _, _, reports = site
    results = reports / "samsoe-2019" / "results.json"
    kept = results.read_bytes()
    try:
        for junk in (
            b"{", b"[]", b'{"outcomes": [{"indicator": 1}, null, {"indicator": "x", "estimates": 5}]}',
            b'{"outcomes": [{"indicator": "acute-admissions", "trusted": "did", "estimates": '
            b'[{"design": "did", "effect": "<script>", "low": 1e999}]}]}',
            b'{"outcomes": [{"indicator": "acute-admissions", "trusted": ["did"], "minimum_detectable": '
            b'{"did": 1}, "estimates": []}]}',
            b'{"outcomes": [{"indicator": "acute-admissions", "trusted": "did", "estimates": '
            b'[{"design": "did", "effect": 1' + b"0" * 400 + b'}]}]}',
            b'{"outcomes": ' + b"[" * 100000 + b"]" * 100000 + b"}",
        ):  # fmt: skip
            results.write_bytes(junk)
            page = _as(site, "planner").get("/initiatives")
            assert page.status_code == 200 and "<script>" not in page.text
    finally:
        results.write_bytes(kept)


def test_in_chromium_the_register_and_the_report_pass_axe(
    site: tuple[World, Any, Path], browser: Any
) -> None:
    from naer.access import accounts
    from tests.accessibility import check
    from tests.conftest import PASSWORD, SCREENSHOTS, served, sign_in

    w, app, _ = site
    accounts.set_password(w.db, "planner", PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with served(app) as base:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(page, base, "planner")
        page.goto(f"{base}/initiatives")
        assert "Samsø-forsøget" in page.inner_text("main")
        check(page, "initiatives (da)")
        page.screenshot(path=str(SCREENSHOTS / "initiatives-planner.png"), full_page=True)
        page.goto(f"{base}/initiatives?lang=en")
        check(page, "initiatives (en)")
        page.goto(f"{base}/initiatives/samsoe-2019/report/report.html")
        assert page.locator("img").count() >= 8
        assert all(img.evaluate("i => i.naturalWidth > 0") for img in page.locator("img").all())
        check(page, "evaluation report (da)")
        page.screenshot(path=str(SCREENSHOTS / "evaluation-report.png"), full_page=True)
