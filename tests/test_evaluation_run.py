"""`naer evaluate` on a synthetic region (1 %, every municipality at least 600 citizens, 2015-2021): the
register, every design on every indicator, the report, and each bad input a clear error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from naer.errors import UserError
from naer.evaluation.register import find, read, register
from naer.evaluation.run import evaluate


@pytest.fixture(scope="module")
def warehouse(evaluated_region: tuple[Path, Path]) -> Path:
    return evaluated_region[1]


def test_the_register_holds_the_samsoe_trial() -> None:
    trial = register()["samsoe-2019"]
    assert (trial.start.isoformat(), trial.end.isoformat(), trial.area.municipalities) == (
        "2019-05-01", "2020-05-01", ["0741"]
    )  # fmt: skip
    assert {i.id for i in trial.indicators} >= {"preventable-65plus", "acute-admissions"}


def test_the_samsoe_trial_is_evaluated_by_every_design(
    warehouse: Path, tmp_path: Path, naer: Callable[..., Any]
) -> None:
    found = evaluate(find("samsoe-2019"), warehouse)
    assert len(found.comparison) == 18 and found.treated == ["0741"]
    for outcome in found.outcomes:
        assert {e.design for e in outcome.estimates} == {"did", "synthetic-control", "its"}
        for estimate in outcome.estimates:
            assert estimate.low <= estimate.effect <= estimate.high
        assert outcome.trusted is None or outcome.trusted in ("did", "synthetic-control", "its")
    done = naer(
        "evaluate", "samsoe-2019", "--warehouse", str(warehouse), "--out", str(tmp_path / "r"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert (
        "Forskel i forskelle" in html
        and "Syntetisk kontrol" in html
        and "<img src=" in html
        and (tmp_path / "r" / "acute-admissions-counterfactual.svg").exists()
    )
    results = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    assert results["initiative"] == "samsoe-2019" and len(results["outcomes"]) == 4


def _initiative(tmp_path: Path, **change: Any) -> Path:
    import yaml

    raw = yaml.safe_load(
        (Path(__file__).parents[1] / "src/naer/evaluation/initiatives/samsoe-2019.yaml").read_text()
    )
    raw.update(change)
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"indicators": [{"id": "happiness", "expected": "higher"}]}, "indicator 'happiness' is not one of"),
        ({"area": {"municipalities": ["Samsø"]}}, "is not a municipality code"),
        ({"start": "2019-05-15"}, "first of a month"),
        ({"end": "2018-01-01"}, "is not after start"),
        ({"target": {"min_age": 70, "description": "x", "description_da": "x"}}, "must start an age band"),
        ({"state": "dreaming"}, "state"),
        ({"end": "9999-12-01"}, "from 1900 to 2200"),
        ({"designs": []}, "designs"),
        ({"designs": ["did", "did"]}, "a design is named twice"),
        (
            {
                "indicators": [
                    {"id": "acute-admissions", "expected": "lower"},
                    {"id": "acute-admissions", "expected": "higher"},
                ]
            },
            "an indicator is named twice",
        ),
        ({"comparison": {"pool": "country"}}, "comparison.pool"),
    ],
)
def test_a_bad_initiative_file_is_refused_with_the_reason(
    tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    with pytest.raises(UserError, match=says):
        read(_initiative(tmp_path, **change))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"area": {"municipalities": ["0999"]}}, "not in the warehouse"),
        ({"start": "2031-01-01", "end": "2032-01-01"}, "outside the data"),
    ],
)
def test_an_initiative_the_data_cannot_answer_is_a_clear_error(
    warehouse: Path, tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    with pytest.raises(UserError, match=says):
        evaluate(read(_initiative(tmp_path, **change)), warehouse)


def test_the_command_line_says_what_is_wrong(tmp_path: Path, naer: Callable[..., Any]) -> None:
    done = naer("evaluate", "no-such-trial", "--warehouse", "x", "--out", "y", cwd=tmp_path)
    assert done.returncode == 2 and "no initiative 'no-such-trial'" in done.stderr
    listed = naer("evaluate", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and "samsoe-2019" in listed.stdout
    missing = naer(
        "evaluate", "samsoe-2019", "--warehouse", str(tmp_path / "none.duckdb"), "--out", "y", cwd=tmp_path
    )
    assert missing.returncode == 2 and "no warehouse" in missing.stderr
    (tmp_path / "a-file").write_text("x")
    for out in ("a-file", "a-file/report"):
        refused = naer("evaluate", "samsoe-2019", "--warehouse", "x", "--out", out, cwd=tmp_path)
        assert refused.returncode == 2 and "--out" in refused.stderr and "Traceback" not in refused.stderr


def test_too_few_comparison_municipalities_is_a_clear_error(warehouse: Path, tmp_path: Path) -> None:
    from naer.evaluation.panel import panels

    found, _ = panels(warehouse, ["acute-admissions"], 65)
    others = [u for u in found["acute-admissions"].units if u != "0741"]
    trial = read(_initiative(tmp_path, comparison={"pool": "region", "exclude": others[:-3]}))
    with pytest.raises(UserError, match="3 comparison units: at least 4"):
        evaluate(trial, warehouse)


def test_the_report_shows_the_planted_truth_beside_the_estimates(
    evaluated_region: tuple[Path, Path], tmp_path: Path, naer: Callable[..., Any]
) -> None:
    data, warehouse = evaluated_region
    truth = data / "truth" / "planted.json"
    done = naer("evaluate", "samsoe-2019", "--warehouse", str(warehouse), "--out", str(tmp_path / "r"),
                "--truth", str(truth), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "planted truth" in done.stdout
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "Plantet sand virkning" in html and "Dækker den plantede virkning?" in html
    results = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    planted = orjson.loads(truth.read_bytes())["effects"]
    assert {o["indicator"]: o["planted_truth"] for o in results["outcomes"]} == {
        k: v["effect"] for k, v in planted.items() if k != "bed-days"
    }
    done = naer("evaluate", "samsoe-2019", "--warehouse", str(warehouse), "--out", str(tmp_path / "s"),
                "--truth", str(tmp_path / "r" / "report.html"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "not a planted truth" in done.stderr


def test_before_a_trial_the_power_of_each_design(
    warehouse: Path, tmp_path: Path, naer: Callable[..., Any]
) -> None:
    from datetime import date

    from naer.evaluation.run import power

    planned = read(_initiative(tmp_path, start=date(2030, 1, 1), end=date(2031, 1, 1), state="planned"))
    months, found = power(planned, warehouse)
    assert months == 12 and [p.indicator for p in found] == [i.id for i in planned.indicators]
    for row in found:
        assert set(row.detectable) == {"did", "synthetic-control", "its"}
        assert all(0 < v < float("inf") for v in row.detectable.values()), row
        assert row.level > 0
    with pytest.raises(UserError, match="outside the data"):
        evaluate(planned, warehouse)  # nothing to evaluate yet: the power is what there is
    done = naer("evaluate", str(tmp_path / "trial.yaml"), "--warehouse", str(warehouse), "--power",
                "--out", str(tmp_path / "p"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = orjson.loads((tmp_path / "p" / "power.json").read_bytes())
    assert saved["months"] == 12 and len(saved["indicators"]) == len(found)
    long = read(_initiative(tmp_path, start=date(2016, 1, 1), end=date(2021, 1, 1), state="planned"))
    with pytest.raises(UserError, match="to be tried in the past"):
        power(long, warehouse)


def test_a_target_group_with_no_citizens_is_a_clear_error(warehouse: Path) -> None:
    """(No age band is empty on Samsø in the test data: the panel is emptied of the area's citizens.)"""
    import numpy as np

    from naer.evaluation.panel import panels
    from naer.evaluation.run import _setting

    found, _ = panels(warehouse, ["acute-admissions"], 65)
    panel = found["acute-admissions"]
    row = panel.row("0741")
    panel.numerator[row], panel.denominator[row], panel.value[row] = 0, 0, np.nan
    with pytest.raises(UserError, match="the target group has no citizens in the area"):
        _setting(panel, find("samsoe-2019"), set())


def test_the_tester_s_hostile_files_are_refused_in_one_line(
    warehouse: Path, tmp_path: Path, naer: Callable[..., Any]
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * 5000 + "]" * 5000, encoding="utf-8")
    with pytest.raises(UserError, match="nested too deeply"):
        read(deep)
    for name in ("[/red]", "[bold]x"):  # the user's text in an error is not Rich markup
        done = naer(
            "evaluate", name, "--warehouse", str(warehouse), "--out", str(tmp_path / "o"), cwd=tmp_path
        )
        assert done.returncode == 2 and name in done.stderr and "Traceback" not in done.stderr
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("mine", encoding="utf-8")
    done = naer(
        "evaluate", "samsoe-2019", "--warehouse", str(warehouse), "--out", str(precious), cwd=tmp_path
    )
    assert done.returncode == 2 and "holds more than an earlier report" in done.stderr
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "mine"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for truth in (fifo, Path("/dev/zero")):
        done = naer("evaluate", "samsoe-2019", "--warehouse", str(warehouse), "--out", str(tmp_path / "t"),
                    "--truth", str(truth), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 2 and "not a planted truth" in done.stderr


def test_a_truth_must_be_the_initiative_s_own_and_finite(
    evaluated_region: tuple[Path, Path], tmp_path: Path
) -> None:
    from naer.evaluation.truth import read as read_truth

    data, _ = evaluated_region
    raw = orjson.loads((data / "truth" / "planted.json").read_bytes())
    assert read_truth(data, "samsoe-2019")
    with pytest.raises(UserError, match="the truth of 'samsoe-2019', not of other"):
        read_truth(data, "other")
    raw["effects"]["acute-admissions"]["effect"] = float("nan")
    bad = tmp_path / "nan.json"
    bad.write_text(__import__("json").dumps(raw), encoding="utf-8")
    with pytest.raises(UserError, match="not a finite number"):
        read_truth(bad, "samsoe-2019")
