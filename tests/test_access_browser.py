"""In Chromium, as people use it: the citizen sees the GP's look in Min log; the planner reaches no record;
a nurse without a relation breaks the glass and an administrator finds it waiting for review."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from naer import clock
from naer.access import accounts
from tests.access_world import World, build
from tests.accessibility import check
from tests.conftest import PASSWORD, SCREENSHOTS, served, sign_in


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    from naer.api.app import create_app
    from naer.store.migrate import upgrade
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    for name in ("citizen", "nurse-b", "planner"):
        accounts.set_password(made.db, name, PASSWORD)
    accounts.add(made.db, "admin", "Ada Admin", "admin", PASSWORD, organization="region")
    app = create_app(url, migrate=False)
    add_access_pages(app)
    app.add_middleware(SignInGate)
    try:
        with served(app) as base:
            yield made, base
    finally:
        clock.set_clock(None)


def _page(browser: Any) -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser.new_context(viewport={"width": 1280, "height": 900}).new_page()


def test_the_citizen_sees_the_gps_look_in_min_log(site: tuple[World, str], browser: Any) -> None:
    import urllib.request

    w, base = site
    asked = urllib.request.Request(f"{base}/fhir/Patient/c-active", headers=w.headers("gp-a"))
    with urllib.request.urlopen(asked) as answer:
        assert answer.status == 200
    page = _page(browser)
    sign_in(page, base, "citizen")
    page.goto(f"{base}/min-log")
    page.wait_for_selector("table.log tbody tr")
    text = page.inner_text("table.log")
    assert "Test gp-a" in text and "borgerens egen læge" in text and "Lægehuset A" in text
    assert "læste dine oplysninger" in text and "Patient" not in text  # words, not FHIR's type names
    page.screenshot(path=str(SCREENSHOTS / "min-log.png"), full_page=True)
    check(page, "min log (da)")
    page.goto(f"{base}/min-log?lang=en")
    assert "the citizen's GP" in page.inner_text("table.log")
    assert "read your details" in page.inner_text("table.log")
    check(page, "min log (en)")
    page.context.close()


def test_the_planner_reaches_no_record(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    page = _page(browser)
    sign_in(page, base, "planner")
    answer = page.goto(f"{base}/citizen/c-active")
    assert answer is not None and answer.status == 403
    api = page.goto(f"{base}/fhir/Patient/c-active")
    assert api is not None and api.status == 403
    page.goto(f"{base}/citizen/c-active")
    page.screenshot(path=str(SCREENSHOTS / "planner-no-record.png"))
    check(page, "no access (da)")
    missing = page.goto(f"{base}/no/such/page")
    assert missing is not None and missing.status == 404
    assert "Siden findes ikke" in page.inner_text("h1")
    page.screenshot(path=str(SCREENSHOTS / "not-found.png"))
    check(page, "no such page (da)")
    page.goto(f"{base}/no/such/page?lang=en")
    assert "No such page" in page.inner_text("h1")
    check(page, "no such page (en)")
    page.context.close()


def test_a_nurse_breaks_the_glass_and_it_waits_for_review(site: tuple[World, str], browser: Any) -> None:
    _, base = site
    page = _page(browser)
    sign_in(page, base, "nurse-b")
    answer = page.goto(f"{base}/citizen/c-none")
    assert answer is not None and answer.status == 404
    page.screenshot(path=str(SCREENSHOTS / "break-the-glass-form.png"))
    check(page, "break-the-glass form (da)")
    page.fill("#reason", "Borgeren er faldet i hjemmet, vagtlæge ønsker vurdering nu")
    page.click("form.signin button.warn")
    page.wait_for_url(f"{base}/citizen/c-none")
    assert "værdispring" in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / "citizen-after-break-the-glass.png"), full_page=True)
    check(page, "citizen (da)")
    page.goto(f"{base}/citizen/c-none?lang=en")
    check(page, "citizen (en)")
    page.context.close()
    admin = _page(browser)
    sign_in(admin, base, "admin")
    admin.goto(f"{base}/audit/review")
    row = admin.locator("tbody tr", has_text="nurse-b")
    assert row.count() >= 1 and "faldet i hjemmet" in row.first.inner_text()
    admin.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)
    check(admin, "break-the-glass review (da)")
    row.first.locator("button[value=accepted]").click()
    admin.wait_for_url(f"{base}/audit/review")
    assert "godkendt" in admin.locator("tbody tr", has_text="faldet i hjemmet").first.inner_text()
    admin.context.close()
