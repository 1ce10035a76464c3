"""The population dashboard: pages, fragments, downloads and errors in-process, and in a real browser
(Debian's Chromium driven by Playwright): change a filter, see the chart change."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from naer.indicators import engine
from naer.indicators.definition import pick
from naer.indicators.run import build_warehouse
from naer.web.dashboard import add_dashboard
from tests.accessibility import check
from tests.conftest import PASSWORD, SCREENSHOTS, free_port, pages, person, served, sign_in

HERE = Path(__file__).parent
VENDOR = HERE.parent / "src" / "naer" / "web" / "static" / "vendor"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, region: Path) -> Path:
    """Indicator results of the 1 % region sample, every grouping and period (as `naer indicators` makes)."""
    folder = tmp_path_factory.mktemp("dashboard")
    warehouse = folder / "w.duckdb"
    build_warehouse(region, warehouse)
    import pyarrow as pa

    with engine.open_warehouse(warehouse) as con:
        window = engine.prepare(con)
        tables = [
            engine.compute(con, pick(None), by, period, window)
            for period in engine.PERIODS
            for by in engine.GROUPINGS
        ]
        tables += [
            engine.compute(con, pick(None), by, "year", window, within=within)
            for within in engine.WITHIN
            for by in engine.GROUPINGS
            if by != "all" and engine.crossable(by, within)
        ]
    out = folder / "indicators.parquet"
    pq.write_table(pa.concat_tables(tables), out)
    return out


@pytest.fixture(scope="module")
def client(results: Path) -> Iterator[TestClient]:
    """The pages in English (chosen once, remembered in the cookie, as a user's switch is)."""
    with pages(add_dashboard, results) as c:
        assert c.get("/?lang=en").cookies.get("naer_lang") == "en"
        yield c


def test_pages_are_danish_first(results: Path) -> None:
    with pages(add_dashboard, results) as c:
        page = c.get("/").text
        assert '<html lang="da">' in page and "Forebyggelige indlæggelser blandt ældre" in page
        assert "Syntetiske data" in page and "English" in page  # said plainly; the switch
        assert re.search(r"\d+,\d", page)  # decimal comma
        panel = c.get("/indicators/bed-days/panel", params={"by": "age_band"}).text
        assert "Aldersgruppe" in panel and "sengedage" in panel and "borgerår" in panel
        ages = re.findall(r'<th scope="row">([^<]+)</th>', panel)
        assert ages == sorted(ages, key=lambda a: int(re.match(r"\d+", a).group()))  # type: ignore[union-attr]
        education = c.get("/indicators/acute-admissions/panel", params={"by": "education"}).text
        assert "unknown" not in re.findall(r'<th scope="row">([^<]+)</th>', education)
        definition = c.get("/indicators/preventable-chronic").text.split('class="definition"')[1]
        assert "aktionsdiagnose" in definition and "Hjertesvigt" in definition and "KOL" in definition
        assert "Heart failure" not in definition and "reading" not in definition  # the source's note too
        timeline = c.get("/indicators/readmission-30d/panel").text
        assert "landsniveau" in timeline and "national level" not in timeline  # the reference line
        english = c.get("/indicators/bed-days?lang=en").text
        assert '<html lang="en">' in english and "Hospital bed days" in english
        assert "Heart failure" in c.get("/indicators/preventable-chronic?lang=en").text
        assert "Hospital bed days" in c.get("/").text  # remembered


def test_overview_lists_every_indicator(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for title in (
        "Preventable admissions among citizens 65+",
        "Acute readmission within 30 days",
        "Hospital bed days",
    ):
        assert title in page.text
    assert re.search(r"\d+\.\d", page.text)  # decimal point in English


def test_indicator_page_has_filters_charts_table_and_definition(client: TestClient) -> None:
    page = client.get("/indicators/preventable-65plus")
    assert page.status_code == 200
    html = page.text
    for needle in ('id="by"', 'id="period"', 'id="at"', 'id="unit"', 'id="funnel-spec"', 'id="time-spec"'):
        assert needle in html
    assert "Municipality" in html and "Samsø Kommune" in html
    assert "DE86" in html and "Sundhedsstyrelsen" in html  # the definition and its source
    assert "/static/vendor/vega-embed.min.js" in html and "cdn" not in html.lower()


def test_panel_follows_the_filters(client: TestClient) -> None:
    by_gp = client.get(
        "/indicators/preventable-65plus/panel", params={"by": "gp_clinic", "period": "quarter"}
    )
    assert by_gp.status_code == 200
    assert by_gp.headers["HX-Replace-Url"].startswith("/indicators/preventable-65plus?by=gp_clinic")
    assert "GP clinic" in by_gp.text and "Lægehuset" in by_gp.text
    assert "<html" not in by_gp.text  # a fragment, not a page
    ages = client.get("/indicators/acute-admissions/panel", params={"by": "age_band"})
    assert "85+" in ages.text and 'id="funnel-spec"' not in ages.text  # no funnel for age bands
    followed = client.get("/indicators/acute-admissions/panel", params={"by": "municipality", "unit": "0741"})
    assert 'class="followed"' in followed.text and "Samsø Kommune" in followed.text


def test_funnel_leaves_out_units_without_expected_events() -> None:
    from naer.indicators import charts
    from naer.indicators.definition import catalogue

    indicator = catalogue()["readmission-30d"]
    area = {"period": "2024-01", "value": 10.0}
    units = [
        {
            "group_label": "A",
            "denominator": 40.0,
            "expected": 4.0,
            "ratio": 1.5,
            "value": 15.0,
            "numerator": 6.0,
        },
        {
            "group_label": "B",
            "denominator": 3.0,
            "expected": 0.0,
            "ratio": None,
            "value": 0.0,
            "numerator": 0.0,
        },
    ]
    spec = charts.funnel(indicator, units, area, "Municipality")
    assert [u["unit"] for u in spec["datasets"]["units"]] == ["A"]


def test_area_filter_shows_one_areas_units(client: TestClient) -> None:
    page = client.get("/indicators/acute-admissions", params={"area": "municipality:0741", "by": "education"})
    assert page.status_code == 200
    assert 'value="municipality:0741" selected' in page.text
    assert "Education, Municipality: Samsø Kommune" in page.text
    clusters = client.get(
        "/indicators/acute-admissions/panel", params={"area": "cluster:Aarhus", "by": "municipality"}
    )
    names = set(re.findall(r'<th scope="row">([^<]+ Kommune)</th>', clusters.text))
    assert names == {"Aarhus Kommune", "Samsø Kommune"}  # the Aarhus cluster's municipalities only
    whole = client.get(
        "/indicators/acute-admissions/panel", params={"area": "municipality:0741", "by": "cluster"}
    )
    assert "is not split by" in whole.text
    assert client.get("/indicators/acute-admissions", params={"area": "atlantis"}).status_code == 400


def test_downloads(client: TestClient) -> None:
    csv = client.get("/indicators/readmission-30d/download.csv", params={"by": "cluster", "period": "year"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("indicator,period,by,group")
    assert "Aarhus" in csv.text
    svg = client.get("/indicators/preventable-65plus/chart/funnel.svg", params={"by": "municipality"})
    assert svg.status_code == 200 and svg.text.lstrip().startswith("<svg")
    png = client.get("/indicators/acute-admissions/chart/time.png", params={"by": "sex", "lang": "da"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    client.get("/?lang=en")  # the module's client stays English


def test_csv_opens_in_danish_excel(results: Path) -> None:
    """Danish Excel reads a CSV as UTF-8 only with a byte-order mark, splits on semicolons and reads
    decimal commas: parse the download the same way."""
    import csv
    import io

    with pages(add_dashboard, results) as c:
        raw = c.get("/indicators/readmission-30d/download.csv", params={"by": "cluster"}).content
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows and set(rows[0]) >= {"indicator", "period", "group_label", "value", "ci_low"}
    values = [r["value"] for r in rows if r["value"]]
    assert values and all(re.fullmatch(r"-?\d+(,\d{1,4})?", v) for v in values), values[:5]
    assert any("," in v for v in values)
    assert float(values[0].replace(",", ".")) >= 0


def test_a_hostile_name_in_a_csv_is_not_a_formula() -> None:
    from naer.web.dashboard import csv_bytes

    row = {
        "indicator": "x",
        "group_label": '=HYPERLINK("http://evil","klik")',
        "value": -1.5,
        "area": "@SUM(A1)",
    }
    text = csv_bytes([row], "da").decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text and ";-1,5;" in text  # numbers stay numbers


def test_a_period_switch_keeps_the_year() -> None:
    from naer.web.dashboard import within_period

    quarters = ["2023-Q4", "2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert within_period("2024", quarters) == "2024-Q4"  # the year asked of quarters: its last quarter
    assert within_period("2024-Q2", quarters) == "2024-Q2"
    assert within_period("", quarters) == "2024-Q4"
    assert within_period("1999", quarters) == "1999"  # not in the data: the page says so (400)


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/indicators/nonsense", 404, "No indicator"),
        ("/indicators/bed-days?by=street", 400, "Unknown grouping"),
        ("/indicators/bed-days?period=week", 400, "Unknown period"),
        ("/indicators/bed-days?at=1999", 400, "No period"),
        ("/indicators/bed-days/chart/funnel.svg?by=municipality", 404, "No funnel chart"),
        ("/indicators/bed-days/chart/time.gif", 404, "No time chart as gif"),
    ],
)
def test_bad_requests_get_a_clear_page(client: TestClient, url: str, status: int, message: str) -> None:
    page = client.get(url)
    assert page.status_code == status
    assert message in page.text


def test_the_menu_links_to_worklists_only_for_those_who_have_one(results: Path) -> None:
    with pages(add_dashboard, results) as planner:
        assert 'href="/risk"' not in planner.get("/").text  # a planner's /risk is 403: no link to it
    with pages(add_dashboard, results, "gp", "gp-0741-001") as gp:
        assert 'href="/risk"' in gp.get("/").text


def test_a_malformed_period_is_refused_not_replaced(client: TestClient) -> None:
    for at in ("2024-13", "2024-00", "2024-Q5", "2024-1"):
        page = client.get("/indicators/bed-days", params={"period": "month", "at": at})
        assert page.status_code == 400 and "No period" in page.text, at
    assert client.get("/indicators/bed-days", params={"period": "month", "at": "2024"}).status_code == 200


def test_a_bad_request_is_told_in_danish_on_a_danish_page(results: Path) -> None:
    with pages(add_dashboard, results) as c:
        page = c.get("/indicators/bed-days?by=xyz")
        assert page.status_code == 400 and "Ukendt opdeling &#39;xyz&#39;" in page.text
        assert "unknown grouping" not in page.text.lower()


def test_the_csv_download_holds_the_chosen_area_only(client: TestClient) -> None:
    """?area=cluster:X narrows the page's units to that cluster's; its CSV download holds the same units."""
    whole = client.get("/indicators/acute-admissions/download.csv", params={"by": "municipality"}).text
    page = client.get("/indicators/acute-admissions", params={"by": "municipality"}).text
    cluster = re.search(r'<option value="(cluster:[^"]+)"', page)
    assert cluster is not None
    part = client.get(
        "/indicators/acute-admissions/download.csv", params={"by": "municipality", "area": cluster.group(1)}
    ).text
    assert 1 < len(part.splitlines()) < len(whole.splitlines())


def test_without_results_the_pages_say_how_to_make_them(tmp_path: Path) -> None:
    with pages(add_dashboard, tmp_path / "missing.parquet") as c:
        page = c.get("/")
        assert page.status_code == 503
        assert "naer indicators --input" in page.text
        assert c.get("/indicators/bed-days").status_code == 503
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pages(add_dashboard, tmp_path / "bad.parquet") as c:
        assert "is not an indicator results file" in c.get("/").text


def test_vendored_files_are_the_recorded_ones() -> None:
    table = (VENDOR / "VENDORED.md").read_text()
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "htmx.min.js"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert digest in table, name
    import altair

    assert altair.SCHEMA_VERSION == "v6.4.1" and "| 6.4.1 |" in table


# --- in a real browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`naer serve` as a user starts it: dashboard and FHIR API, on a store of its own."""
    data = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {**os.environ, "NAER_DATA_DIR": str(data), "NAER_INDICATOR_RESULTS": str(results)}
    env.pop("NAER_DATABASE_URL", None)
    person(f"sqlite:///{data / 'store.sqlite'}", "planner", "planner", organization="region-midtjylland")
    exe = Path(sys.executable).with_name("naer")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    said = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"naer serve stopped: {said}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _funnel_units(page: Any) -> list[str]:
    """The units the drawn funnel plot shows, read from its SVG (one path per point, with an aria label)."""
    labels = page.eval_on_selector_all(
        "#funnel svg [aria-roledescription='circle']", "els => els.map(e => e.getAttribute('aria-label'))"
    )
    return [str(x) for x in labels]


def test_the_pages_reflow_on_a_phone(server: str, browser: Any) -> None:
    """WCAG 2.1 1.4.10: at 320 CSS pixels no page scrolls sideways; a wide table or chart scrolls in its
    own labelled region instead, which the keyboard can reach."""
    page = browser.new_page(viewport={"width": 320, "height": 800})
    sign_in(page, server, "planner")
    for path in ("/", "/indicators/preventable-65plus", "/indicators/bed-days?by=gp_clinic", "/no/such/page"):
        page.goto(f"{server}{path}")
        page.wait_for_load_state("networkidle")
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], (path, width)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
    check(page, "no such page on a phone (da)")
    page.goto(f"{server}/indicators/preventable-65plus")
    page.wait_for_selector("#funnel[data-drawn=yes] svg")
    check(page, "indicator on a phone (da)")
    page.close()


def test_dashboard_in_a_browser(server: str, browser: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server}/indicators/preventable-65plus")
    assert "/login" in page.url  # every page is behind sign-in
    check(page, "login (da)")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORD)
    page.click("form.signin button[type=submit]")
    page.wait_for_url(re.compile(r"/indicators/preventable-65plus$"))
    page.wait_for_selector("#funnel[data-drawn=yes] svg")
    page.wait_for_selector("#time[data-drawn=yes] svg")
    municipalities = _funnel_units(page)
    assert any("Kommune" in label for label in municipalities)  # (Samsø's 1 % sample is suppressed: < 5)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-municipality.png"))
    check(page, "indicator (da)")

    page.select_option("#by", "gp_clinic")
    page.wait_for_url(re.compile(r"by=gp_clinic"))
    page.wait_for_selector("#funnel[data-drawn=yes] svg")
    clinics = _funnel_units(page)
    assert clinics != municipalities and any("Lægehuset" in label for label in clinics)
    assert page.locator("#results thead th").first.inner_text() == "Lægepraksis"  # Danish first
    cell = page.locator("#results tbody tr td").nth(1).inner_text()  # citizen-years, one decimal
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*,\d", cell), cell
    page.screenshot(path=str(SCREENSHOTS / "dashboard-gp-clinic.png"), full_page=True)

    page.select_option("#period", "quarter")  # sent with at=<the year>: must show that year's last quarter
    page.wait_for_url(re.compile(r"period=quarter"))
    page.wait_for_selector("#time[data-drawn=yes] svg")
    at = page.locator("#at").input_value()
    assert re.fullmatch(r"\d{4}-?Q\d", at), at
    assert page.locator("p.error").count() == 0 and page.locator("#results tbody tr").count() > 0
    page.select_option("#period", "month")
    page.wait_for_url(re.compile(r"period=month"))
    page.wait_for_selector("#time[data-drawn=yes] svg")
    ticks = page.eval_on_selector_all("#time svg .role-axis-label text", "els => els.length")
    assert 0 < ticks <= 26, ticks  # a label every few months (two axes), not 120 on top of each other
    page.screenshot(path=str(SCREENSHOTS / "dashboard-months.png"), full_page=True)
    check(page, "indicator by month (da)")

    page.click("header a[hreflang=en]")
    page.wait_for_selector("#results")
    assert page.locator("#results thead th").first.inner_text() == "GP clinic"
    assert page.locator("html").get_attribute("lang") == "en"
    check(page, "indicator (en)")
    for language in ("da", "en"):
        page.goto(f"{server}/?lang={language}")
        page.wait_for_selector("table.results")
        check(page, f"overview ({language})")
    page.keyboard.press("Tab")  # the first control takes the focus, visibly
    assert page.evaluate("() => document.activeElement && document.activeElement.tagName") == "A"
    assert errors == []
    assert all(u.startswith(server) or u.startswith("data:") for u in requests), "a request left the machine"
    page.close()


XSS = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_a_hostile_unit_name_is_shown_as_text_and_never_runs(
    results: Path, tmp_path: Path, browser: Any
) -> None:
    """An organisation's name is data from outside (a FHIR Organization): one holding markup reaches the
    chart JSON and the table, and must stay text there, even without the Content-Security-Policy."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pq.read_table(results)
    labels = table.column("group_label")
    poisoned = pc.if_else(pc.equal(labels, "Aarhus Kommune"), pa.scalar("Aarhus Kommune " + XSS), labels)
    out = tmp_path / "poisoned.parquet"
    pq.write_table(
        table.set_column(table.schema.get_field_index("group_label"), "group_label", poisoned), out
    )
    from naer.api.app import create_app
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages

    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    person(store, "planner", "planner")
    app = create_app(store)
    add_access_pages(app)
    add_dashboard(app, out)
    app.add_middleware(SignInGate)
    with served(app) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        sign_in(page, url, "planner")
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/indicators/preventable-65plus")
        page.wait_for_selector("#funnel[data-drawn=yes] svg")
        assert any(XSS in label for label in _funnel_units(page))  # drawn, as text
        assert page.evaluate("window.__pwned") is None and dialogs == []
        assert page.locator("#results img").count() == 0
        assert XSS in page.locator("#results").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "dashboard-hostile-name.png"))
        page.close()


def _with_source(results: Path, out: Path, raw: bytes | None) -> Path:
    """The results again, with ``raw`` as the note of the data set they were made from."""
    from naer.indicators.run import SOURCE_KEY

    table = pq.read_table(results)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != SOURCE_KEY}
    if raw is not None:
        meta[SOURCE_KEY] = raw
    pq.write_table(table.replace_schema_metadata(meta), out)
    return out


def test_the_pages_say_which_data_set_they_show(results: Path, tmp_path: Path) -> None:
    """A `naer synth --full 741` data set: the note says Samsø is whole and the others a sample, from the
    manifest `naer indicators` kept in the Parquet file (data_set), in Danish and in English."""
    import orjson

    from naer.indicators.run import data_set

    folder = tmp_path / "synth"
    folder.mkdir()
    towns = [
        {"code": "0741", "name": "Samsø", "citizens": 3700, "full": True},
        {"code": "0751", "name": "Aarhus", "citizens": 3600, "full": False},
        {"code": "0727", "name": "Odder", "citizens": 600, "full": False},
    ]
    naer = {"synthetic": True, "areaName": "Region Midtjylland", "scale": 0.01, "atLeast": 600}
    (folder / "manifest.json").write_bytes(orjson.dumps({"naer": {**naer, "municipalities": towns}}))
    source = data_set(folder)
    assert source is not None
    out = _with_source(results, tmp_path / "noted.parquet", orjson.dumps(source))
    with pages(add_dashboard, out) as c:
        danish = c.get("/").text
        assert "Samsø i fuld størrelse (3.700 borgere)" in danish
        assert (
            "de 2 øvrige kommuner (1 % af deres befolkning, mindst 600 borgere i hver: 4.200 i alt)" in danish
        )
        english = c.get("/?lang=en").text
        assert "Samsø in full (3,700 citizens) beside a sample of the 2 other municipalities" in english


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"scale": "x", "municipalities": []}',
        b'{"scale": 0.01, "municipalities": "Samso"}',
        b'{"scale": 0.01, "municipalities": [{"name": 1, "citizens": "many"}, 7]}',
        b'{"scale": 1e400, "municipalities": [{"name": "S", "citizens": 1, "full": true}]}',
        b'{"scale": 0.01, "areaName": "<b>x</b>", "municipalities": [{"name": "<i>S</i>", "citizens": 1,'
        b' "full": true}, {"name": "<script>", "citizens": 2}]}',
    ],
)
def test_a_data_set_note_from_elsewhere_never_breaks_a_page(
    results: Path, tmp_path: Path, raw: bytes
) -> None:
    """The note is read from a file anyone may make: wrong shapes are left out, names stay text."""
    out = _with_source(results, tmp_path / "odd.parquet", raw)
    with pages(add_dashboard, results) as c:
        plain = c.get("/").text
    with pages(add_dashboard, out) as c:
        answer = c.get("/")
        assert answer.status_code == 200 and "Syntetiske data" in answer.text
        assert "<i>S</i>" not in answer.text and "<b>x</b>" not in answer.text
        assert answer.text.count("<script>") == plain.count("<script>")  # no name became a tag
        assert "inf" not in answer.text.split('role="note"')[1].split("</p>")[0]
        if b"<i>" in raw:
            assert "&lt;i&gt;S&lt;/i&gt;" in answer.text  # shown, as text


def test_an_address_with_no_page_gets_a_page_and_the_api_an_outcome(results: Path) -> None:
    """A browser (Accept: text/html) asking for an unknown address gets the site's own page, in Danish,
    with its header and menu; a FHIR client, or the FHIR API's paths, an OperationOutcome."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with pages(add_dashboard, results) as c:
        page = c.get("/no/such/page", headers=browser)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert (
            '<html lang="da">' in page.text and "Siden findes ikke" in page.text and 'href="/"' in page.text
        )
        assert "OperationOutcome" not in page.text
        english = c.get("/no/such/page?lang=en", headers=browser)
        assert "No such page" in english.text
        api = c.get("/no/such/page", headers={"Accept": "application/fhir+json"})
        assert api.status_code == 404 and api.json()["resourceType"] == "OperationOutcome"
        fhir = c.get("/fhir/Patient/x/y/z", headers=browser)
        assert fhir.status_code == 404 and fhir.json()["resourceType"] == "OperationOutcome"
    with pages(add_dashboard, results, "citizen", patient="c1") as citizen:
        refused = citizen.get("/indicators/bed-days", headers=browser)
        assert refused.status_code == 403 and '<html lang="da">' in refused.text
        assert "Befolkningstallene er for planlæggere" in refused.text and 'class="top"' in refused.text
