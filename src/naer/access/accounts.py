"""Accounts: the people and system clients who may sign in, each bound to a role of the policy and to
who they are in FHIR terms (Practitioner + PractitionerRole + Organization, or the citizen's Patient).

Passwords and client secrets are kept as Argon2id hashes (argon2-cffi). Checking an unknown account
costs the same as checking a known one (a hash is checked either way), so the answer and its timing do
not tell whether an account exists.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update

from naer import clock
from naer.access.policy import policy
from naer.access.principal import Principal
from naer.access.scopes import ALL, parse_scopes
from naer.access.tables import accounts
from naer.errors import UserError
from naer.store.tables import resources

HASHER = PasswordHasher()  # Argon2id, argon2-cffi's defaults (RFC 9106's second recommended setting)
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))
NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_PASSWORD = 12
DEFAULT_SCOPES = {"system": "system/*.cruds", "citizen": "patient/*.rs"}


@dataclass(frozen=True)
class Account:
    id: str
    display: str
    role: str
    practitioner: str | None
    practitioner_role: str | None
    organization: str | None
    patient: str | None
    scopes: str
    active: bool


def _account(row: Any) -> Account:
    return Account(
        row.id,
        row.display,
        row.role,
        row.practitioner,
        row.practitioner_role,
        row.organization,
        row.patient,
        row.scopes,
        bool(row.active),
    )


def add(
    db: Engine,
    name: str,
    display: str,
    role: str,
    password: str | None,
    practitioner: str | None = None,
    practitioner_role: str | None = None,
    organization: str | None = None,
    patient: str | None = None,
    scopes: str | None = None,
    issuer: str | None = None,
    subject: str | None = None,
) -> Account:
    """A new account (UserError for a taken name, an unknown role or a short password)."""
    if not NAME.match(name):
        raise UserError(f"{name!r} is not an account name (2-64 of a-z, 0-9, '.', '_', '@', '-')")
    if role not in policy().roles:
        raise UserError(f"unknown role {role!r}; the policy has {', '.join(policy().roles)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    if role == "citizen" and not patient:
        raise UserError("a citizen's account names the citizen's Patient (--patient)")
    chosen = scopes or DEFAULT_SCOPES.get(role, ALL)
    parse_scopes(chosen)  # UserError for a malformed scope
    with db.begin() as con:
        if con.execute(select(accounts.c.id).where(accounts.c.id == name)).first():
            raise UserError(f"the account {name!r} exists already")
        con.execute(
            insert(accounts).values(
                id=name,
                display=display,
                role=role,
                password_hash=HASHER.hash(password) if password else None,
                practitioner=practitioner,
                practitioner_role=practitioner_role,
                organization=organization,
                patient=patient,
                issuer=issuer,
                subject=subject,
                scopes=chosen,
                active=True,
                created=clock.now(),
            )
        )
    found = get(db, name)
    assert found is not None
    return found


HELD_SECONDS = 2.0
"""How long a server process keeps an account it looked up for a token (the process that closes an
account forgets it at once; every other process within this bound)."""

_held: dict[tuple[int, str], tuple[float, Account | None]] = {}
_held_lock = threading.Lock()


def held(db: Engine, name: str) -> Account | None:
    """The account, as looked up at most HELD_SECONDS ago: a request asks the database once, not every
    request of a client that sends hundreds a second."""
    key = (id(db), name)
    now = time.monotonic()
    found = _held.get(key)
    if found is not None and now - found[0] < HELD_SECONDS:
        return found[1]
    account = get(db, name)
    with _held_lock:
        if len(_held) > 4096:
            _held.clear()
        _held[key] = (now, account)
    return account


def forget(name: str) -> None:
    """Drop a held account (it changed): the next request looks it up again."""
    with _held_lock:
        for key in [k for k in _held if k[1] == name]:
            del _held[key]


def get(db: Engine, name: str) -> Account | None:
    with db.connect() as con:
        row = con.execute(select(accounts).where(accounts.c.id == name)).first()
    return _account(row) if row else None


def by_subject(db: Engine, issuer: str, subject: str) -> Account | None:
    with db.connect() as con:
        row = con.execute(
            select(accounts).where(accounts.c.issuer == issuer, accounts.c.subject == subject)
        ).first()
    return _account(row) if row else None


def every(db: Engine) -> list[Account]:
    with db.connect() as con:
        return [_account(r) for r in con.execute(select(accounts).order_by(accounts.c.id))]


def set_password(db: Engine, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    with db.begin() as con:
        done = con.execute(
            update(accounts).where(accounts.c.id == name).values(password_hash=HASHER.hash(password))
        )
    if done.rowcount != 1:
        raise UserError(f"no account {name!r}")


def remove(db: Engine, name: str) -> None:
    """Close an account: its tokens and sessions stop working at once on this process and within
    HELD_SECONDS on every other (each looks an account up again after that)."""
    with db.begin() as con:
        done = con.execute(update(accounts).where(accounts.c.id == name).values(active=False))
    forget(name)
    if done.rowcount != 1:
        raise UserError(f"no account {name!r}")


def check_password(db: Engine, name: str, password: str) -> Account | None:
    """The active account if the password is right; None otherwise, in the same time either way."""
    with db.connect() as con:
        row = con.execute(select(accounts).where(accounts.c.id == name[:64])).first()
    stored = row.password_hash if row is not None and row.active and row.password_hash else _DUMMY
    try:
        HASHER.verify(stored, password[:1024])
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.active or not row.password_hash:
        return None
    return _account(row)


_chains: dict[tuple[int, str], tuple[float, tuple[str, ...]]] = {}


def ancestors(db: Engine, organization: str | None) -> tuple[str, ...]:
    """The organisations above ``organization`` (Organization.partOf, upwards; kept a minute)."""
    if not organization:
        return ()
    key = (id(db), organization)
    cached = _chains.get(key)
    if cached and time.monotonic() - cached[0] < 60:
        return cached[1]
    found: list[str] = []
    current = organization
    with db.connect() as con:
        for _ in range(12):
            row = con.execute(
                select(resources.c.content).where(
                    resources.c.resource_type == "Organization",
                    resources.c.id == current,
                    resources.c.deleted.is_(False),
                )
            ).first()
            if row is None:
                break
            ref = (orjson.loads(row.content).get("partOf") or {}).get("reference", "")
            if not isinstance(ref, str) or not ref.startswith("Organization/"):
                break
            current = ref.split("/", 1)[1]
            if current in found or current == organization:
                break
            found.append(current)
    _chains[key] = (time.monotonic(), tuple(found))
    return tuple(found)


def principal(
    db: Engine,
    account: Account,
    scope: str | None,
    address: str,
    patient: str | None = None,
    purpose: str | None = None,
    session: str | None = None,
) -> Principal:
    """The asker an account and a token's scopes make (the token's scopes narrowed to the account's)."""
    from naer.access.scopes import narrow

    granted = narrow(scope, account.scopes) if scope is not None else account.scopes
    return Principal(
        account=account.id,
        display=account.display,
        role=account.role,
        scopes=parse_scopes(granted),
        practitioner=account.practitioner,
        practitioner_role=account.practitioner_role,
        organization=account.organization,
        ancestors=ancestors(db, account.organization),
        patient=account.patient if account.role == "citizen" else patient,
        address=address,
        purpose=purpose,
        session=session,
    )
