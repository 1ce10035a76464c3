"""``naer users``, ``naer token`` and ``naer audit``: accounts, tokens for API clients, and the audit log
(verify the hash chain; review break-the-glass accesses)."""

from __future__ import annotations

import getpass
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from naer.errors import UserError
from naer.store.db import database_url

users_app = typer.Typer(
    help="Accounts: who may sign in, in which role and organisation.", no_args_is_help=True
)
audit_app = typer.Typer(
    help="The audit log: verify its hash chain, review break-the-glass.", no_args_is_help=True
)
console = Console()
URL = Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")]


def _db(url: str | None) -> Any:
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    return engine(resolved)


def _password(generate: bool, prompt: str) -> str:
    if generate:
        return secrets.token_urlsafe(12)
    first = getpass.getpass(f"{prompt}: ")
    if first != getpass.getpass("Again: "):
        raise UserError("the two passwords differ")
    return first


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The account name (a user name, or a system client's id).")],
    role: Annotated[str, typer.Option(help="A role of the policy (src/naer/access/policy.yaml).")],
    display: Annotated[str, typer.Option(help="The person's or client's name, as the audit log shows it.")],
    organization: Annotated[
        str | None, typer.Option(help="Organization id (the unit the person works for).")
    ] = None,
    practitioner: Annotated[str | None, typer.Option(help="Practitioner id of the person.")] = None,
    practitioner_role: Annotated[str | None, typer.Option(help="PractitionerRole id.")] = None,
    patient: Annotated[str | None, typer.Option(help="The citizen's Patient id (role citizen).")] = None,
    scopes: Annotated[
        str | None, typer.Option(help="SMART scopes the account may hold (default by role).")
    ] = None,
    issuer: Annotated[
        str | None, typer.Option(help="An identity provider's issuer whose subject this is.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="The subject (sub) at that identity provider.")] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a random password and print it.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Sign-in only through the identity provider.")
    ] = False,
    url: URL = None,
) -> None:
    """Add an account. A password is asked for (or generated) unless --no-password."""
    from naer.access import accounts

    if (issuer is None) != (subject is None):
        raise UserError("--issuer and --subject go together")
    password = None if no_password else _password(generate, f"Password for {name}")
    made = accounts.add(
        _db(url), name, display, role, password, practitioner, practitioner_role, organization, patient,
        scopes, issuer, subject,
    )  # fmt: skip
    console.print(f"account {made.id} ({made.role}) added with scopes {made.scopes}")
    if generate and password:
        console.print(f"password: {password}", highlight=False)


@users_app.command("list")
def users_list(url: URL = None) -> None:
    """Every account, with its role, organisation and whether it is active."""
    from naer.access import accounts

    table = Table("account", "name", "role", "organisation", "practitioner / patient", "scopes", "active")
    for a in accounts.every(_db(url)):
        who = a.practitioner or (f"Patient/{a.patient}" if a.patient else "")
        table.add_row(
            a.id, a.display, a.role, a.organization or "", who, a.scopes, "yes" if a.active else "no"
        )
    console.print(table)


@users_app.command("remove")
def users_remove(name: str, url: URL = None) -> None:
    """Close an account: its tokens and sessions stop working at once (the account is kept for the log)."""
    from naer.access import accounts, sessions

    db = _db(url)
    accounts.remove(db, name)
    sessions.end_all(db, name)
    console.print(f"account {name} closed")


@users_app.command("passwd")
def users_passwd(
    name: str,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a random password and print it.")
    ] = False,
    url: URL = None,
) -> None:
    """Set an account's password (or a system client's secret); its sessions end."""
    from naer.access import accounts, sessions

    db = _db(url)
    password = _password(generate, f"New password for {name}")
    accounts.set_password(db, name, password)
    sessions.end_all(db, name)
    console.print(f"password of {name} changed")
    if generate:
        console.print(f"password: {password}", highlight=False)


@users_app.command("demo")
def users_demo(
    out: Annotated[
        Path | None, typer.Option(help="Where the passwords are kept (default DATA_DIR/demo-users.json).")
    ] = None,
    url: URL = None,
) -> None:
    """Make the demo users on the Samsø data in the store (once; later runs print them again). For a demo
    only: production has no default account or password."""
    from naer.access.demo import make_demo_users
    from naer.settings import get_settings

    path = out or get_settings().data_dir / "demo-users.json"
    if path.is_file():
        users = json.loads(path.read_text())
    else:
        users = make_demo_users(_db(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w") as written:
            json.dump(users, written, indent=1, ensure_ascii=False)
    table = Table("user", "password", "role", "who", title=f"Demo users (kept in {path}, mode 0600)")
    for user in users:
        table.add_row(user["name"], user["password"], user["role"], user["about"])
    Console(width=max(console.width, 150)).print(table)


def token_command(
    name: Annotated[str, typer.Argument(help="The account the token is for.")],
    scope: Annotated[
        str | None, typer.Option(help="SMART scopes (default: all the account may hold).")
    ] = None,
    minutes: Annotated[
        int | None, typer.Option(help="Minutes the token is valid (default NAER_TOKEN_MINUTES).")
    ] = None,
    patient: Annotated[str | None, typer.Option(help="A launch patient for patient/ scopes.")] = None,
    url: URL = None,
) -> None:
    """Print an access token Nær signs for an account (for API clients and scripts; Bearer header)."""
    from naer.access import accounts, tokens
    from naer.access.scopes import narrow

    account = accounts.get(_db(url), name)
    if account is None or not account.active:
        raise UserError(f"no active account {name!r} (naer users list)")
    if minutes is not None and not 1 <= minutes <= 24 * 60:
        raise UserError("--minutes is from 1 to 1440")
    granted = narrow(scope, account.scopes) if scope else account.scopes
    if not granted.strip():
        raise UserError(
            f"the account {name} may hold none of the scopes {scope!r} (it may: {account.scopes})"
        )
    extra = {"patient": patient} if patient else {}
    typer.echo(tokens.issue(name, granted, minutes, **extra))


@audit_app.command("verify")
def audit_verify(url: URL = None) -> None:
    """Walk the hash chain: a changed, removed, inserted or re-ordered entry is found and named."""
    from naer.access import audit

    db = _db(url)
    count, problems = audit.verify(db)
    seq, digest = audit.head(db)
    if problems:
        for problem in problems[:50]:
            console.print(f"[red]entry {problem.seq}[/]: {escape(problem.message)}", highlight=False)
        raise UserError(f"the audit log is broken in {len(problems)} places ({count:,} entries read)")
    console.print(f"the audit log is whole: {count:,} entries, head {seq} {digest}")


@audit_app.command("review")
def audit_review(
    grant: Annotated[str | None, typer.Argument(help="The break-the-glass access to decide on.")] = None,
    accept: Annotated[bool, typer.Option("--accept", help="The access was justified.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="The access was not justified.")] = False,
    note: Annotated[str, typer.Option(help="The reviewer's note.")] = "",
    reviewer: Annotated[str | None, typer.Option(help="The administrator account deciding.")] = None,
    every: Annotated[bool, typer.Option("--all", help="List reviewed accesses too.")] = False,
    url: URL = None,
) -> None:
    """List break-the-glass accesses waiting for review, or decide on one (--accept or --reject)."""
    from naer.access import accounts, audit, glass
    from naer.access.policy import policy

    db = _db(url)
    if grant is None:
        table = Table("access", "by", "citizen", "from", "to", "reason", "review")
        for g in glass.listed(db, None if every else "pending"):
            review = g.review if g.review == "pending" else f"{g.review} by {g.reviewer}"
            table.add_row(
                g.id, g.account, g.patient, f"{g.starts:%Y-%m-%d %H:%M}", f"{g.ends:%H:%M}", g.reason, review
            )
        console.print(table)
        return
    if accept == reject:
        raise UserError("decide with --accept or --reject")
    if reviewer is None:
        raise UserError("name the administrator deciding: --reviewer ACCOUNT")
    account = accounts.get(db, reviewer)
    if account is None or not account.active or not policy().roles[account.role].audit:
        raise UserError(f"{reviewer!r} is not an active administrator account")
    entry = audit.Entry(
        action="review",
        actor=account.id,
        who=f"Person/{account.id}",
        display=account.display,
        role=account.role,
        organization=account.organization,
        address="naer audit review",
    )
    done = glass.decide(db, grant, account.id, entry, "accepted" if accept else "rejected", note)
    console.print(f"{done.id}: {done.review} by {done.reviewer}")
