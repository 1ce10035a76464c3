"""Who is asking, for every request of the API and the pages: a Bearer token (Nær's own, or the region's
identity provider's) or the web pages' session cookie, turned into an AccessContext for the store.

No credentials, or credentials that fail any check, answer 401 with ``WWW-Authenticate: Bearer`` and a
message that says only that sign-in is needed (the reason goes to the audit log, not to the client).
The account behind a token is looked up on every request, so closing an account stops its tokens at
once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from starlette.requests import Request

from naer.access import accounts, audit, sessions, tokens
from naer.access.accounts import Account
from naer.access.context import AccessContext, resolve
from naer.access.principal import Principal
from naer.access.scopes import parse_scopes
from naer.access.throttle import Throttle
from naer.settings import get_settings
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Unauthorized
from naer.store.tables import INDEX_TABLES

SESSION_COOKIE = "naer_session"
CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"
CPR_CLAIMS = ("cpr", "dk:gov:saml:attribute:CprNumberIdentifier")
CITIZEN_SCOPES = "patient/*.rs"


def address_of(request: Request) -> str:
    return (request.client.host if request.client else "unknown")[:64]


class Auth:
    """Authentication for one application; ``enabled=False`` (benchmarks only) makes every request the
    platform itself."""

    def __init__(self, db: Engine, enabled: bool = True) -> None:
        self.db = db
        self.enabled = enabled
        self.writer: audit.Writer | None = audit.Writer(db, resolve) if enabled else None
        self.throttle = Throttle()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()

    # -- the request's asker --------------------------------------------------------------------------

    def context(self, request: Request) -> RequestContext:
        """The store's context for this request (401 without valid credentials)."""
        if not self.enabled:
            return SYSTEM
        found = request.scope.get("naer.context")
        if found is None:
            found = self.access(self.principal(request))
            request.scope["naer.context"] = found
        return found

    def access(self, principal: Principal) -> AccessContext:
        return AccessContext(principal, self.db, self.writer)

    def optional(self, request: Request) -> Principal | None:
        """The signed-in asker of a page, or None (the page then asks to sign in)."""
        try:
            context = self.context(request)
        except Unauthorized:
            return None
        return context.principal if isinstance(context, AccessContext) else None

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        address = address_of(request)
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                self.refuse(address, "the Authorization header is not a Bearer token")
            return self._bearer(token.strip(), address)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = sessions.lookup(self.db, cookie)
            if found is None:
                self.refuse(address, "the session has ended or is not known")
            account, session = found  # type: ignore[misc]
            return accounts.principal(self.db, account, None, address, session=session)
        self.refuse(address, "no credentials")
        raise AssertionError  # refuse raises

    def _bearer(self, token: str, address: str) -> Principal:
        try:
            claims = tokens.verify(token)
        except tokens.InvalidToken as error:
            self.refuse(address, f"token refused: {error}")
            raise AssertionError from None
        settings = get_settings()
        account: Account | None
        if claims.issuer == settings.issuer:
            account = accounts.held(self.db, claims.subject)
        else:
            account = accounts.by_subject(self.db, claims.issuer, claims.subject)
        if account is None and claims.issuer != settings.issuer:
            citizen = self._citizen(claims.values, address)
            if citizen is not None:
                return citizen
        if account is None or not account.active:
            self.refuse(address, f"no active account for the token's subject {claims.subject[:64]!r}")
            raise AssertionError
        launch = claims.values.get("patient")
        return accounts.principal(
            self.db,
            account,
            claims.scope,
            address,
            patient=launch if isinstance(launch, str) and len(launch) <= 64 else None,
        )

    def _citizen(self, values: dict[str, Any], address: str) -> Principal | None:
        """A citizen signed in at the region's identity provider (MitID) and known by CPR number: the
        citizen's own records only, with no account needed."""
        number = next((values[c] for c in CPR_CLAIMS if isinstance(values.get(c), str)), None)
        if number is None:
            return None
        digits = number.replace("-", "")
        if not (len(digits) == 10 and digits.isdigit()):
            return None
        token = INDEX_TABLES["token"]
        with self.db.connect() as con:
            row = con.execute(
                select(token.c.id).where(
                    token.c.resource_type == "Patient",
                    token.c.param == "identifier",
                    token.c.system == CPR_SYSTEM,
                    token.c.code == digits,
                )
            ).first()
        if row is None:
            return None
        name = str(values.get("name") or "borger")[:200]
        return Principal(
            account=f"cpr:{row.id}"[:64],
            display=name,
            role="citizen",
            scopes=parse_scopes(CITIZEN_SCOPES),
            patient=str(row.id),
            address=address,
        )

    def refuse(self, address: str, why: str) -> None:
        """401, audited with the reason; the client is told only that it must sign in."""
        self.record_anonymous("denied", address, f"authentication failed: {why}")
        raise Unauthorized(
            "sign-in required: send a valid Bearer token (see /fhir/.well-known/smart-configuration)"
        )

    def record_anonymous(self, action: str, address: str, detail: str, actor: str = "anonymous") -> None:
        if self.writer is None:
            return
        entry = audit.Entry(
            action=action,
            actor=actor[:64],
            who="Device/unknown",
            display=actor[:200],
            role="anonymous",
            organization=None,
            address=address,
            outcome="serious" if action == "denied" else "minor",
            detail=detail[:2000],
        )
        self.writer.put(audit.Pending(entry, [], None))
