"""Indicators on a hand-made population (tests/data/indicators/build.py: one citizen per rule), with every
count asserted exactly; their statistics against textbook values; the other generator's data; bad input."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from scipy.stats import chi2

from naer.errors import UserError
from naer.indicators import engine, stats
from naer.indicators.definition import catalogue, pick
from naer.indicators.run import build_warehouse

HERE = Path(__file__).parent
POPULATION = HERE / "data" / "indicators"
FIXTURES = Path(os.environ.get("NAER_FIXTURES") or HERE.parents[1] / "shared" / "fixtures")
SYNTHEA = FIXTURES / "synthea" / "10-patients"
YEAR = engine.Window(date(2023, 1, 1), date(2024, 1, 1))
FULL_YEAR = 365


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("indicators") / "w.duckdb"
    build_warehouse(POPULATION, path)
    return path


@pytest.fixture(scope="module")
def rows(warehouse: Path) -> Callable[[str, str], dict[tuple[str, str], dict[str, Any]]]:
    """Rows by (indicator, group) for 2023, for one grouping."""
    cache: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}

    def get(by: str, period: str = "year") -> dict[tuple[str, str], dict[str, Any]]:
        if by + period not in cache:
            with engine.open_warehouse(warehouse) as con:
                window = engine.prepare(con, YEAR)
                table = engine.compute(con, pick(None), by, period, window)
            cache[by + period] = {
                (r["indicator"], r["group"] if period == "year" else f"{r['group']}@{r['period']}"): r
                for r in table.to_pylist()
            }
        return cache[by + period]

    return get  # type: ignore[return-value]


def count(
    rows: dict[tuple[str, str], dict[str, Any]], indicator: str, group: str = "all"
) -> tuple[float, float]:
    r = rows[(indicator, group)]
    return r["numerator"], r["denominator"]


# Person-days in 2023 (build.py): 18 citizens all year; p06 until moving away on 30 June (180 days), p10
# until death on 5 July (186), p16 until death on 5 September (248), p20 from birth on 1 May (245).
PERSON_DAYS = 18 * FULL_YEAR + 180 + 186 + 248 + 245
# Aged 65+: p01 from 10 March (297 days), p02 from 11 March (296); twelve all year; p06, p10, p16 as above.
PERSON_DAYS_65 = 297 + 296 + 12 * FULL_YEAR + 180 + 186 + 248


def test_person_time_counts_residence_birth_death_and_age(rows: Any) -> None:
    by_all = rows("all")
    assert by_all[("acute-admissions", "all")]["denominator"] == pytest.approx(PERSON_DAYS / 365.25)
    assert by_all[("preventable-65plus", "all")]["denominator"] == pytest.approx(PERSON_DAYS_65 / 365.25)


def test_preventable_admissions_65plus(rows: Any) -> None:
    # Counted: p01 (65 on the day), p07 (fracture), p10 (died during it, still an admission), p12 (pneumonia
    # after a cancer admission), p21 (Odder). Not: p02 (64), p03 (planned), p04 (rank 2), p05 (6 hours),
    # p06 (had moved away).
    assert count(rows("all"), "preventable-65plus")[0] == 5
    by_municipality = rows("municipality")
    assert count(by_municipality, "preventable-65plus", "0741")[0] == 4
    assert count(by_municipality, "preventable-65plus", "0727")[0] == 1
    assert by_municipality[("preventable-65plus", "0741")]["group_label"] == "Samsø Kommune"
    assert ("preventable-65plus", "0219") not in by_municipality  # outside the area
    by_band = rows("age_band")
    assert count(by_band, "preventable-65plus", "5")[0] == 2  # 65-74: p01, p12
    assert ("preventable-65plus", "4") not in by_band  # bands under the age limit are not shown


def test_preventable_admissions_chronic(rows: Any) -> None:
    # p11 (COPD, acute) and p17 (diabetes, 40, acute); not p18 (asthma, planned).
    assert count(rows("all"), "preventable-chronic")[0] == 2


def test_readmission_within_30_days(rows: Any) -> None:
    # Index: every admission discharged alive in 2023 with 30 days after it, but p10 (died), p11's cancer
    # readmission, p12's cancer admission, and p06 (moved away): 20. Readmitted: only p07 (day 30); not p08
    # (day 31), p09 (a transfer within 4 hours), p11 (readmitted for cancer), p13 (planned).
    k, n = count(rows("all"), "readmission-30d")
    assert (k, n) == (1, 20)
    r = rows("all")[("readmission-30d", "all")]
    assert r["value"] == pytest.approx(5.0)


def test_gp_followup_within_14_days(rows: Any) -> None:
    # Discharges of citizens 65+ (16): followed up only p14 (GP on day 14); not p15 (day 15); p16 (died
    # within 14 days) left out.
    assert count(rows("all"), "gp-followup-14d") == (1, 16)


def test_acute_admissions_bed_days_and_acute_beds(rows: Any) -> None:
    by_all = rows("all")
    assert count(by_all, "acute-admissions")[0] == 18
    assert count(by_all, "acute-bed-stays")[0] == 1
    # Bed days of the admissions ending in 2023 (p22's began in 2022: 6 days); the transfer p09 is one
    # admission of 7 days.
    assert count(by_all, "bed-days")[0] == 82
    by_sex = rows("sex")
    assert count(by_sex, "acute-admissions", "male")[0] + count(by_sex, "acute-admissions", "female")[0] == 18


def test_groupings_cover_the_same_events(rows: Any) -> None:
    total = count(rows("all"), "acute-admissions")[0]
    for by in ("municipality", "cluster", "gp_clinic", "education"):
        grouped = rows(by)
        assert sum(r["numerator"] for (i, _), r in grouped.items() if i == "acute-admissions") == total, by
    clusters = rows("cluster")
    assert count(clusters, "preventable-65plus", "Aarhus")[0] == 4  # Samsø is in Aarhus's cluster
    assert count(clusters, "preventable-65plus", "Horsens")[0] == 1  # Odder
    education = rows("education")
    assert education[("acute-admissions", "basic")]["group_label"] == "Basic school"
    months = rows("all", "month")
    assert sum(r["numerator"] for (i, _), r in months.items() if i == "acute-admissions") == total
    assert count(months, "acute-admissions", "all@2023-03")[0] == 3  # p01, p02, p13


def test_groups_split_by_area(warehouse: Path) -> None:
    with engine.open_warehouse(warehouse) as con:
        window = engine.prepare(con, YEAR)
        table = engine.compute(
            con, pick(["preventable-65plus"]), "gp_clinic", "year", window, within="municipality"
        )
        rows = {(r["area"], r["group"]): r for r in table.to_pylist()}
        assert rows[("0741", "gp-a")]["numerator"] == 4 and rows[("0727", "gp-b")]["numerator"] == 1
        assert rows[("0741", "gp-a")]["area_label"] == "Samsø Kommune"
        assert rows[("0741", "gp-a")]["group_label"] == "Lægehuset Tranebjerg"
        with pytest.raises(UserError, match="cannot be split by municipality"):
            engine.compute(con, pick(None), "cluster", "year", window, within="municipality")


def test_rates_have_exact_poisson_intervals(rows: Any) -> None:
    r = rows("all")[("preventable-65plus", "all")]
    years = PERSON_DAYS_65 / 365.25
    assert r["value"] == pytest.approx(5 / years * 1000)
    assert r["ci_low"] == pytest.approx(chi2.ppf(0.025, 10) / 2 / years * 1000)
    assert r["ci_high"] == pytest.approx(chi2.ppf(0.975, 12) / 2 / years * 1000)


def test_direct_standardisation_by_hand() -> None:
    """Two bands: 10 events in 100 years and 30 in 100 years, standard weights 0.75/0.25."""
    import numpy as np

    indicator = catalogue()["acute-admissions"]
    cells = {
        "period": np.array(["2023", "2023"]),
        "grp": np.array(["a", "a"]),
        "band": np.array([0, 1]),
        "x": np.array([10.0, 30.0]),
        "x2": np.array([10.0, 30.0]),
        "xmax": np.array([1.0, 1.0]),
        "n": np.array([100.0, 100.0]),
    }
    bands = len(engine.groupings()["age_bands"])
    assert bands >= 2
    standard = engine.groupings()["standard_population"]
    w0, w1 = standard[0] / (standard[0] + standard[1]), standard[1] / (standard[0] + standard[1])
    out = stats.summarise(indicator, cells, 0)
    assert out["std_value"][0] == pytest.approx((w0 * 0.1 + w1 * 0.3) * 1000)
    assert out["value"][0] == pytest.approx(200.0)
    assert out["std_ci_low"][0] < out["std_value"][0] < out["std_ci_high"][0]


def test_fay_feuer_reduces_to_exact_poisson() -> None:
    import numpy as np

    k, n = 7.0, 250.0
    lo, hi = stats.gamma_interval(np.array([k / n]), np.array([k / n / n]), np.array([1 / n]))
    assert lo[0] == pytest.approx(chi2.ppf(0.025, 2 * k) / 2 / n)
    assert hi[0] == pytest.approx(chi2.ppf(0.975, 2 * k + 2) / 2 / n)


def test_wilson_interval_textbook() -> None:
    import numpy as np

    lo, hi = stats.wilson(np.array([1.0]), np.array([20.0]))
    assert (round(lo[0], 4), round(hi[0], 4)) == (0.0089, 0.2361)  # Newcombe (1998), 1/20


def test_funnel_limits_widen_with_less_precision() -> None:
    import numpy as np

    lo95, hi95 = stats.funnel_limits("rate", 50.0, np.array([10.0, 100.0, 1000.0]), 0.95)
    lo998, hi998 = stats.funnel_limits("rate", 50.0, np.array([10.0, 100.0, 1000.0]), 0.998)
    assert all(lo998 < lo95) and all(hi998 > hi95)
    assert hi95[0] > hi95[1] > hi95[2] > 50 > lo95[2] > lo95[1] > lo95[0]
    slo, shi = stats.funnel_limits("share", 12.0, np.array([100.0]), 0.95)
    assert slo[0] == pytest.approx(12 - 1.959964 * math.sqrt(0.12 * 0.88 / 100) * 100, rel=1e-4)
    assert shi[0] == pytest.approx(12 + 1.959964 * math.sqrt(0.12 * 0.88 / 100) * 100, rel=1e-4)


def test_indirect_ratio_of_the_whole_area_is_one(rows: Any) -> None:
    for (indicator, _group), r in rows("all").items():
        if r["numerator"]:
            assert r["ratio"] == pytest.approx(1.0), indicator


def test_a_definition_shows_its_note_in_both_languages_or_not_at_all(tmp_path: Path) -> None:
    """A page shows a definition's texts in the reader's language, so a note without its Danish is refused."""
    import yaml

    from naer.errors import UserError
    from naer.indicators.definition import DEFINITIONS, load_indicator

    raw = yaml.safe_load((DEFINITIONS / "preventable_chronic.yaml").read_text(encoding="utf-8"))
    del raw["source"]["note_da"]
    odd = tmp_path / "odd.yaml"
    odd.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(UserError, match="note and note_da come together"):
        load_indicator(odd, [0, 65])
    raw["source"]["note_da"] = "En note."
    del raw["code_groups"]["copd"]["label_da"]
    odd.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(UserError, match=r"odd\.yaml: code_groups copd: label_da missing"):
        load_indicator(odd, [0, 65])


def test_definitions_are_complete() -> None:
    ids = list(catalogue())
    assert ids == sorted(ids, key=lambda i: ids.index(i))
    assert {
        "preventable-65plus",
        "preventable-chronic",
        "readmission-30d",
        "acute-admissions",
        "bed-days",
        "acute-bed-stays",
        "gp-followup-14d",
    } <= set(ids)
    prevent = catalogue()["preventable-65plus"]
    assert set(prevent.code_groups) == {
        "dehydration",
        "constipation",
        "lower_respiratory_infection",
        "urinary_tract_infection",
        "gastroenteritis",
        "fracture",
        "nutritional_anaemia",
        "social_and_care",
        "pressure_ulcer",
    }
    assert "DJ15" in prevent.code_groups["lower_respiratory_infection"].prefixes()
    for indicator in catalogue().values():
        assert indicator.source.url.startswith("https://")


def test_clusters_agree_with_the_generators_hospitals() -> None:
    """The clusters file and the synthetic population's municipality -> hospital table say the same."""
    from naer.synth.model import load_model

    clusters = engine.groupings()["clusters"]
    cluster_of = {code: name for name, codes in clusters.items() for code in codes}
    model = load_model()
    by_hospital: dict[str, set[str]] = {}
    for code, m in model.areas["municipalities"].items():
        if m["region"] == "DK-82":
            by_hospital.setdefault(m["hospital"], set()).add(cluster_of[code])
    assert len(by_hospital) == len(clusters)
    assert all(len(names) == 1 for names in by_hospital.values()), by_hospital


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"{SYNTHEA} is absent (the shared fixtures)")
def test_other_generators_data_computes(tmp_path: Path) -> None:
    """Synthea (US coding, no municipalities, no SKS): everything computes; ICD-10-CM main diagnoses of
    inpatient stays would count, SNOMED CT ones never do."""
    path = tmp_path / "synthea.duckdb"
    build_warehouse(SYNTHEA, path)
    with engine.open_warehouse(path) as con:
        window = engine.prepare(con)
        for by in engine.GROUPINGS:
            table = engine.compute(con, pick(None), by, "year", window)
            assert table.num_rows > 0
        admissions = con.execute("SELECT count(*) FROM admission").fetchone()
        assert admissions and admissions[0] > 0
        table = engine.compute(con, pick(["acute-admissions"]), "municipality", "year", window)
        assert set(table.column("group").to_pylist()) == {"unknown"}


# --- the command -------------------------------------------------------------------------------------


@pytest.fixture
def run(naer: Callable[..., CompletedProcess[str]], tmp_path: Path) -> Callable[..., CompletedProcess[str]]:
    return lambda *args: naer("indicators", *args, cwd=tmp_path)


def test_cli_writes_csv_parquet_ndjson_and_measurereports(run: Any, tmp_path: Path, warehouse: Path) -> None:
    common = ["--warehouse", str(warehouse), "--from", "2023-01-01", "--to", "2023-12-31"]
    done = run(*common, "--by", "municipality", "--out", "out.csv")
    assert done.returncode == 0, done.stderr
    assert "Samsø Kommune" in done.stdout and "rows" in done.stdout
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert "std_value" in header and "ci_low" in header
    assert run(*common, "--out", "out.parquet", "--period", "quarter").returncode == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert set(table.column("period").to_pylist()) == {"2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"}
    assert run(*common, "--by", "all", "--out", "out.ndjson").returncode == 0
    first = orjson.loads((tmp_path / "out.ndjson").read_bytes().splitlines()[0])
    assert first["by"] == "all"
    done = run(*common, "--format", "measurereport", "--out", "reports.ndjson")
    assert done.returncode == 0, done.stderr
    from naer.fhir.validate import validation_errors

    reports = [orjson.loads(line) for line in (tmp_path / "reports.ndjson").read_bytes().splitlines()]
    assert len(reports) == len(catalogue())
    for report in reports:
        assert validation_errors(report) == []  # FHIR R4 (fhir.resources' R4B models)
    prevent = next(r for r in reports if r["measure"].endswith("/preventable-65plus"))
    assert prevent["period"] == {"start": "2023-01-01", "end": "2023-12-31"}
    strata = prevent["group"][0]["stratifier"][0]["stratum"]
    assert {s["value"]["text"]: s["population"][0]["count"] for s in strata} == {
        "Samsø Kommune": 4,
        "Odder Kommune": 1,
    }
    done = run(*common, "--by", "all", "--danish")
    assert "4.031,6" in done.stdout  # bed days per 1,000, Danish style
    narrow = subprocess.run(
        [str(Path(sys.executable).with_name("naer")), "indicators", *common, "--by", "all"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert (
        "preventable-65plus" in narrow.stdout and "preventable-chronic" in narrow.stdout
    )  # not "preventab…"
    assert "…" not in narrow.stdout  # no figure cut short either
    by_place = subprocess.run(
        [str(Path(sys.executable).with_name("naer")), "indicators", *common, "--by", "municipality"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert by_place.returncode == 0 and "…" not in by_place.stdout
    assert "Samsø" in by_place.stdout and max(map(len, by_place.stdout.splitlines())) <= 80


def test_cli_every_grouping_and_charts(run: Any, tmp_path: Path, warehouse: Path) -> None:
    common = ["--warehouse", str(warehouse), "--from", "2023-01-01", "--to", "2023-12-31"]
    done = run(
        *common, "--by", "every", "--period", "year,quarter", "--out", "all.parquet", "--chart", "c.svg"
    )
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "all.parquet")
    assert set(table.column("by").to_pylist()) == set(engine.GROUPINGS)
    assert set(table.column("period_kind").to_pylist()) == {"year", "quarter"}
    assert (tmp_path / "c-time.svg").read_text().lstrip().startswith("<svg")
    assert not (tmp_path / "c-funnel.svg").exists()  # the first grouping is the whole area: no units
    done = run(*common, "--by", "municipality", "--indicator", "preventable-65plus", "--chart", "m.png")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m-funnel.png").read_bytes()[:4] == b"\x89PNG"
    bad = run(*common, "--chart", "c.gif")
    assert bad.returncode == 2 and "the suffix must be .svg, .png or .json" in bad.stderr


def test_cli_builds_a_warehouse_from_input(run: Any, tmp_path: Path) -> None:
    done = run("--input", str(POPULATION), "--warehouse", "w.duckdb", "--by", "all", "--from", "2023-01-01")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w.duckdb").is_file()
    assert not re.search(r"views\s.*\b0/\d+", done.stderr)  # no progress bar left standing at 0/11
    listed = run("--list")
    assert "preventable-65plus" in listed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--indicator", "nonsense"], "unknown indicator nonsense"),
        (["--by", "street"], "unknown grouping 'street'"),
        (["--period", "week"], "unknown period 'week'"),
        (["--from", "2023-13-01"], "is not a date"),
        (["--out", "x.xlsx"], "the suffix must be .csv, .parquet or .ndjson"),
        (["--format", "pdf", "--out", "x.csv"], "unknown format 'pdf'"),
        (["--out", "nowhere/x.csv"], "does not exist"),
    ],
)
def test_cli_refuses_bad_choices(run: Any, warehouse: Path, args: list[str], message: str) -> None:
    done = run("--warehouse", str(warehouse), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_refuses_input_without_patients_and_writes_nothing(run: Any, tmp_path: Path) -> None:
    data = tmp_path / "only-orgs"
    data.mkdir()
    (data / "Organization.ndjson").write_bytes((POPULATION / "Organization.ndjson").read_bytes())
    done = run("--input", str(data), "--warehouse", "w.duckdb", "--out", "x.csv")
    assert done.returncode == 2
    assert "no Encounter or Patient NDJSON file" in done.stderr
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "w.duckdb").exists()
    missing = run("--warehouse", "none.duckdb")
    assert missing.returncode == 2 and "no warehouse none.duckdb" in missing.stderr
    nothing = run()
    assert nothing.returncode == 2 and "give --input DATA_DIR" in nothing.stderr


def test_cli_refuses_a_warehouse_from_an_older_version(run: Any, tmp_path: Path, warehouse: Path) -> None:
    old = tmp_path / "old.duckdb"
    old.write_bytes(warehouse.read_bytes())
    with duckdb.connect(str(old)) as con:
        con.execute("DROP TABLE naer_warehouse")
    done = run("--warehouse", str(old))
    assert done.returncode == 2
    assert "built by an older version of Nær (warehouse format 1" in done.stderr
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE TABLE naer_warehouse AS SELECT 'format' AS key, '2' AS value")
        con.execute("DROP TABLE residence")
    done = run("--warehouse", str(old))
    assert done.returncode == 2 and "lacks the view tables residence" in done.stderr


def test_a_failed_output_keeps_the_old_file(run: Any, tmp_path: Path, warehouse: Path) -> None:
    (tmp_path / "keep.csv").write_text("old\n")
    done = run("--warehouse", str(warehouse), "--format", "measurereport", "--out", "keep.csv")
    assert done.returncode == 2
    assert (tmp_path / "keep.csv").read_text() == "old\n"


def _iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_bytes().splitlines():
        yield orjson.loads(line)


def test_population_files_match_their_builder(tmp_path: Path) -> None:
    """The committed NDJSON is what build.py writes (so the cases documented there are the data)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_population", POPULATION / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = tmp_path
    module.write()
    for name in ("Organization", "Patient", "Encounter", "Condition", "Observation"):
        assert list(_iter_lines(tmp_path / f"{name}.ndjson")) == list(
            _iter_lines(POPULATION / f"{name}.ndjson")
        )
