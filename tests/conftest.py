"""Shared fixtures: small synthetic data sets generated once per test session."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from naer.synth.run import SynthRequest, synthesize


def run_naer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``naer`` command as a user would, on a wide terminal so messages stay on one line."""
    exe = Path(sys.executable).with_name("naer")
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def naer() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The ``naer`` command, run in a subprocess: ``naer("views", "run", ..., cwd=tmp_path)``."""
    return run_naer


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            yield orjson.loads(line)


def resources(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.ndjson*")):
        yield from read_ndjson(path)


@pytest.fixture(scope="session")
def samsoe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Samsø at a quarter of its size, ten years: small enough to validate every resource."""
    out = tmp_path_factory.mktemp("synth") / "samsoe"
    synthesize(SynthRequest("samsoe", date(2015, 1, 1), date(2024, 12, 31), 1, out, scale=0.25))
    return out


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Region Midtjylland at 1 % (about 13,600 citizens), ten years, on two workers."""
    out = tmp_path_factory.mktemp("synth") / "region"
    synthesize(
        SynthRequest("region-midt", date(2015, 1, 1), date(2024, 12, 31), 1, out, scale=0.01, workers=2)
    )
    return out


def _postgres_url() -> str | None:
    return os.environ.get("NAER_TEST_DATABASE_URL") or None


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store: an SQLite file, or a schema of its own in the PostgreSQL test database
    (NAER_TEST_DATABASE_URL; `make check` provides one)."""
    import uuid

    from sqlalchemy import create_engine, text

    from naer.store.db import database_url, engine, in_schema
    from naer.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
        upgrade(url)
        yield url
        engine(url).dispose()
        return
    base = _postgres_url()
    if base is None:
        pytest.skip("NAER_TEST_DATABASE_URL is not set (make check sets it)")
    base = database_url(base)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as con:
        con.execute(text(f"CREATE SCHEMA {schema}"))
    url = in_schema(base, schema)
    try:
        upgrade(url)
        yield url
    finally:
        engine(url).dispose()
        with admin.begin() as con:
            con.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def api(store_url: str) -> Iterator[Any]:
    """The FHIR API over a fresh store, driven in-process."""
    from fastapi.testclient import TestClient

    from naer.api.app import create_app

    with TestClient(create_app(store_url)) as client:
        yield client
