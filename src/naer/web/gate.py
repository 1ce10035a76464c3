"""Every page behind sign-in: the dashboard (population figures, for roles with ``dashboard`` in the
policy) and the worklists (their own checks in risk.py) answer only a signed-in person; anyone else is
sent to /login. Static files, the sign-in page, the FHIR API (its own 401) and the OpenAPI document are
outside. A plain ASGI middleware, so the API's answers pay nothing for it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from naer.access.policy import policy
from naer.web import i18n, session
from naer.web.i18n import mark as _

OPEN = ("/fhir", "/workflow", "/oauth", "/static", "/login", "/logout", "/docs", "/openapi.json", "/favicon")
DASHBOARD = ("/indicators",)
FOR_WHOM = _("The population figures are for planners, administrators and health professionals.")


def has_worklists(request: Request) -> bool:
    """Whether the signed-in person's role has a worklist (the menu links to /risk only then)."""
    p = session.principal(request)
    return p is not None and policy().roles[p.role].worklist is not None


class SignInGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OPEN):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        p = session.principal(request)
        if p is None:
            target = path + (f"?{request.url.query}" if request.url.query else "")
            await RedirectResponse(f"/login?next={quote(target, safe='')}", 303)(scope, receive, send)
            return
        if path == "/" or path.startswith(DASHBOARD):
            if p.role == "citizen" and path == "/":
                await RedirectResponse("/min-log", 303)(scope, receive, send)
                return
            if not policy().roles[p.role].dashboard:
                from naer.web.signin import refuse  # (here: signin's pages sit behind this gate)

                t = i18n.gettext_for(session.language(request))
                message = t(FOR_WHOM)
                await refuse(request, 403, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
