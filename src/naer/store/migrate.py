"""Schema changes go through Alembic; ``naer db upgrade`` and ``naer serve`` call ``upgrade``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from naer.errors import UserError
from naer.store import relations
from naer.store.db import engine
from naer.store.search import index as search_index

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine(url)
    return config


def upgrade(url: str, on_batch: Callable[[int], None] | None = None) -> str:
    """Bring the database at ``url`` to the newest schema, and its search index up to date with the
    search definitions (``on_batch`` hears of each batch re-indexed); return the revision it is at."""
    try:
        with engine(url).connect():
            pass
    except OperationalError as error:
        raise UserError(f"cannot reach the store database: {str(error.orig).splitlines()[0]}") from None
    command.upgrade(_config(url), "head")
    with engine(url).connect() as con:
        needs_index = search_index.stale(con)
    if needs_index:
        search_index.rebuild(engine(url), on_batch)  # (derives the care relations too)
    else:
        with engine(url).begin() as con:
            if relations.stale(con):  # a changed policy: its relations derived again from the index
                relations.rebuild(con)
    return current(url)


def current(url: str) -> str:
    with engine(url).connect() as con:
        if not inspect(con).has_table("alembic_version"):
            return "none"
        row = con.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else "none"
