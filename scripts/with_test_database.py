"""Run a command (the test suite) with a reachable PostgreSQL in NAER_TEST_DATABASE_URL.

If the URL in NAER_TEST_DATABASE_URL answers, it is used as is. If not, a throwaway cluster is made with
the installed PostgreSQL binaries (initdb, pg_ctl) in a temporary folder, on a free loopback port, with
trust authentication and a database ``test``; it is stopped and removed afterwards. If there are no such
binaries, this says what is missing and fails.

    python scripts/with_test_database.py pytest -q
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(versions[0]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    command = sys.argv[1:]
    url = os.environ.get("NAER_TEST_DATABASE_URL") or DEFAULT
    if reachable(url):
        return subprocess.call(command, env={**os.environ, "NAER_TEST_DATABASE_URL": url})
    bin_dir = binaries()
    if bin_dir is None:
        print(
            f"PostgreSQL at {url} does not answer, and there are no PostgreSQL server binaries (initdb, "
            "pg_ctl) to start a throwaway one: install them (Debian: apt-get install postgresql) or set "
            "NAER_TEST_DATABASE_URL to a reachable database.",
            file=sys.stderr,
        )
        return 2
    print(
        f"PostgreSQL at {url} does not answer; starting a throwaway cluster from {bin_dir}", file=sys.stderr
    )
    folder = Path(tempfile.mkdtemp(prefix="naer-pg-"))
    port = free_port()
    user = "postgres"
    # initdb refuses to run as root; run the server as the owner of a fresh folder when we are root.
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
        shutil.chown(folder, "postgres")
    data = folder / "data"
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-o",
                f"-p {port} -k {folder} -h 127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        url = f"postgresql://{user}@127.0.0.1:{port}/postgres"
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE DATABASE test")
        url = f"postgresql://{user}@127.0.0.1:{port}/test"
        return subprocess.call(command, env={**os.environ, "NAER_TEST_DATABASE_URL": url})
    except subprocess.CalledProcessError as error:
        print(f"could not start PostgreSQL: {error.stderr.decode(errors='replace')}", file=sys.stderr)
        return 2
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
