"""Bulk load and export on SQLite and PostgreSQL: another generator's data (Synthea) and the Samsø set go
in and come out again with nothing lost; a bad line anywhere loads nothing."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from naer.store import resources as store
from naer.store.bulk import LoadError, export, load
from naer.store.context import SYSTEM
from naer.store.db import engine

FIXTURES = Path(
    os.environ.get("NAER_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
SYNTHEA = FIXTURES / "synthea" / "10-patients"


def _resources(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.iterdir()):
        opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
        if ".ndjson" not in path.name:
            continue
        with opener(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)


def _without_store_meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    return {**out, "meta": meta} if meta else out


def _by_key(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["resourceType"], r["id"]): _without_store_meta(r) for r in _resources(folder)}


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"no Synthea fixture at {SYNTHEA}")
def test_round_trip_loses_nothing(store_url: str, samsoe: Path, tmp_path: Path) -> None:
    db = engine(store_url)
    first = load(db, SYSTEM, SYNTHEA, workers=2)
    second = load(db, SYSTEM, samsoe, workers=2)
    assert first.counts["Patient"] == 13 and first.total == 7160  # ../shared/fixtures/synthea/SOURCES.md
    counts = export(db, SYSTEM, tmp_path / "out")
    assert sum(counts.values()) == first.total + second.total
    expected = {**_by_key(SYNTHEA), **_by_key(samsoe)}
    got = _by_key(tmp_path / "out")
    assert got.keys() == expected.keys()
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, different[:3]
    patient = next(rid for kind, rid in expected if kind == "Patient")
    stored = orjson.loads(store.read(db, SYSTEM, "Patient", patient).content or "")
    assert stored["meta"]["versionId"] == "1"


def test_loading_again_makes_new_versions(store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(patient) + b"\n" + orjson.dumps(patient) + b"\n")
    db = engine(store_url)
    assert load(db, SYSTEM, folder, workers=1).total == 2
    assert store.read(db, SYSTEM, "Patient", "p1").version_id == 2  # the same id twice in one load
    load(db, SYSTEM, folder / "Patient.ndjson", workers=1)
    assert store.read(db, SYSTEM, "Patient", "p1").version_id == 4
    _, total = store.history_of(db, SYSTEM, "Patient", "p1")
    assert total == 4


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"resourceType": "Patient", "id": "x"', "line 3: not JSON"),
        (b"[1, 2]", "line 3: not a JSON object"),
        (b'{"resourceType": "Pasient", "id": "x"}', "line 3: unknown resourceType 'Pasient'"),
        (b'{"resourceType": "Patient", "id": "x", "birthDate": "1970-13-01"}', "line 3: not valid FHIR R4"),
        (b'{"resourceType": "Patient", "gender": "male"}', "line 3: the resource has no id"),
        (b'{"resourceType": "Patient", "id": "a\\u0000b"}', "line 3: id holds a NUL character"),
        (
            b'{"resourceType": "Patient", "id": "p", "name": [{"family": "\\u0000"}]}',
            r"name\[0\]\.family holds a NUL",
        ),
        (b'{"resourceType": "Patient", "id": "' + b"x" * 100 + b'"}', r"\(100 characters\) is not a FHIR id"),
        (
            b'{"resourceType": "Patient", "id": "p", "extension": '
            + b'[{"extension": ' * 60
            + b"[]"
            + b"}]" * 60
            + b"}",
            "nests deeper than",
        ),
    ],
)
def test_a_bad_line_loads_nothing(store_url: str, tmp_path: Path, line: bytes, message: str) -> None:
    db = engine(store_url)
    store.create(db, SYSTEM, "Patient", {"resourceType": "Patient", "gender": "male"})
    folder = tmp_path / "in"
    folder.mkdir()
    good = b'{"resourceType": "Organization", "id": "o1", "name": "Samsoe"}\n'
    (folder / "A.ndjson").write_bytes(good)
    (folder / "B.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "p1"}\n\n' + line + b"\n")
    with pytest.raises(LoadError, match=message) as caught:
        load(db, SYSTEM, folder, workers=1)
    assert "B.ndjson" in str(caught.value) and "nothing was loaded" in str(caught.value)
    _, total = store.history_of(db, SYSTEM)
    assert total == 1  # only what was there before


def test_load_and_export_commands(naer: Any, tmp_path: Path, samsoe: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    done = naer("load", str(samsoe), "--url", url, "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Encounter" in done.stdout and "resources from" in done.stdout
    out = tmp_path / "export"
    exported = naer("export", str(out), "--url", url, "--type", "Patient,Organization", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.iterdir()) == ["Organization.ndjson", "Patient.ndjson"]
    again = naer("export", str(out), "--url", url, cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(samsoe / "Organization.ndjson", bad / "Organization.ndjson")
    (bad / "Patient.ndjson").write_text("not json\n")
    refused = naer("load", str(bad), "--url", url, cwd=tmp_path)
    assert refused.returncode == 2 and "Patient.ndjson, line 1: not JSON" in refused.stderr
    assert "Traceback" not in refused.stderr
    (bad / "Patient.ndjson").unlink()
    whole = gzip.compress(b'{"resourceType": "Patient", "id": "p1"}\n' * 5000)
    (bad / "Patient.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    cut = naer("load", str(bad), "--url", url, cwd=tmp_path)
    assert cut.returncode == 2 and "Patient.ndjson.gz: the gzip file is cut short" in cut.stderr, cut.stderr
    assert "Traceback" not in cut.stderr and "Aborted" not in cut.stderr
    edge = tmp_path / "edge"
    edge.mkdir()
    late = {"resourceType": "Patient", "id": "late", "birthDate": "9999-12-31"}
    (edge / "Patient.ndjson").write_bytes(orjson.dumps(late) + b"\n")
    assert naer("load", str(edge), "--url", url, cwd=tmp_path).returncode == 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
def test_load_workers_end_when_the_load_is_killed(tmp_path: Path, samsoe: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    command = [
        str(Path(sys.executable).with_name("naer")),
        "load",
        str(samsoe),
        "--url",
        url,
        "--workers",
        "2",
    ]
    loading = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    for _ in range(600):  # the pool's workers, once spawned (the multiprocessing helper is a child too)
        workers = _children(loading.pid)
        if len(workers) >= 2 or loading.poll() is not None:
            break
        time.sleep(0.05)
    assert loading.poll() is None and len(workers) >= 2, "the load ended before its workers could be seen"
    loading.kill()
    loading.wait()
    for _ in range(200):
        alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in _state(w)]
        if not alive:
            break
        time.sleep(0.05)
    assert not alive, f"workers {alive} outlived the killed load"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_load_takes_several_folders_and_files_each_once(naer: Any, tmp_path: Path) -> None:
    """`naer load A B/Patient.ndjson B`: every file of the folders and the files named, a file named twice
    loaded once (the demo loads a data set without its *.sample.ndjson files this way)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "Organization.ndjson").write_bytes(b'{"resourceType": "Organization", "id": "o1"}\n')
    (b / "Patient.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "p1"}\n')
    (b / "Patient.sample.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "p2"}\n')
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    done = naer(
        "load", str(a), str(b / "Patient.ndjson"), str(b / "Patient.ndjson"), "--url", url, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    db = engine(url)
    assert store.read(db, SYSTEM, "Patient", "p1").version_id == 1  # named twice, loaded once
    assert store.read(db, SYSTEM, "Organization", "o1").version_id == 1
    _, total = store.history_of(db, SYSTEM)
    assert total == 2  # not p2: only the files named
    missing = naer("load", str(a), str(tmp_path / "nowhere"), "--url", url, cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    assert store.history_of(db, SYSTEM)[1] == 2  # nothing loaded from a, either


def test_a_failed_first_load_keeps_every_index(store_url: str, tmp_path: Path) -> None:
    """A first load may set the search index's B-trees aside and build them at the end; a load that fails
    (here its second batch) must leave every one of them in place, on each database (a DROP INDEX the
    driver ran outside the transaction lost them on SQLite, and the next load failed on it)."""
    from sqlalchemy import inspect

    from naer.store.tables import INDEX_TABLES

    db = engine(store_url)

    def indexes() -> set[tuple[str, str]]:
        seen = inspect(db)
        return {(t, i["name"]) for t in INDEX_TABLES.values() for i in seen.get_indexes(t.name) if i["name"]}

    before = indexes()
    assert before
    folder = tmp_path / "in"
    folder.mkdir()
    good = b"".join(orjson.dumps({"resourceType": "Patient", "id": f"p{i}"}) + b"\n" for i in range(3000))
    (folder / "A.ndjson").write_bytes(good)
    (folder / "B.ndjson").write_bytes(b"not json\n")
    with pytest.raises(LoadError):
        load(db, SYSTEM, folder, workers=1)
    assert indexes() == before
    assert load(db, SYSTEM, folder / "A.ndjson", workers=1).total == 3000  # and the next load works
