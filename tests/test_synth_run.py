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
