"""Open the store's database: PostgreSQL when ``NAER_DATABASE_URL`` says so, else an SQLite file."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, event

from naer.errors import UserError
from naer.settings import get_settings


def database_url(url: str | None = None) -> str:
    """The SQLAlchemy URL of the store: the one given, ``NAER_DATABASE_URL``, or ``DATA_DIR/store.sqlite``."""
    settings = get_settings()
    url = url or settings.database_url
    if not url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(settings.data_dir / 'store.sqlite').resolve()}"
    # A plain postgresql:// URL (as libpq and psql take it) means psycopg 3.
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    if not url.startswith(("postgresql+psycopg://", "sqlite:")):
        raise UserError(f"unsupported database URL {url!r}: use postgresql://... or sqlite:///FILE")
    return url


def in_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections work in ``schema`` (tests and benchmarks get one each)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@cache
def engine(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the life of the process."""
    if url.startswith("sqlite"):
        made = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(made, "connect", _sqlite_pragmas)
        return made
    _long_queries_cached()
    # No pre-ping (a round trip per request); connections are recycled hourly instead. Last in, first out:
    # the few connections a steady load needs stay warm, with their prepared statements.
    # No JIT: the access policy's subqueries make PostgreSQL estimate costs in the millions, past its JIT
    # threshold, and compiling the plan then took 1.35 s of a GP's 1.6 s export query (a read or search
    # of a few rows gains nothing from JIT either). Measured in docs/performance.md.
    made = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=3600, pool_use_lifo=True)
    event.listen(made, "connect", _no_jit)
    return made


def _no_jit(dbapi_connection: Any, _record: Any) -> None:
    """``SET jit = off`` for the life of a new connection (outside a transaction, so that the pool's
    rollback of a returned connection cannot undo it)."""
    was = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET jit = off")
    dbapi_connection.autocommit = was


def _long_queries_cached() -> None:
    """psycopg keeps the conversion of a query to PostgreSQL's form only for queries under 4,096 characters
    and 50 parameters; a read under the access policy is about 10,000 characters with 100 parameters, and
    converting it again cost about 1 ms of every request. These limits are module settings of psycopg
    (``psycopg._queries``, pinned in constraints.txt); the cache itself stays psycopg's (an LRU of 128)."""
    from psycopg import _queries

    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 65_536)
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 1_024)


def is_postgres(e: Engine) -> bool:
    return e.dialect.name == "postgresql"
