"""The workflow endpoints under ``/workflow``: advice requests, discharge follow-up and inboxes
(naer.coordination), for the signed-in asker. Bodies are small JSON objects (not FHIR resources: the
workflow makes those); answers are FHIR (a Bundle of a thread or a hand-over, a Task) or the inbox's JSON,
and every refusal is an OperationOutcome, as in the FHIR API.

- ``POST /workflow/advice``: ask (201, Location and ETag of the Task)
- ``GET /workflow/advice/{task}``: the thread
- ``POST /workflow/advice/{task}/{transition}``: receive, answer, ask-again, close, withdraw (If-Match)
- ``POST /workflow/discharge``: hand over a discharge's follow-up needs (201, one Task per need)
- ``GET /workflow/discharge/{handover}``: the Tasks of one hand-over
- ``POST /workflow/follow-up/{task}/{transition}``: accept, done, refuse, cancel (If-Match)
- ``GET /workflow/inbox?whose=organization|person``: overdue, due, new, escalated, answered, waiting
- ``GET /workflow/agreements``: the answer-time agreements and their urgencies
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from naer.api.outcome import FhirResponse
from naer.api.params import if_match, raw_body
from naer.coordination import advice, agreements, followup
from naer.coordination import values as v
from naer.coordination.inbox import inbox
from naer.store.checks import whole
from naer.store.context import RequestContext
from naer.store.errors import Invalid, NotFound

Text = Annotated[str, Field(max_length=v.MAX_TEXT)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class AdviceIn(BaseModel):
    """An advice request: about whom, to which department (may be left out within 72 hours of a
    discharge: it then goes to the discharging department), how urgent, and the question."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    urgency: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    question: Text
    department: Id | None = None


class NeedIn(BaseModel):
    """One follow-up need of a hand-over: the sector that takes it (sectors.yaml), what, by when (a date),
    whether it is about the admission's own cause, and optionally the organisation itself."""

    model_config = ConfigDict(extra="forbid")
    sector: Annotated[str, Field(pattern=r"^[a-z][a-z-]{0,39}$")]
    need: Text
    due: date
    about_admission: bool = True
    organization: Id | None = None


class HandOverIn(BaseModel):
    """The follow-up needs of a discharge (the inpatient Encounter)."""

    model_config = ConfigDict(extra="forbid")
    encounter: Id
    needs: Annotated[list[NeedIn], Field(min_length=1, max_length=followup.MAX_NEEDS)]


class MoveIn(BaseModel):
    """A move of a request: the answer or further question, where the transition carries one."""

    model_config = ConfigDict(extra="forbid")
    text: Text | None = None


def _parsed(raw: bytes, model: type[BaseModel]) -> Any:
    if not raw.strip():
        if model is MoveIn:
            return MoveIn()
        raise Invalid("the body must be a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Invalid(f"the body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Invalid(f"{where}: {first['msg']}", where=where) from None


def _thread(found: advice.Thread, status: int = 200, location: str | None = None) -> Response:
    headers = {"ETag": f'W/"{found.version}"'}
    if location:
        headers["Location"] = location
    return FhirResponse(found.bundle(), status_code=status, headers=headers)


def _collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": model is not MoveIn,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def add_workflow_routes(app: FastAPI, db: Engine, context_of: Callable[[Request], RequestContext]) -> None:
    @app.post("/workflow/advice", status_code=201, tags=["workflow"], openapi_extra=_schema(AdviceIn))
    async def ask(request: Request) -> Response:
        """Send an advice request to a hospital department."""
        context = context_of(request)  # sign-in first: an anonymous client learns nothing of the body
        body: AdviceIn = _parsed(await raw_body(request), AdviceIn)
        question = advice.Question(body.patient, body.urgency, body.question, body.department)
        found = await run_in_threadpool(advice.ask, db, context, question)
        return _thread(found, 201, f"/workflow/advice/{found.task['id']}")

    @app.get("/workflow/advice/{task_id}", tags=["workflow"])
    def read(request: Request, task_id: str) -> Response:
        """An advice request's thread: its Task, question and messages."""
        return _thread(advice.thread(db, context_of(request), task_id))

    @app.post("/workflow/advice/{task_id}/{transition}", tags=["workflow"], openapi_extra=_schema(MoveIn))
    async def move(request: Request, task_id: str, transition: str) -> Response:
        """Move an advice request on (receive, answer, ask-again, close, withdraw)."""
        context = context_of(request)
        body: MoveIn = _parsed(await raw_body(request), MoveIn)
        found = await run_in_threadpool(
            advice.move, db, context, task_id, transition, body.text, if_match(request)
        )
        return _thread(found)

    @app.post("/workflow/discharge", status_code=201, tags=["workflow"], openapi_extra=_schema(HandOverIn))
    async def hand_over(request: Request) -> Response:
        """Hand over the follow-up needs of a discharge: one Task per need, owned by the responsible
        organisation."""
        body: HandOverIn = _parsed(await raw_body(request), HandOverIn)
        needs = [
            followup.Need(n.sector, n.need, n.due, n.about_admission, n.organization) for n in body.needs
        ]
        made = await run_in_threadpool(followup.hand_over, db, context_of(request), body.encounter, needs)
        group = made[0]["groupIdentifier"]["value"]
        return FhirResponse(
            _collection(made), status_code=201, headers={"Location": f"/workflow/discharge/{group}"}
        )

    @app.get("/workflow/discharge/{group}", tags=["workflow"])
    def read_handover(request: Request, group: str) -> Response:
        """The follow-up Tasks of one hand-over, as far as the asker may see them."""
        found = followup.of_handover(db, context_of(request), group)
        if not found:
            raise NotFound(f"no hand-over {group[:64]!r} that you may see")
        return FhirResponse(_collection(found))

    @app.post("/workflow/follow-up/{task_id}/{transition}", tags=["workflow"], openapi_extra=_schema(MoveIn))
    async def move_follow_up(request: Request, task_id: str, transition: str) -> Response:
        """Move a follow-up Task on (accept, done, refuse, cancel)."""
        context = context_of(request)
        body: MoveIn = _parsed(await raw_body(request), MoveIn)
        task, version = await run_in_threadpool(
            followup.move, db, context, task_id, transition, body.text, if_match(request)
        )
        return FhirResponse(task, headers={"ETag": f'W/"{version}"'})

    @app.get("/workflow/inbox", tags=["workflow"])
    def read_inbox(request: Request, whose: str = "organization", limit: str = "50") -> Response:
        """The asker's organisation's or own inbox: overdue, due, new, answered and waiting Tasks."""
        if whose not in ("organization", "person"):
            raise Invalid(f"whose must be organization or person, not {whose!r}", where="whose")
        count = whole("limit", limit, 1, 200)
        found = inbox(db, context_of(request), whose, count)  # type: ignore[arg-type]
        return JSONResponse(found.as_json())

    @app.get("/workflow/agreements", tags=["workflow"])
    def read_agreements(request: Request) -> Response:
        """The answer-time agreements for advice, with their urgencies."""
        context_of(request)  # signed in
        return JSONResponse([a.model_dump(mode="json", by_alias=True) for a in agreements.agreements()])


ESCALATE_EVERY = 60.0  # seconds between two rounds of escalating overdue advice requests


def run_escalation(app: FastAPI, db: Engine, every: float = ESCALATE_EVERY) -> None:
    """Escalate overdue advice requests once a minute while the server runs (each worker process does;
    a request two workers escalate at once is escalated once: the loser's write is refused)."""
    log = logging.getLogger("naer.workflow")
    running: list[asyncio.Task[None]] = []

    async def rounds() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                done = await run_in_threadpool(advice.escalate_overdue, db)
                if done:
                    log.info("escalated %d overdue advice requests", len(done))
            except Exception:  # the loop must go on; the failure is logged loudly
                log.exception("could not escalate overdue advice requests")

    async def start() -> None:
        running.append(asyncio.get_running_loop().create_task(rounds()))

    async def stop() -> None:
        for task in running:
            task.cancel()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)
