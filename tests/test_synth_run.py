"""Determinism, the output folder's life cycle, and bad input through the real command."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from naer.errors import UserError
from naer.synth import run as synth_run
from naer.synth.run import SynthRequest, synthesize


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _request(out: Path, **kw: object) -> SynthRequest:
    base: dict[str, object] = dict(
        area="741,727",
        start=date(2019, 1, 1),
        end=date(2020, 12, 31),
        seed=7,
        out=out,
        scale=0.05,
        chunk_size=400,
    )
    base.update(kw)
    return SynthRequest(**base)  # type: ignore[arg-type]


def test_same_seed_same_bytes_whatever_the_number_of_workers(tmp_path: Path) -> None:
    synthesize(_request(tmp_path / "a", workers=1))
    synthesize(_request(tmp_path / "b", workers=2))
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b
    assert "Encounter.ndjson" in a and "truth/acute_admission_hazard.csv" in a


def test_gzip_output_is_deterministic_and_readable(tmp_path: Path) -> None:
    synthesize(_request(tmp_path / "a", gzip=True, workers=2))
    synthesize(_request(tmp_path / "b", gzip=True, workers=1))
    synthesize(_request(tmp_path / "plain"))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    import gzip

    assert (
        gzip.decompress((tmp_path / "a" / "Encounter.ndjson.gz").read_bytes())
        == (tmp_path / "plain" / "Encounter.ndjson").read_bytes()
    )


def test_another_seed_gives_another_population(tmp_path: Path) -> None:
    synthesize(_request(tmp_path / "a"))
    synthesize(_request(tmp_path / "b", seed=8))
    assert _digest(tmp_path / "a")["Patient.ndjson"] != _digest(tmp_path / "b")["Patient.ndjson"]


def test_a_failed_run_leaves_nothing_and_keeps_the_old_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data"
    synthesize(_request(out))
    before = _digest(out)
    calls = {"n": 0}
    real = synth_run.write_chunk

    def failing(*args: object, **kwargs: object) -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(synth_run, "write_chunk", failing)
    with pytest.raises(OSError, match="disk full"):
        synthesize(_request(out, force=True))
    assert _digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_force_replaces_a_data_set_only_when_the_new_one_is_whole(tmp_path: Path) -> None:
    out = tmp_path / "data"
    synthesize(_request(out))
    with pytest.raises(UserError, match="not empty"):
        synthesize(_request(out, seed=2))
    synthesize(_request(out, seed=2, force=True))
    assert '"seed": 2' in (out / "manifest.json").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--area", "atlantis"], "unknown area 'atlantis'"),
        (["--area", "741,9999"], "unknown municipality code(s) 9999"),
        (
            ["--start", "2020-01-01", "--end", "2019-01-01"],
            "--end 2019-01-01 must be after --start 2020-01-01",
        ),
        (["--start", "2020-02-30"], "--start '2020-02-30' is not a date"),
        (["--scale", "0"], "--scale must be above 0"),
        (["--area", "741,727", "--full", "9999"], "--full '9999' is not the code of a municipality"),
        (["--area", "741", "--full", "Samsø"], "--full 'Samsø' is not the code of a municipality"),
        (["--at-least", "0"], "--at-least must be 1 to 1,000,000 citizens"),
        (["--out", "blocker/sub"], "cannot create"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(
    tmp_path: Path, args: list[str], message: str, naer: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    base = ["synth", "--out", "out", "--scale", "0.01"]
    result = naer(*base, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_non_empty_output_folder_needs_force(
    tmp_path: Path, naer: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    result = naer("synth", "--out", "out", "--scale", "0.01", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not empty" in result.stderr and "--force" in result.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"


def test_the_command_writes_a_data_set_and_a_summary(
    tmp_path: Path, naer: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    result = naer(
        "synth",
        "--area",
        "741",
        "--scale",
        "0.05",
        "--start",
        "2023-01-01",
        "--end",
        "2023-12-31",
        "--out",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Patient.ndjson" in result.stdout and "citizens at start" in result.stdout
    report = naer("synth", "--report", "out", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "GP contacts per citizen-year" in report.stdout


def test_report_on_a_folder_that_is_not_a_data_set(
    tmp_path: Path, naer: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    result = naer("synth", "--report", "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such folder" in result.stderr


def _lines(path: Path) -> list[dict[str, object]]:
    import orjson

    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _population(code: str) -> int:
    from naer.synth.areas import resolve_area
    from naer.synth.model import load_model

    return next(m.population for m in resolve_area(load_model(), code)[1])


def test_full_keeps_one_municipality_whole_beside_a_sample_of_the_others(tmp_path: Path) -> None:
    """--full 741 --scale 0.05 --at-least 1500: Samsø whole in Type.ndjson, Odder scaled (raised to 1,500)
    in Type.sample.ndjson, and the manifest lists both and says which is which."""
    import orjson

    out = tmp_path / "d"
    result = synthesize(_request(out, full=("741",), at_least=1500, workers=2))
    towns = {m["code"]: m for m in result.municipalities}
    assert towns["0741"]["full"] is True and towns["0727"]["full"] is False
    assert towns["0727"]["citizens"] == 1500 > round(_population("0727") * 0.05)  # raised to --at-least
    assert towns["0741"]["citizens"] == _population("0741")
    whole = {p["id"][4:8] for p in _lines(out / "Patient.ndjson")}
    sampled = {p["id"][4:8] for p in _lines(out / "Patient.sample.ndjson")}
    assert whole == {"0741"} and sampled == {"0727"}
    assert len(_lines(out / "Patient.ndjson")) == result.counts["Patient"] >= towns["0741"]["citizens"]
    for kind in ("Encounter", "Condition", "Observation"):
        rows = _lines(out / f"{kind}.sample.ndjson")
        assert len(rows) == result.sample_counts[kind] > 0
        assert {r["subject"]["reference"][12:16] for r in rows} == {"0727"}
    # organisations are not split: every clinic and municipality in the one Organization file
    assert not (out / "Organization.sample.ndjson").exists()
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    listed = {o["url"]: o["count"] for o in manifest["output"]}
    assert listed["Patient.sample.ndjson"] == result.sample_counts["Patient"]
    assert listed["Patient.ndjson"] == result.counts["Patient"]
    assert "--full 741 --at-least 1500" in manifest["request"]
    assert manifest["naer"]["full"] == ["0741"] and manifest["naer"]["atLeast"] == 1500


def test_the_views_read_the_sample_beside_the_whole(tmp_path: Path) -> None:
    """A split data set is one data set to the views: Patient.sample.ndjson is read as Patient."""
    from naer.views.source import files_for

    out = tmp_path / "d"
    synthesize(_request(out, full=("741",)))
    files, kind = files_for(out, "Patient")
    assert kind == "ndjson" and {f.name for f in files} == {"Patient.ndjson", "Patient.sample.ndjson"}


def test_without_full_nothing_is_split(tmp_path: Path) -> None:
    out = tmp_path / "d"
    result = synthesize(_request(out, at_least=1))
    assert not list(out.glob("*.sample.ndjson")) and not result.sample
    assert all(m["full"] is False for m in result.municipalities)  # both scaled to 5 %
