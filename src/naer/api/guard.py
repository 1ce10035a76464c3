"""What every request passes before any route sees it: the host it names, the kind of body it sends,
and no NUL character in its address; and the security headers every answer carries.

- Host: only the names in ``NAER_ALLOWED_HOSTS`` (default the loopback names) are served, so a page on
  another site cannot reach this server through a DNS name it controls (DNS rebinding), and the host a
  client names is safe to repeat in ``Location``, paging links and export manifests.
- Content type: a write must say it is FHIR JSON (``application/fhir+json`` or ``application/json``; a
  form for ``_search``, NDJSON for ``$import``); the workflow endpoints (``/workflow``) take JSON too.
  A browser sends ``text/plain`` across sites without asking (no CORS preflight); refusing it with 415
  stops cross-site writes.
- NUL: PostgreSQL cannot store it and no FHIR value holds it; refused in the path and the query.

The policy allows no inline script and no other origin; it allows ``eval`` because Vega compiles its
chart expressions with the Function constructor (vega-interpreter would lift that; not yet done).

Written as a plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so that streaming answers and
the event loop's reads by id pay nothing but a few comparisons.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naer.api.outcome import outcome

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FHIR_BODIES = {"application/fhir+json", "application/json"}
OTHER_BODIES = {
    "/_search": {"application/x-www-form-urlencoded"},
    "/$import": {"application/fhir+ndjson", "application/ndjson", "application/x-ndjson"},
    # MedCom messages come in FHIR JSON or FHIR XML (and are answered in either: api/messaging.py)
    "/$process-message": {
        "application/fhir+json",
        "application/json",
        "application/fhir+xml",
        "application/xml",
    },
}
XML_ANSWERED = ("/fhir/$process-message",)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
]


def _host_name(host: str) -> str:
    """The name of a Host header without its port (``[::1]:8000`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


JSON_FORMATS = {"json", "application/json", "application/fhir+json", "text/json"}
ANY_JSON = ("json", "*/*", "application/*")


def _format(query: bytes, accept: str) -> str | None:
    """The format a request asks for when it is not JSON (``_format=xml``, or an Accept header that
    admits no JSON), else None."""
    if b"_format" in query:
        for key, value in parse_qsl(query.decode("latin-1")):
            if key == "_format" and value.split(";")[0].strip().lower() not in JSON_FORMATS:
                return value
    if accept and not any(kind in accept for kind in ANY_JSON) and "xml" in accept:
        return accept
    return None


def _accepted(path: str, method: str) -> set[str] | None:
    """The body types a write to ``path`` may send (None: any, for a DELETE or a write outside the API)."""
    if method == "DELETE" or not path.startswith(("/fhir", "/workflow")):
        return None
    for ending, kinds in OTHER_BODIES.items():
        if path.endswith(ending):
            return kinds
    return FHIR_BODIES


class Guard:
    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.strip().lower() for h in allowed_hosts if h.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is not None:
            await problem(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    def _problem(self, scope: Scope) -> Any:
        headers = Headers(scope=scope)
        host = _host_name(headers.get("host", "")).lower()
        if "*" not in self.allowed and host not in self.allowed:
            return outcome(400, "security", f"this server does not answer to the host name {host!r}")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if b"\x00" in scope.get("query_string", b"") or b"%00" in raw_path or "\x00" in scope["path"]:
            return outcome(400, "invalid", "the address holds a NUL character, which no FHIR value may hold")
        if b"%00" in scope.get("query_string", b""):
            return outcome(400, "invalid", "the query holds a NUL character, which no FHIR value may hold")
        wanted = _format(scope.get("query_string", b""), headers.get("accept", ""))
        if wanted is not None and scope["path"].startswith("/fhir") and scope["path"] not in XML_ANSWERED:
            return outcome(406, "not-supported", f"this server answers in FHIR JSON only, not {wanted}")
        method = scope["method"]
        if method in WRITE_METHODS:
            kinds = _accepted(scope["path"], method)
            given = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            if kinds is not None and (given or has_body) and given not in kinds:
                return outcome(
                    415,
                    "not-supported",
                    f"a {method} to {scope['path']} sends {' or '.join(sorted(kinds))}, "
                    f"not {given or 'no type'}",
                )
        return None

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return sending
