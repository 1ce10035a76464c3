"""``POST /fhir/$import``: bulk load of an NDJSON body (``application/fhir+ndjson``), all or nothing.

The body is streamed to a file in the data folder (never held in memory), then loaded as ``naer load``
loads a file: validated in worker processes, written in one transaction, ids kept. Nær's own operation —
FHIR R4 defines no import; the Bulk Data import proposals pull files from URLs, which a server without
outside network cannot do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naer.api.outcome import FhirResponse, outcome
from naer.settings import get_settings
from naer.store.bulk import LoadError, load
from naer.store.context import RequestContext
from naer.store.errors import Invalid, TooLarge

NDJSON = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")


async def _spool(request: Request, folder: Path) -> Path:
    limit = get_settings().max_import_mb * 1024 * 1024
    size = 0
    with tempfile.NamedTemporaryFile("wb", dir=folder, suffix=".ndjson", delete=False) as handle:
        path = Path(handle.name)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"the import is larger than the limit of {limit:,} bytes (NAER_MAX_IMPORT_MB)"
                    )
                handle.write(chunk)
        except BaseException:
            handle.close()
            path.unlink(missing_ok=True)
            raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise Invalid("the import has no body; send FHIR resources as NDJSON, one per line")
    return path


def add_import_route(app: FastAPI, db: Engine, context: Callable[[Request], RequestContext]) -> None:
    @app.post("/fhir/$import")
    async def bulk_import(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in NDJSON:
            raise Invalid(f"$import takes an NDJSON body ({NDJSON[0]}), not {kind or 'no content type'}")
        asker = context(request)
        asker.permit("import", None)
        folder = get_settings().data_dir.resolve() / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        path = await _spool(request, folder)
        try:
            result = await run_in_threadpool(load, db, asker, path)
        except LoadError as error:
            raise Invalid(str(error).replace(str(path), "the request body")) from None
        finally:
            path.unlink(missing_ok=True)
        counts = ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.counts.items()))
        return outcome(200, "informational", f"loaded {result.total:,} resources ({counts})")


DEFINITION = {
    "resourceType": "OperationDefinition",
    "id": "naer-import",
    "name": "NaerImport",
    "title": "Bulk import of an NDJSON body",
    "status": "active",
    "kind": "operation",
    "code": "import",
    "system": True,
    "type": False,
    "instance": False,
    "description": (
        "POST /fhir/$import with Content-Type application/fhir+ndjson: every line is a FHIR R4 resource "
        "with an id. All are validated and loaded in one transaction (ids kept; a stored id gets a new "
        "version), or none is: the OperationOutcome names the first bad line."
    ),
    "parameter": [
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "OperationOutcome"},
    ],
}


def add_import_definition_route(app: FastAPI) -> None:
    @app.get("/fhir/OperationDefinition/naer-import")
    def import_definition() -> Response:
        return FhirResponse(DEFINITION)
