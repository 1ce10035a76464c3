"""The FHIR API with every access audited but nobody signed in and no care relation looked up, for
bench/api_bench.py only (``--access audit``): the floor under any access control that audits every
access, as issue 18 and IHE's Basic Audit Log Patterns ask.

It is ``naer serve``'s own application (access on: the same store calls, the same audit writer, the same
AuditEvents, hash chain and batched commits; a read's entry, one entry per citizen a search touched, a
write's entry in the write's transaction), with one thing taken away: the asker is not read from a token
or a session but fixed as a system client (``system/*.cruds``, the policy's role ``system``, which sees
every record, so that no relation is looked up either). What is left is the least that auditing every
access costs; a GP's figure above it is the policy's. Never installed; ``naer serve`` always signs in.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request

from naer.access.principal import Principal
from naer.access.scopes import parse_scopes
from naer.api import auth
from naer.api.app import create_app

ASKER = Principal(
    account="bench-audit-floor",
    display="Benchmark: audit only",
    role="system",
    scopes=parse_scopes("system/*.cruds"),
)


def _fixed(self: auth.Auth, request: Request) -> Principal:
    """Every request is the same system client: no token, session or account to look up."""
    return replace(ASKER, address=auth.address_of(request))


auth.Auth.principal = _fixed  # type: ignore[method-assign]
app = create_app(migrate=False, access=True)
