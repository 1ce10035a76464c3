"""What every page needs to know of the person looking at it: who is signed in (the same check as the
API: api/auth.py), the language they chose, and the CSRF token of their forms.

CSRF: a double-submit token. A random value in a cookie (``naer_csrf``, SameSite=Strict) and the same
value in a hidden field of every form; a POST whose field does not equal the cookie is refused. A page on
another site can neither read the cookie nor set it, so it cannot fill in the field; the session cookie is
SameSite=Lax besides, so a cross-site POST does not carry it at all.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from naer.access.principal import Principal

CSRF_COOKIE = "naer_csrf"
LANG_COOKIE = "naer_lang"
MAX_FORM = 16_384


def principal(request: Request) -> Principal | None:
    """The signed-in person, or None (no session, or the app runs without access control). Found once
    per request (the gate, the page and its menu all ask; each answer would cost a session lookup)."""
    if "naer.principal" in request.scope:
        return request.scope["naer.principal"]  # type: ignore[no-any-return]
    auth = getattr(request.app.state, "auth", None)
    found = auth.optional(request) if auth is not None else None
    request.scope["naer.principal"] = found
    return found


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def csrf_token(request: Request) -> str:
    """The form token of this browser (made now when it has none; ``remember_csrf`` sets the cookie)."""
    found = request.cookies.get(CSRF_COOKIE, "")
    if len(found) == 43 and found.replace("-", "").replace("_", "").isalnum():
        return found
    made = request.scope.get("naer.csrf")
    if made is None:
        made = secrets.token_urlsafe(32)
        request.scope["naer.csrf"] = made
    return str(made)


def remember_csrf(request: Request, response: Response) -> Response:
    made = request.scope.get("naer.csrf")
    if made is not None:
        response.set_cookie(
            CSRF_COOKIE, made, httponly=True, samesite="strict", secure=secure(request), path="/"
        )
    return response


async def form(request: Request, limit: int = MAX_FORM) -> dict[str, str] | None:
    """The POSTed form if its CSRF field matches the cookie, else None (the caller answers 403). A form
    longer than ``limit`` bytes is None too, with ``request.state.form_too_long`` set (413)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            request.state.form_too_long = True
            return None
    try:
        values = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        return None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = values.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
        return None
    return values


def language(request: Request) -> str:
    """Danish unless English was chosen (``?lang=en``, remembered in a cookie)."""
    asked = request.query_params.get("lang")
    if asked in ("da", "en"):
        return asked
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "da"


def remember_language(request: Request, response: Response) -> Response:
    asked = request.query_params.get("lang")
    if asked in ("da", "en"):
        response.set_cookie(LANG_COOKIE, asked, samesite="lax", secure=secure(request), max_age=31_536_000)
    return response


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //other.example or a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value


def who(p: Principal | None) -> dict[str, Any] | None:
    """What the page header shows of the signed-in person."""
    if p is None:
        return None
    from naer.access.policy import policy

    role = policy().roles[p.role]
    clinician = role.records == "relations"  # the roles that work with citizens
    return {"name": p.display, "role": p.role, "organization": p.organization, "account": p.account,
            "inbox": clinician, "figures": role.dashboard,
            "competences": clinician or bool(role.competences)}  # fmt: skip
