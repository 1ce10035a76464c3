"""FHIR Bulk Data ``$export`` at system, Patient and Group level: the asynchronous kick-off, status and
file pattern. Patient level exports every patient's compartment; Group level the compartments of the
Group's member patients.

A kick-off starts a job in a background thread that streams the store into ``DATA_DIR/exports/JOB``;
the status URL answers 202 while it runs and then the manifest. The job's state lives in that folder
(``status.json``), so any server process sharing the data folder can answer for it.

The files hold citizens' records: the folders are private to the server's user (0700, files 0600), a
job expires ``NAER_EXPORT_TTL`` hours after it started (its files are deleted when anyone next asks for
it or starts an export), and only the asker who started a job may read its status and files or delete
it.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.responses import FileResponse, Response

from naer.api.outcome import FhirResponse, outcome
from naer.api.params import instant_param
from naer.fhir.validate import is_resource_type
from naer.settings import get_settings
from naer.store.bulk import export
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid, NotFound, NotSupported
from naer.store.resources import instant, now, read
from naer.store.search.extract import parse_reference

NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


def _jobs() -> Path:
    folder = get_settings().data_dir.resolve() / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def _private(folder: Path) -> None:
    """Only the server's user may read what an export wrote."""
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def _expired(status: dict[str, Any]) -> bool:
    started = datetime.fromisoformat(status["transactionTime"].replace("Z", "+00:00"))
    return now() - started > timedelta(hours=get_settings().export_ttl)


def _sweep() -> None:
    """Delete the jobs whose time is up (asked at every kick-off, so old exports do not pile up)."""
    for folder in _jobs().iterdir():
        try:
            status = orjson.loads((folder / "status.json").read_bytes())
            if status["state"] != "running" and _expired(status):
                shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError, KeyError):
            continue


def _status_file(job: str) -> Path:
    if not job.replace("-", "").isalnum():
        raise NotFound(f"no export job {job!r}")
    return _jobs() / job / "status.json"


def _write_status(job: str, status: dict[str, Any]) -> None:
    path = _status_file(job)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(status))
    tmp.replace(path)


def _read_status(job: str) -> dict[str, Any]:
    path = _status_file(job)
    if not path.exists():
        raise NotFound(f"no export job {job!r} (it may have been deleted)")
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    if loaded["state"] != "running" and _expired(loaded):
        shutil.rmtree(path.parent, ignore_errors=True)
        raise NotFound(
            f"export job {job!r} has expired (after {get_settings().export_ttl} hours) and is deleted"
        )
    if loaded["state"] == "running" and not _alive(loaded.get("pid")):
        # The server process running the job stopped (a restart, a crash): the job will never finish.
        loaded.update(state="error", message="the server process running this export stopped; start it again")
    return loaded


def _alive(pid: Any) -> bool:
    """Whether the process that runs a job is still there (jobs run in a thread of a server process on
    this machine, which shares the data folder)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(
    db: Engine,
    context: RequestContext,
    job: str,
    types: list[str] | None,
    since: datetime | None,
    patients: list[str] | Literal["all"] | None,
) -> None:
    status = _read_status(job)
    try:
        counts = export(db, context, _jobs() / job / "files", types=types, since=since, patients=patients)
        status.update(state="done", counts=counts)
        _private(_jobs() / job)
    except Exception as error:  # the client learns of it from the status URL
        status.update(state="error", message=f"{type(error).__name__}: {error}")
    _write_status(job, status)


def _parameters(request: Request) -> tuple[list[str] | None, datetime | None]:
    params = request.query_params
    output = params.get("_outputFormat")
    if output is not None and output not in NDJSON_FORMATS:
        raise Invalid(f"_outputFormat {output!r} is not supported; use application/fhir+ndjson")
    types = None
    if params.get("_type"):
        types = [t.strip() for t in params["_type"].split(",") if t.strip()]
        unknown = [t for t in types if not is_resource_type(t)]
        if unknown:
            raise Invalid(f"_type names unknown resource types: {', '.join(unknown)}")
    since = instant_param(request, "_since") if params.get("_since") else None
    for name in ("patient", "_typeFilter", "_elements", "includeAssociatedData"):
        if name in params:
            raise NotSupported(f"the {name} parameter of $export is not supported yet")
    return types, since


def add_export_routes(
    app: FastAPI, db: Engine, base: Callable[[Request], str], context: Callable[[Request], RequestContext]
) -> None:
    @app.api_route("/fhir/$export", methods=["GET", "POST"])
    def system_export(request: Request) -> Response:
        return kick_off(request, None)

    @app.api_route("/fhir/Patient/$export", methods=["GET", "POST"])
    def patient_export(request: Request) -> Response:
        return kick_off(request, "all")

    @app.api_route("/fhir/Group/{group_id}/$export", methods=["GET", "POST"])
    def group_export(request: Request, group_id: str) -> Response:
        group = orjson.loads(read(db, context(request), "Group", group_id).content or "{}")
        members = [m.get("entity", {}).get("reference", "") for m in group.get("member", [])]
        patients = [rid for kind, rid in map(parse_reference, members) if kind == "Patient"]
        return kick_off(request, patients)

    def kick_off(request: Request, patients: list[str] | Literal["all"] | None) -> Response:
        if "respond-async" not in request.headers.get("prefer", ""):
            raise Invalid("$export runs asynchronously: send the header Prefer: respond-async")
        types, since = _parameters(request)
        asker = context(request)
        asker.permit("export", None)
        job = str(uuid.uuid4())
        _sweep()
        (_jobs() / job).mkdir(mode=0o700, parents=True)
        _write_status(
            job,
            {
                "actor": asker.actor,
                "state": "running",
                "pid": os.getpid(),
                "transactionTime": instant(now()),
                "request": str(request.url),
                "counts": {},
            },
        )
        threading.Thread(target=_run, args=(db, asker, job, types, since, patients), daemon=True).start()
        return Response(
            status_code=202, headers={"Content-Location": f"{base(request)}/$export-status/{job}"}
        )

    def own_job(request: Request, job: str) -> dict[str, Any]:
        status = _read_status(job)
        if status.get("actor") != context(request).actor:
            raise Forbidden(f"export job {job!r} was started by another asker")
        return status

    @app.get("/fhir/$export-status/{job}")
    def export_status(request: Request, job: str) -> Response:
        status = own_job(request, job)
        if status["state"] == "running":
            return Response(status_code=202, headers={"X-Progress": "exporting", "Retry-After": "1"})
        if status["state"] == "error":
            return outcome(500, "exception", f"the export failed: {status['message']}")
        files = f"{base(request)}/$export-file/{job}"
        manifest = {
            "transactionTime": status["transactionTime"],
            "request": status["request"],
            "requiresAccessToken": True,
            "output": [
                {"type": kind, "url": f"{files}/{kind}.ndjson", "count": count}
                for kind, count in sorted(status["counts"].items())
            ],
            "error": [],
        }
        return FhirResponse(manifest, media_type="application/json")

    @app.delete("/fhir/$export-status/{job}")
    def export_delete(request: Request, job: str) -> Response:
        own_job(request, job)
        shutil.rmtree(_jobs() / job, ignore_errors=True)
        return Response(status_code=202)

    @app.get("/fhir/$export-file/{job}/{name}")
    def export_file(request: Request, job: str, name: str) -> Response:
        status = own_job(request, job)
        kind = name.removesuffix(".ndjson")
        if status["state"] != "done" or kind not in status["counts"]:
            raise NotFound(f"export {job} has no file {name!r}")
        return FileResponse(_jobs() / job / "files" / f"{kind}.ndjson", media_type="application/fhir+ndjson")
