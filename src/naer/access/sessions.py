"""Sign-in sessions of the web pages: a random secret in an HttpOnly cookie, kept in the database only as
its SHA-256 (a copy of the table opens no session). A new session is made at every sign-in (so a session
id planted before sign-in is worth nothing: no session fixation) and ended at sign-out; every request
looks it and its account up, so a closed account or an ended session stops at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update

from naer import clock
from naer.access.accounts import Account, get
from naer.access.tables import sessions


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(db: Engine, account: str, address: str, hours: int) -> str:
    """A new session for ``account``; the secret goes into the cookie, its hash into the table."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    with db.begin() as con:
        con.execute(
            insert(sessions).values(
                id=_key(secret),
                account=account,
                created=now,
                expires=now + timedelta(hours=hours),
                address=address[:64],
            )
        )
    return secret


def lookup(db: Engine, secret: str) -> tuple[Account, str] | None:
    """The account of a running session, and the session's id; None when it ended, expired or is not one."""
    if not secret or len(secret) > 128:
        return None
    key = _key(secret)
    with db.connect() as con:
        row = con.execute(
            select(sessions.c.account, sessions.c.expires, sessions.c.ended).where(sessions.c.id == key)
        ).first()
    if row is None or row.ended is not None:
        return None
    expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=clock.now().tzinfo)
    if expires <= clock.now():
        return None
    account = get(db, row.account)
    if account is None or not account.active:
        return None
    return account, key[:16]


def end(db: Engine, secret: str) -> None:
    with db.begin() as con:
        con.execute(update(sessions).where(sessions.c.id == _key(secret)).values(ended=clock.now()))


def end_all(db: Engine, account: str) -> None:
    """End every session of an account (its password changed, or it was closed)."""
    with db.begin() as con:
        con.execute(
            update(sessions)
            .where(sessions.c.account == account, sessions.c.ended.is_(None))
            .values(ended=clock.now())
        )
