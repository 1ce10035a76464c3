"""Schema changes go through Alembic; ``naer db upgrade`` and ``naer serve`` call ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from naer.errors import UserError
from naer.store.db import engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine(url)
    return config


def upgrade(url: str) -> str:
    """Bring the database at ``url`` to the newest schema; return the revision it is at."""
    try:
        with engine(url).connect():
            pass
    except OperationalError as error:
        raise UserError(f"cannot reach the store database: {str(error.orig).splitlines()[0]}") from None
    command.upgrade(_config(url), "head")
    return current(url)


def current(url: str) -> str:
    with engine(url).connect() as con:
        if not inspect(con).has_table("alembic_version"):
            return "none"
        row = con.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else "none"
