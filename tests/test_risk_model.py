"""The risk pipeline end to end on a 1 % region (naer risk train / evaluate / worklist as a user runs them),
the published baselines by hand, explanations and actions that are true of the citizen, Tasks that are valid
FHIR and reach a running store once, and every bad input refused with nothing written."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fhir.resources.R4B.task import Task

from naer.errors import UserError
from naer.risk import baselines, explain, worklist
from naer.risk import model as models
from tests.accessibility import check
from tests.conftest import PASSWORD, SCREENSHOTS, api_server, free_port, pages, person, run_naer, system_token

Run = Callable[..., Any]
HERE = Path(__file__).parent
FIXTURES = Path(os.environ.get("NAER_FIXTURES") or HERE.parents[1] / "shared" / "fixtures")
SYNTHEA = FIXTURES / "synthea" / "10-patients"


@pytest.fixture(scope="module")
def trained(region: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("risk")
    warehouse, model = work / "region.duckdb", work / "model.json"
    done = run_naer(
        "risk", "train", "--input", str(region), "--warehouse", str(warehouse),
        "--reference-date", "2022-01-01", "--reference-date", "2021-01-01", "--model", str(model), cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {"work": work, "warehouse": warehouse, "model": model, "input": region}


def test_train_writes_a_model_of_each_outcome(trained: dict[str, Path]) -> None:
    document = json.loads(trained["model"].read_text())
    assert document["kind"] == "naer-risk-model" and document["reference_date"] == "2022-01-01"
    assert document["reference_dates"] == ["2021-01-01", "2022-01-01"]  # two citizen-years each
    assert set(document["models"]) == {"acute_admission_12m", "preventable_admission_12m", "readmission_30d"}
    assert document["models"]["acute_admission_12m"]["trained"]["rows"] > 2 * 12_000
    assert len(document["baselines"]["age_charlson"]["coefficients"]) == 4


def test_evaluate_writes_the_report_and_metrics(trained: dict[str, Path], naer: Run) -> None:
    out = trained["work"] / "report"
    done = naer(
        "risk", "evaluate", "--input", str(trained["input"]), "--warehouse", str(trained["warehouse"]),
        "--model", str(trained["model"]), "--out", str(out), cwd=trained["work"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["reference_date"] == "2023-01-01"  # a year after training by default
    assert m["trained_reference_dates"] == ["2021-01-01", "2022-01-01"]  # every day it learnt from
    assert "Trained on the citizens of 2021-01-01, 2022-01-01;" in (out / "report.html").read_text()
    for key in ("auroc", "auroc_oracle", "calibration_slope", "calibration_intercept", "brier"):
        assert isinstance(m[key], float), key
    assert 0.6 < m["auroc"] < m["auroc_oracle"] < 1  # real signal, below what the true hazard reaches
    assert m["auroc_ci"][0] < m["auroc"] < m["auroc_ci"][1]
    assert set(m["precision_top"]) == {"1%", "2%", "5%"}
    groupings = {r["grouping"] for r in m["by_group"]}
    assert groupings == {"sex", "age_band", "education", "municipality"}
    assert sum(r["n"] for r in m["by_group"] if r["grouping"] == "sex") == m["n"]
    flagged = [r for r in m["by_group"] if r.get("auroc") and abs(r["auroc_gap"]) > 0.03]
    assert all(r["flags"] for r in flagged)
    r = m["readmission_30d"]
    for key in ("auroc", "auroc_lace", "auroc_hospital"):
        assert 0 < r[key] < 1, key
    nb = {row["threshold"]: row for row in m["net_benefit"]}
    assert nb[0.01]["model"] > 0
    html = (out / "report.html").read_text()
    assert "Fairness" in html and "<svg" in html and "LACE" in html
    assert {p.name for p in out.iterdir()} >= {"calibration.svg", "decision_curve.svg", "metrics.json"}


def test_worklist_tasks_are_valid_fhir_with_reasons(trained: dict[str, Path], naer: Run) -> None:
    for name in ("tasks.ndjson", "worklist.csv"):
        done = naer(
            "risk", "worklist", "--warehouse", str(trained["warehouse"]), "--model", str(trained["model"]),
            "--reference-date", "2024-06-01", "--top", "3", "--out", str(trained["work"] / name),
            cwd=trained["work"],
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    tasks = [json.loads(line) for line in (trained["work"] / "tasks.ndjson").read_text().splitlines()]
    assert tasks
    for t in tasks:
        Task.model_validate(t)  # valid FHIR
        assert t["intent"] == "proposal" and t["owner"]["reference"].startswith("Organization/")
        assert 1 <= len(t["note"]) <= 3 and "Hvorfor:" in t["description"]  # Danish, for who acts on it
    probabilities = [t["input"][0]["valueDecimal"] for t in tasks]
    assert probabilities == sorted(probabilities, reverse=True)
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(trained["work"] / "worklist.csv")
    assert table.num_rows == len(tasks)
    lists: dict[str, int] = {}
    for names in table.column("lists").to_pylist():
        for name in str(names).split():
            lists[name] = lists.get(name, 0) + 1
    assert lists and max(lists.values()) <= 3  # the top 3 of each GP clinic and municipality


def test_worklists_of_the_citizens_living_in_one_municipality(trained: dict[str, Path], naer: Run) -> None:
    """--living-in 741: the region's data in the model, but only citizens living on Samsø on the lists (the
    demo's store holds Samsø alone): Samsø's municipal list and the lists of the clinics they use."""
    import pyarrow.parquet as pq

    out = trained["work"] / "samsoe.parquet"
    done = naer(
        "risk", "worklist", "--warehouse", str(trained["warehouse"]), "--model", str(trained["model"]),
        "--reference-date", "2024-06-01", "--top", "5", "--living-in", "741", "--out", str(out),
        cwd=trained["work"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out).to_pylist()
    assert rows and {r["municipality_code"] for r in rows} == {"0741"}
    lists = {name for r in rows for name in r["lists"]}
    assert "muni-0741" in lists and all(n == "muni-0741" or n.startswith("gp-") for n in lists), lists


def test_bad_input_is_refused_and_nothing_written(
    trained: dict[str, Path], naer: Run, tmp_path: Path
) -> None:
    w, m = str(trained["warehouse"]), str(trained["model"])
    out = tmp_path / "tasks.ndjson"
    train = ("risk", "train", "--warehouse", w, "--model", str(tmp_path / "m.json"), "--reference-date")
    evaluate = ("risk", "evaluate", "--warehouse", w, "--out", str(tmp_path / "r"), "--model")
    work = ("risk", "worklist", "--model", m, "--out", str(out))
    cases = [
        ((*train, "2015-06-01"), "outside the data"),
        ((*train, "2024-06-01"), "a year after it"),
        ((*train, "1st May"), "is not a date"),
        ((*evaluate, m, "--reference-date", "2021-01-01"), "later reference day"),
        ((*evaluate, str(tmp_path / "none.json")), "no model file"),
        ((*work, "--warehouse", w, "--organization", "no-clinic"), "unknown organisation no-clinic"),
        ((*work, "--warehouse", w, "--threshold", "1.5"), "between 0 and 1"),
        ((*work, "--warehouse", w, "--top", "3", "--living-in", "9999"), "--living-in 9999: no municipality"),
        ((*work, "--warehouse", str(tmp_path / "none.duckdb")), "no warehouse"),
        ((*work, "--input", str(tmp_path / "nothing")), "no data folder"),
    ]  # fmt: skip
    for args, message in cases:
        done = naer(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (message, done.stderr)
        assert "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "m.json").exists() and not (tmp_path / "r").exists()


def test_model_files_from_elsewhere_are_refused(trained: dict[str, Path], tmp_path: Path) -> None:
    good = json.loads(trained["model"].read_text())
    for change, message in (
        ({"format": 0}, "model format 0"),
        ({"feature_signature": "0123456789abcdef"}, "trained on other features"),
        ({"kind": "something-else"}, "not a Nær risk model"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**good, **change}))
        with pytest.raises(UserError, match=message):
            models.load(bad)
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(UserError, match="not JSON"):
        models.load(tmp_path / "text.json")


def test_lace_and_hospital_as_published() -> None:
    stays = pa.table(
        {
            "los_days": [0, 2, 5, 14],
            "acute": [False, True, True, True],
            "charlson_index": [0, 1, 3, 6],
            "ed_visits_6m": [0, 1, 2, 7],
            "oncology_discharge": [False, False, True, False],
            "admissions_12m": [0, 1, 3, 6],
        }
    )
    # L: <1 day 0, 2 days 2, 4-6 days 4, >=14 days 7; A: 3; C: as is up to 3, >=4 -> 5; E: up to 4
    assert baselines.lace(stays).tolist() == [0, 2 + 3 + 1 + 1, 4 + 3 + 3 + 2, 7 + 3 + 5 + 4]
    # O 2, I 1, A: 0-1 -> 0, 2-5 -> 2, >5 -> 5, L >= 5 days 2 (H, S, P not in the data: 0)
    assert baselines.hospital(stays).tolist() == [0, 1, 2 + 1 + 2 + 2, 1 + 5 + 2]


def test_reasons_are_true_of_the_citizen() -> None:
    features = models.population_features()
    fake = SimpleNamespace(features=features)
    row = {f: None for f in features} | {
        "lives_alone": False, "acute_admissions_12m": 3, "bed_days_12m": 12, "age": 88, "copd": True,
        "days_since_discharge": 9,
    }  # fmt: skip
    contributions = np.zeros((1, len(features) + 1))
    weights = {"lives_alone": 2.0, "acute_admissions_12m": 1.0, "age": 0.5, "copd": 0.7, "sex": -1.0}
    for name, value in weights.items():
        contributions[0, features.index(name)] = value
    said = explain.reasons(fake, contributions, [row])[0]  # type: ignore[arg-type]
    # "lives alone" raised the risk most in the model but is not true of this citizen: not said
    assert said == ["3 acute admissions in the last 12 months (12 bed days)", "COPD", "aged 88"]
    danish = explain.reasons(fake, contributions, [row], lang="da")[0]  # type: ignore[arg-type]
    assert danish == ["3 akutte indlæggelser de seneste 12 måneder (12 sengedage)", "KOL", "88 år"]
    one = row | {"acute_admissions_12m": 1, "bed_days_12m": 1}
    assert explain.reasons(fake, contributions, [one])[0][0] == (  # type: ignore[arg-type]
        "1 acute admission in the last 12 months (1 bed day)"  # not "1 acute admissions"
    )
    assert explain.reasons(fake, contributions, [one], lang="da")[0][0] == (  # type: ignore[arg-type]
        "1 akut indlæggelse de seneste 12 måneder (1 sengedag)"
    )
    words = explain._Words(".")
    text = "{a} {a:admission|admissions}{b:| and {b} visit| and {b} visits}"
    assert words.say(text, {"a": 2, "b": 0}) == "2 admissions"
    assert words.say(text, {"a": 1, "b": 1}) == "1 admission and 1 visit"
    assert words.say(text, {"a": 5, "b": 3}) == "5 admissions and 3 visits"


def test_first_matching_action_rule() -> None:
    rules = worklist.rules()
    first = next(
        r for r in rules if explain.holds(r["when"], {"copd": True, "days_since_discharge": 10, "age": 70})
    )
    assert first["id"] == "copd-after-admission" and first["owner"] == "municipality"
    fallback = next(r for r in rules if explain.holds(r["when"], {"age": 40, "days_since_discharge": None}))
    assert fallback["id"] == "gp-review"
    assert not explain.holds({"weight_change_kg": {"min": 2}}, {"weight_change_kg": None})


@pytest.fixture
def fhir_base(tmp_path: Path) -> Iterator[str]:
    from naer.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    upgrade(url)
    os.environ["NAER_FHIR_TOKEN"] = system_token(url)
    try:
        with api_server(url) as base:
            yield base
    finally:
        os.environ.pop("NAER_FHIR_TOKEN", None)


def test_tasks_reach_a_running_store_once(
    trained: dict[str, Path], naer: Run, fhir_base: str, tmp_path: Path
) -> None:
    args = (
        "risk", "worklist", "--warehouse", str(trained["warehouse"]), "--model", str(trained["model"]),
        "--reference-date", "2024-06-01", "--top", "1", "--out", str(tmp_path / "t.ndjson"),
        "--fhir", fhir_base,
    )  # fmt: skip
    first = naer(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    sent = len((tmp_path / "t.ndjson").read_text().splitlines())
    assert f"{sent:,} Tasks created, 0 already there" in first.stdout
    again = naer(*args, cwd=tmp_path)
    assert f"0 Tasks created, {sent:,} already there" in again.stdout
    import urllib.request

    asked = urllib.request.Request(
        f"{fhir_base}/Task?_summary=count",
        headers={"Authorization": f"Bearer {os.environ['NAER_FHIR_TOKEN']}"},
    )
    with urllib.request.urlopen(asked) as response:
        assert json.loads(response.read())["total"] == sent


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"{SYNTHEA} is absent (the shared fixtures)")
def test_worklist_runs_on_another_generators_data(
    trained: dict[str, Path], naer: Run, tmp_path: Path
) -> None:
    out = tmp_path / "synthea.csv"
    done = naer(
        "risk", "worklist", "--input", str(SYNTHEA), "--model", str(trained["model"]), "--top", "5",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert out.exists()


# --- the worklist page ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def risk_folder(trained: dict[str, Path]) -> Path:
    """What `make demo` puts in data/risk: the evaluation report and the worklists (top 10 of each list)."""
    folder = trained["work"] / "risk"
    common = ("--warehouse", str(trained["warehouse"]), "--model", str(trained["model"]))
    done = run_naer(
        "risk", "evaluate", *common, "--input", str(trained["input"]), "--out", str(folder / "report"),
        cwd=trained["work"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_naer(
        "risk", "worklist", *common, "--top", "10", "--out", str(folder / "worklist.parquet"), cwd=folder
    )
    assert done.returncode == 0, done.stderr
    return folder


def _busiest_clinic(risk_folder: Path) -> str:
    rows = pq.read_table(risk_folder / "worklist.parquet").column("gp_clinic_id").to_pylist()
    return max(sorted(set(rows)), key=rows.count)


@pytest.fixture(scope="module")
def risk_client(risk_folder: Path, trained: dict[str, Path]) -> Iterator[Any]:
    """The worklist page as the GP of the clinic with the most citizens on its list sees it."""
    from naer.web.risk import add_risk_pages

    clinic = _busiest_clinic(risk_folder)
    with pages(add_risk_pages, risk_folder, "gp", clinic, patients=trained["input"]) as c:
        yield c


def test_risk_page_lists_and_filters(risk_client: Any, risk_folder: Path) -> None:
    import re

    page = risk_client.get("/risk")
    assert page.status_code == 200
    lists = re.findall(r'<option value="([^"]+)"[^>]*>(Kommune|Lægepraksis): ', page.text)
    clinic = _busiest_clinic(risk_folder)
    assert lists == [(clinic, "Lægepraksis")]  # a GP sees the own clinic's list only (in Danish)
    assert re.search(r"Listen blev dannet den \d+\. \w+ \d{4}", page.text)  # the day the list was made
    assert 'id="spec-calibration"' in page.text and 'id="spec-decision_curve"' in page.text
    # the charts in the page's words and numbers (drawn again from the report's data), not in English
    assert "kalibrering" in page.text and "nettogevinst" in page.text and "alder + Charlson" in page.text
    assert "predicted risk" not in page.text and "&#34;decimal&#34;: &#34;,&#34;" in page.text
    panel = risk_client.get(f"/risk/panel?list={clinic}&top=3")
    assert panel.status_code == 200 and panel.headers["HX-Replace-Url"] == f"/risk?list={clinic}&top=3"
    assert panel.text.count('<tr>\n      <td class="n">') == 3
    risks = [int(x) for x in re.findall(r'<td class="n">(\d+)&nbsp;%</td>', panel.text)]
    assert len(risks) == 3 and risks == sorted(risks, reverse=True)
    assert "pat-" not in panel.text.replace('href="/citizen/pat-', "")  # names, not ids
    assert len(re.findall(r'<td class="unbroken">\d{6}-\d{4}</td>', panel.text)) == 3  # CPR numbers
    assert re.search(r"inden for \d+ dag", panel.text) and " dage siden" not in panel.text.split("<ul")[0]
    from naer.risk.worklist import rules

    assert any(r["action_da"] in panel.text for r in rules())  # the action in Danish
    assert "acute admissions" not in panel.text and "GP contacts" not in panel.text  # the reasons too
    english = risk_client.get(f"/risk/panel?list={clinic}&top=3&lang=en")
    assert "deadline" in english.text and any(r["action"] in english.text for r in rules())
    risk_client.get("/risk?lang=da")
    none = risk_client.get(f"/risk/panel?list={clinic}&min=99")
    assert "Ingen borgere på listen opfylder filtrene" in none.text
    report = risk_client.get("/risk/report")
    assert report.status_code == 200 and 'id="fairness"' in report.text  # the fairness report, served
    for bad in (
        "list=nowhere",
        "top=many",
        "top=0",
        "top=1001",
        "top=" + "9" * 5000,
        "min=120",
        "list=muni-0741",
    ):
        refused = risk_client.get(f"/risk/panel?{bad}")
        assert refused.status_code == 400 and "worklist.parquet" not in refused.text, bad  # no server path


def test_risk_page_charts_in_english_and_from_odd_files(
    risk_folder: Path, trained: dict[str, Path], tmp_path: Path
) -> None:
    """English by the switch; a report's chart file that holds something else is left out, never a 500."""
    import shutil

    from naer.web.risk import add_risk_pages

    clinic = _busiest_clinic(risk_folder)
    odd = tmp_path / "risk"
    shutil.copytree(risk_folder, odd)
    with pages(add_risk_pages, odd, "gp", clinic, patients=trained["input"]) as c:
        english = c.get("/risk?lang=en").text
        assert "Acute admission within 12 months: calibration" in english and "net benefit" in english
        spec = json.loads((odd / "report" / "decision_curve.vl.json").read_text())
        spec["data"]["values"][3]["net_benefit"] = "<script>alert(1)</script>"
        (odd / "report" / "decision_curve.vl.json").write_text(json.dumps(spec))
        (odd / "report" / "calibration.vl.json").write_text('{"data": {"values": [[1, 2]]}}')
        future = (odd / "report" / "metrics.json").stat().st_mtime + 5
        os.utime(odd / "report" / "metrics.json", (future, future))  # read again
        page = c.get("/risk")
        assert page.status_code == 200 and "<script>alert(1)" not in page.text
        assert 'id="spec-decision_curve"' not in page.text and 'id="spec-calibration"' not in page.text


def test_risk_page_is_for_the_people_who_act_on_it(risk_folder: Path, trained: dict[str, Path]) -> None:
    from naer.web.risk import add_risk_pages

    with pages(add_risk_pages, risk_folder, "planner") as planner:
        assert planner.get("/risk").status_code == 403  # named citizens: never for planners
    with pages(add_risk_pages, risk_folder, "gp", "gp-elsewhere", patients=trained["input"]) as other:
        assert "pat-" not in other.get("/risk").text  # a clinic with no list sees no one


def test_risk_page_without_worklists_says_how_to_make_them(tmp_path: Path) -> None:
    from naer.web.risk import add_risk_pages

    with pages(add_risk_pages, tmp_path / "risk", "gp", "gp-0741-001") as c:
        page = c.get("/risk")
    assert page.status_code == 503 and "naer risk worklist" in page.text


def test_the_gp_signs_in_opens_the_own_worklist_and_a_citizen(
    risk_folder: Path, trained: dict[str, Path], browser: Any, tmp_path: Path
) -> None:
    import re
    import subprocess
    import sys

    port = free_port()
    env = {**os.environ, "NAER_DATA_DIR": str(tmp_path), "NAER_RISK_RESULTS": str(risk_folder)}
    env.pop("NAER_DATABASE_URL", None)
    from naer.store.bulk import load
    from naer.store.context import SYSTEM
    from naer.store.db import engine

    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    clinic = _busiest_clinic(risk_folder)
    person(store, "gp", "gp", organization=clinic, display="Dr. Test, praktiserende læge")
    load(engine(store), SYSTEM, sorted(trained["input"].glob("Patient.ndjson*"))[0], workers=1)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("naer")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "naer serve did not start"
                time.sleep(0.1)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/risk")
        assert "/login" in page.url
        page.screenshot(path=str(SCREENSHOTS / "login.png"))
        page.fill("#username", "gp")
        page.fill("#password", PASSWORD)
        page.click("form.signin button[type=submit]")
        page.wait_for_url(re.compile(r"/risk$"))
        page.wait_for_selector("#chart-calibration[data-drawn=yes] svg")
        page.wait_for_selector("#chart-decision_curve[data-drawn=yes] svg")
        options = page.eval_on_selector_all("#list option", "els => els.map(e => e.value)")
        assert options == [clinic]
        page.fill("#top", "2")
        page.press("#top", "Enter")
        page.wait_for_url(re.compile(r"top=2(&|$)"))  # not the "top=20" of the first list's address
        page.wait_for_function("() => document.querySelectorAll('#panel tbody tr').length === 2")
        assert page.locator("#panel tbody tr").count() == 2
        page.screenshot(path=str(SCREENSHOTS / "risk-worklist.png"), full_page=True)
        check(page, "risk worklist (da)")
        for width in (1280, 320):  # the worklist never makes the page scroll sideways (WCAG 1.4.10)
            page.set_viewport_size({"width": width, "height": 900})
            wide = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert wide[0] <= wide[1], (width, wide)
        page.set_viewport_size({"width": 1440, "height": 1000})
        name = page.locator("#panel tbody tr th a").first.inner_text()
        assert not name.startswith("pat-")  # the citizen's name, for the GP who has a relation
        page.locator("#panel tbody tr th a").first.click()
        page.wait_for_url(re.compile(r"/citizen/"))
        assert name in page.locator("h1").inner_text()
        assert "borgerens egen læge" in page.inner_text("main")  # the relation that allowed it
        page.screenshot(path=str(SCREENSHOTS / "citizen-as-gp.png"), full_page=True)
        check(page, "citizen as GP (da)")
        page.goto(f"{url}/risk?lang=en")
        page.wait_for_selector("#chart-calibration[data-drawn=yes] svg")
        check(page, "risk worklist (en)")
        page.screenshot(path=str(SCREENSHOTS / "risk-worklist-en.png"), full_page=True)
        assert errors == []
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
