"""Who is asking and why: every read, search and write of the store passes through ``check``.

This is the single place where access control decides (the access issue puts its policy here: care
relations, consent, purpose of use, and an AuditEvent for each decision). Until that lands, the policy
allows everything — deliberately, and only here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["read", "vread", "search", "history", "create", "update", "delete", "export", "import"]


@dataclass(frozen=True)
class RequestContext:
    """The asker (a Practitioner/PractitionerRole/Patient/Device reference or a system name), why they ask
    (a v3 PurposeOfUse code such as TREAT), and where the request came from."""

    actor: str = "system"
    purpose: str = "TREAT"
    origin: str = "internal"
    attributes: dict[str, str] = field(default_factory=dict)


Policy = Callable[[RequestContext, Action, str | None, str | None], None]


def allow_all(context: RequestContext, action: Action, resource_type: str | None, rid: str | None) -> None:
    """The policy until access control lands: every request is allowed."""


_policy: Policy = allow_all


def set_policy(policy: Policy) -> None:
    """Install the access-control policy (it raises naer.store.errors.Forbidden to refuse)."""
    global _policy
    _policy = policy


def check(context: RequestContext, action: Action, resource_type: str | None, rid: str | None = None) -> None:
    """Ask the policy; every store operation calls this before it touches data."""
    _policy(context, action, resource_type, rid)


SYSTEM = RequestContext()
