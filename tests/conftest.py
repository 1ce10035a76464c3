"""Shared fixtures: small synthetic data sets generated once per test session."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from naer.synth.run import SynthRequest, synthesize

# The test client names the host "testserver"; the servers the tests start answer on 127.0.0.1.
os.environ.setdefault("NAER_ALLOWED_HOSTS", "127.0.0.1,localhost,::1,testserver")
# Nær's signing key (made on first use) and export jobs go to a folder of this test run, not to data/.
_RUN = Path(tempfile.mkdtemp(prefix="naer-tests-"))
os.environ.setdefault("NAER_DATA_DIR", str(_RUN))
os.environ.setdefault("NAER_SIGNING_KEY", str(_RUN / "keys" / "signing-key.json"))

SYSTEM_SCOPES = "system/*.cruds"


def system_token(store_url: str, name: str = "test-system", scopes: str = SYSTEM_SCOPES) -> str:
    """A token of a system client registered in the store at ``store_url`` (made when missing)."""
    from naer.access import accounts, tokens
    from naer.store.db import engine

    db = engine(store_url)
    if accounts.get(db, name) is None:
        accounts.add(db, name, f"Test client {name}", "system", password=None, scopes=scopes)
    return tokens.issue(name, scopes)


def signed_in(store_url: str, **headers: str) -> dict[str, str]:
    """Request headers of the test system client, with ``headers`` added."""
    return {"Authorization": f"Bearer {system_token(store_url)}", **headers}


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


@contextlib.contextmanager
def api_server(store_url: str) -> Iterator[str]:
    """The FHIR API on ``store_url`` served by uvicorn on a free loopback port: its base URL (…/fhir)."""
    from naer.api.app import create_app

    with served(create_app(store_url)) as url:
        yield f"{url}/fhir"


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """An ASGI app served by uvicorn in a thread on a free loopback port: its base URL."""
    import uvicorn

    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def pages(
    add: Callable[[Any, Path], None],
    source: Path,
    role: str = "planner",
    organization: str | None = None,
    patients: Path | None = None,
    **about: str,
) -> Iterator[Any]:
    """An in-process client of the pages ``add(app, source)`` registers on the platform's app (over a
    store of its own, with the Patients of ``patients`` loaded), signed in as a person of ``role``."""
    from fastapi.testclient import TestClient

    from naer.access import accounts, sessions
    from naer.api.app import create_app
    from naer.api.auth import SESSION_COOKIE
    from naer.store.bulk import load
    from naer.store.context import SYSTEM
    from naer.store.db import engine
    from naer.store.migrate import upgrade
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages

    folder = Path(tempfile.mkdtemp(prefix="naer-pages-"))
    url = f"sqlite:///{folder / 'store.sqlite'}"
    upgrade(url)
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add(app, source)
    app.add_middleware(SignInGate)
    db = engine(url)
    if patients is not None:
        files = sorted(patients.glob("Patient.ndjson*"))
        load(db, SYSTEM, files[0], workers=1)
    accounts.add(db, "tester", "Test Testesen", role, None, organization=organization, **about)
    secret = sessions.start(db, "tester", "testclient", 1)
    try:
        with TestClient(app, cookies={SESSION_COOKIE: secret}) as client:
            yield client
    finally:
        engine(url).dispose()
        shutil.rmtree(folder, ignore_errors=True)


PASSWORD = "test-password-1234"


def person(url: str, name: str, role: str, **about: Any) -> str:
    """An account with the test password in the (migrated) store at ``url``; its name."""
    from naer.access import accounts
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    upgrade(url)
    accounts.add(engine(url), name, about.pop("display", f"Test {name}"), role, PASSWORD, **about)
    return name


def sign_in(page: Any, base: str, name: str, password: str = PASSWORD) -> None:
    """Sign in through the login page as a person does."""
    page.goto(f"{base}/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("form.signin button[type=submit]")
    page.wait_for_load_state()


CHROMIUM = Path(os.environ.get("NAER_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("NAER_SCREENSHOTS", Path(__file__).parents[1] / "build" / "screenshots"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download), headless."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set NAER_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _postgres_url() -> str | None:
    return os.environ.get("NAER_TEST_DATABASE_URL") or None


@contextlib.contextmanager
def new_store(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated store: an SQLite file in ``folder``, or a schema of its own in the PostgreSQL
    test database (NAER_TEST_DATABASE_URL; `make check` provides one); dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    from naer.store.db import database_url, engine, in_schema
    from naer.store.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'store.sqlite'}"
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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store on SQLite and on PostgreSQL."""
    with new_store(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def api(store_url: str) -> Iterator[Any]:
    """The FHIR API over a fresh store, driven in-process (sending FHIR JSON, as a FHIR client does)."""
    from fastapi.testclient import TestClient

    from naer.api.app import create_app

    headers = signed_in(store_url, **{"Content-Type": "application/fhir+json"})
    with TestClient(create_app(store_url), headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def evaluated_region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The region at 1 %, every municipality at least 600 citizens (a municipality of a few dozen citizens
    has months without anyone aged 65 or more), 2015 to 2021, with the Samsø trial's effect planted and its
    truth measured: (data folder, views warehouse)."""
    from naer.evaluation.register import find
    from naer.evaluation.truth import measure, planted_change
    from naer.indicators.run import build_warehouse

    folder = tmp_path_factory.mktemp("evaluation")
    trial = find("samsoe-2019")
    request = SynthRequest(
        "region-midt", date(2015, 1, 1), date(2021, 12, 31), 1, folder / "region", scale=0.01, at_least=600,
        planted=planted_change(trial),
    )  # fmt: skip
    synthesize(request)
    measure(request, trial)
    build_warehouse(folder / "region", folder / "w.duckdb")
    return folder / "region", folder / "w.duckdb"
