"""The FHIR API with access control off but an audit entry for every read, for bench/api_bench.py only
(``--access audit``): the floor under any access control that audits each read, as issue 18 and IHE's
Basic Audit Log Patterns ask. Each successful ``GET /fhir/Type/id`` is recorded through the real audit
writer (the same AuditEvent, hash chain and batched commits), as a system client would be, but with no
sign-in, no policy and no lookup of the citizen or the relation: what is left is the least that auditing
costs. Never installed; ``naer serve`` always has access on."""

from __future__ import annotations

from typing import Any

from naer.access import audit
from naer.api.app import create_app

app = create_app(migrate=False, access=False)
writer = audit.Writer(app.state.db, lambda con, batch: [p.entry for p in batch])
app.router.on_shutdown.append(writer.close)


class AuditEveryRead:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        parts = scope.get("path", "").split("/") if scope["type"] == "http" else []
        if scope.get("method") != "GET" or len(parts) != 4 or parts[1] != "fhir":
            await self.inner(scope, receive, send)
            return

        async def sent(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                kind, rid = parts[2], parts[3]
                entry = audit.Entry(
                    action="read", actor="bench", who="Device/bench", display="bench", role="system",
                    organization=None, address=(scope.get("client") or ("", 0))[0],
                    patient=rid if kind == "Patient" else None, what=[f"{kind}/{rid}"], relation="all",
                )  # fmt: skip
                writer.put(audit.Pending(entry, [], None))
            await send(message)

        await self.inner(scope, receive, sent)


app.add_middleware(AuditEveryRead)
