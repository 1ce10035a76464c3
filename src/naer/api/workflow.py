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
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from naer.api.outcome import FhirResponse
from naer.api.params import if_match, raw_body
from naer.coordination import (
    advice,
    agreements,
    beds,
    careplan,
    competence,
    delegation,
    followup,
    measurements,
    referral,
)
from naer.coordination import values as v
from naer.coordination.inbox import inbox
from naer.coordination.tasks import Thread
from naer.store import resources as store
from naer.store.checks import whole
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid, NotFound

Text = Annotated[str, Field(max_length=v.MAX_TEXT)]
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: Any) -> date:
    """A day written as FHIR and ISO 8601 write it (2026-12-07), from 1900 to 2100: not a timestamp, not
    20261207, not the year 1."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not ISO_DAY.match(value):
        raise ValueError("a date such as 2024-12-31 (YYYY-MM-DD)")
    day = date.fromisoformat(value)
    if not 1900 <= day.year <= 2100:
        raise ValueError("a date from 1900 to 2100")
    return day


Day = Annotated[date, BeforeValidator(_iso_day)]
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
    due: Day
    about_admission: bool = True
    organization: Id | None = None


class HandOverIn(BaseModel):
    """The follow-up needs of a discharge (the inpatient Encounter)."""

    model_config = ConfigDict(extra="forbid")
    encounter: Id
    needs: Annotated[list[NeedIn], Field(min_length=1, max_length=followup.MAX_NEEDS)]


class CompetenceIn(BaseModel):
    """A course a person completed, for the shared competence register."""

    model_config = ConfigDict(extra="forbid")
    practitioner: Id
    competence: Code
    completed: Day
    valid_until: Day | None = None
    issuer: Id | None = None


class ResponsibilityIn(BaseModel):
    """The signed-in physician takes the medical responsibility for a citizen's treatment at home or in an
    acute bed, from a day (to a day)."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    setting: Literal["home", "acute-bed"]
    start: Day
    end: Day | None = None


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    end: Day


class InstructionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text
    text: Annotated[str, Field(max_length=delegation.MAX_INSTRUCTION)]
    version: Code = "1"


class DelegationIn(BaseModel):
    """A framework delegation: which treatment, for which citizen or citizen group, in force when, under
    which conditions, with its written instruction."""

    model_config = ConfigDict(extra="forbid")
    treatment: Code
    start: Day
    end: Day
    conditions: Text
    instruction: InstructionIn
    patient: Id | None = None
    group: Id | None = None


class AssignIn(BaseModel):
    """A delegated treatment for one citizen on one day, to the nurse holding a PractitionerRole."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    nurse: Id
    day: Day


class AdmitIn(BaseModel):
    """Admission of a citizen to a free bed of an acute unit, with the responsible physician."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    unit: Id
    physician: Id
    reason: Text | None = None


class DischargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposition: Annotated[str, Field(pattern=r"^[a-z][a-z-]{0,20}$")]


class GoalIn(BaseModel):
    """A goal of the shared care plan, in a life area (health, function, social, housing, employment,
    network, mental-health)."""

    model_config = ConfigDict(extra="forbid")
    description: Text
    area: Code = "health"
    due: Day | None = None


class ActivityIn(BaseModel):
    """An activity of the shared care plan, owned by an organisation of any sector."""

    model_config = ConfigDict(extra="forbid")
    description: Text
    organization: Id
    area: Code = "health"
    start: Day | None = None
    end: Day | None = None


class PalliativeIn(BaseModel):
    """The palliative section: preferred place of care and of death, and the 24-hour contact."""

    model_config = ConfigDict(extra="forbid")
    contact: Text
    place_of_care: Text | None = None
    place_of_death: Text | None = None
    contact_organization: Id | None = None


class PsychiatryIn(BaseModel):
    """The psychiatric coordination section: the coordinating organisation and the crisis plan."""

    model_config = ConfigDict(extra="forbid")
    coordinator: Id
    crisis_plan: Text | None = None


Limit = Annotated[float, Field(ge=-100_000, le=100_000, allow_inf_nan=False)]


class ThresholdIn(BaseModel):
    """One limit of a home measurement (measurements.yaml): below ``low``, above ``high``, or a rise of
    more than ``rise`` over ``days`` days is outside."""

    model_config = ConfigDict(extra="forbid")
    measure: Code
    low: Limit | None = None
    high: Limit | None = None
    rise: Limit | None = None
    days: Annotated[int, Field(ge=1, le=30)] | None = None


class ThresholdsIn(BaseModel):
    """The thresholds of the citizen's home measurements (replacing those set before)."""

    model_config = ConfigDict(extra="forbid")
    thresholds: Annotated[list[ThresholdIn], Field(min_length=1, max_length=20)]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient: Id


SECTIONS: dict[careplan.Change, type[BaseModel]] = {
    "goal": GoalIn, "activity": ActivityIn, "palliative": PalliativeIn, "psychiatry": PsychiatryIn,
    "thresholds": ThresholdsIn,
}  # fmt: skip


class ReferralIn(BaseModel):
    """A GP's diagnostic referral: about whom, to which department, on which track (referrals.yaml), and
    the suspicion the work-up is to confirm or rule out."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    department: Id
    track: Code
    suspicion: Text


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
    try:  # strict: a number is not a boolean, "90" is not a number
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Invalid(f"{where}: {first['msg']}", where=where) from None


def _thread(found: Thread, status: int = 200, location: str | None = None) -> Response:
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
        context = context_of(request)  # sign-in first: an anonymous client learns nothing of the body
        body: HandOverIn = _parsed(await raw_body(request), HandOverIn)
        needs = [
            followup.Need(n.sector, n.need, n.due, n.about_admission, n.organization) for n in body.needs
        ]
        made = await run_in_threadpool(followup.hand_over, db, context, body.encounter, needs)
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

    @app.post("/workflow/competence", status_code=201, tags=["workflow"], openapi_extra=_schema(CompetenceIn))
    async def register_competence(request: Request) -> Response:
        """Register a completed course in the shared competence register (administrators)."""
        context = context_of(request)
        body: CompetenceIn = _parsed(await raw_body(request), CompetenceIn)
        made = await run_in_threadpool(
            competence.register, db, context, body.practitioner, body.competence, body.completed,
            body.valid_until, body.issuer,
        )  # fmt: skip
        return FhirResponse(made, status_code=201)

    @app.get("/workflow/competence/coverage", tags=["workflow"])
    def read_coverage(
        request: Request,
        code: Annotated[str, Query(alias="competence")] = "",
        organization: str = "",
        day: str = "",
    ) -> Response:
        """Who working in an organisation (and its units) holds a competence on a day."""
        context = context_of(request)
        when = competence.parse_day(day, "day") or competence.today()
        found = competence.coverage(db, context, code, organization, when)
        shown = {
            "competence": found.competence,
            "organization": found.organization,
            "day": found.day.isoformat(),
        }
        return JSONResponse({**shown, "holders": found.holders, "people": found.people})

    @app.get("/workflow/competence/expiring", tags=["workflow"])
    def read_expiring(request: Request, organization: str = "", within: str = "60") -> Response:
        """Competences of an organisation's people that expire (or expired) within some days."""
        context = context_of(request)
        days = whole("within", within, 1, 366)
        return JSONResponse(competence.expiring(db, context, organization, days))

    @app.post(
        "/workflow/responsibility",
        status_code=201,
        tags=["workflow"],
        openapi_extra=_schema(ResponsibilityIn),
    )
    async def take_responsibility(request: Request) -> Response:
        """Register the signed-in physician's medical responsibility for a citizen's treatment."""
        context = context_of(request)
        body: ResponsibilityIn = _parsed(await raw_body(request), ResponsibilityIn)
        made = await run_in_threadpool(
            delegation.take_responsibility, db, context, body.patient, body.setting, body.start, body.end
        )
        return FhirResponse(made, status_code=201)

    @app.post("/workflow/responsibility/{rid}/end", tags=["workflow"], openapi_extra=_schema(EndIn))
    async def end_responsibility(request: Request, rid: str) -> Response:
        """End a medical responsibility on a day."""
        context = context_of(request)
        body: EndIn = _parsed(await raw_body(request), EndIn)
        made = await run_in_threadpool(delegation.end_responsibility, db, context, rid, body.end)
        return FhirResponse(made)

    @app.get("/workflow/responsibility", tags=["workflow"])
    def read_responsibility(request: Request, patient: str = "") -> Response:
        """Who holds (and held) the medical responsibility for a citizen's treatment."""
        return FhirResponse(_collection(delegation.responsibilities(db, context_of(request), patient)))

    @app.post("/workflow/delegation", status_code=201, tags=["workflow"], openapi_extra=_schema(DelegationIn))
    async def delegate(request: Request) -> Response:
        """A physician's framework delegation of a treatment to municipal nurses."""
        context = context_of(request)
        body: DelegationIn = _parsed(await raw_body(request), DelegationIn)
        made = await run_in_threadpool(
            delegation.delegate, db, context, body.treatment, body.start, body.end, body.conditions,
            body.instruction.title, body.instruction.text, body.instruction.version, body.patient, body.group,
        )  # fmt: skip
        return FhirResponse(made, status_code=201)

    @app.post(
        "/workflow/delegation/{rid}/assign",
        status_code=201,
        tags=["workflow"],
        openapi_extra=_schema(AssignIn),
    )
    async def assign(request: Request, rid: str) -> Response:
        """Assign a delegated treatment on a day to a nurse who holds its competence that day."""
        context = context_of(request)
        body: AssignIn = _parsed(await raw_body(request), AssignIn)
        made = await run_in_threadpool(
            delegation.assign, db, context, rid, body.patient, body.nurse, body.day
        )
        return FhirResponse(made, status_code=201)

    @app.post(
        "/workflow/acute-beds/admit", status_code=201, tags=["workflow"], openapi_extra=_schema(AdmitIn)
    )
    async def admit(request: Request) -> Response:
        """Admit a citizen to a free bed of a municipal acute unit (refused when the unit is full)."""
        context = context_of(request)
        body: AdmitIn = _parsed(await raw_body(request), AdmitIn)
        made = await run_in_threadpool(
            beds.admit, db, context, body.patient, body.unit, body.physician, body.reason
        )
        return FhirResponse(made, status_code=201)

    @app.post("/workflow/acute-beds/{rid}/discharge", tags=["workflow"], openapi_extra=_schema(DischargeIn))
    async def discharge(request: Request, rid: str) -> Response:
        """End an acute-bed stay, with where the citizen went."""
        context = context_of(request)
        body: DischargeIn = _parsed(await raw_body(request), DischargeIn)
        made = await run_in_threadpool(beds.discharge, db, context, rid, body.disposition, if_match(request))
        return FhirResponse(made)

    @app.get("/workflow/acute-beds/occupancy", tags=["workflow"])
    def read_occupancy(request: Request, unit: str = "", start: str = "", end: str = "") -> Response:
        """A unit's beds now (free or taken, no names), and how many were occupied each day of a period."""
        context = v.require_person(context_of(request))
        if context.rules.roles[context.principal.role].records not in ("relations", "all"):
            raise Forbidden("bed occupancy is for the health professionals who admit")
        now = beds.occupancy(db, unit)
        last = competence.parse_day(end, "end") or competence.today()
        first = competence.parse_day(start, "start") or last - timedelta(days=29)
        days = beds.occupancy_by_day(db, now.unit, first, last)
        return JSONResponse({"unit": now.unit, "name": now.name, "beds": now.beds, "occupied": now.occupied,
                             "free": now.free, "open_stays": now.open_stays, "days": days})  # fmt: skip

    @app.get("/workflow/care-plan/{rid}", tags=["workflow"])
    def read_care_plan(request: Request, rid: str) -> Response:
        """The citizen's shared care plan: the CarePlan, its Goals and the care team (ETag: the plan's
        version, W/"0" while none is written)."""
        bundle, version = careplan.plan(db, context_of(request), rid)
        return FhirResponse(bundle, headers={"ETag": f'W/"{version}"'})

    def _plan_route(section: careplan.Change, model: type[BaseModel]) -> None:
        async def change(request: Request, rid: str) -> Response:
            context = context_of(request)
            body = _parsed(await raw_body(request), model)
            made, version = await run_in_threadpool(
                careplan.change, db, context, rid, section, body.model_dump(mode="json"), if_match(request)
            )
            return FhirResponse(made, headers={"ETag": f'W/"{version}"'})

        change.__doc__ = f"Change the citizen's shared care plan: {model.__doc__ or section}"
        app.post(
            f"/workflow/care-plan/{{rid}}/{section}", tags=["workflow"], openapi_extra=_schema(model),
            name=f"care_plan_{section}", summary=f"Care plan: {section}",
        )(change)  # fmt: skip

    for section, model in SECTIONS.items():
        _plan_route(section, model)

    @app.post("/workflow/measurements/check", tags=["workflow"], openapi_extra=_schema(CheckIn))
    async def check_measurements(request: Request) -> Response:
        """Check a citizen's home measurements of the last 14 days against the care plan's thresholds now:
        the Tasks made for those outside (each measurement gets one, however often it is checked)."""
        context = v.require_person(context_of(request))
        if context.rules.roles[context.principal.role].records != "relations":
            raise Forbidden("home measurements are checked by the health professionals around the citizen")
        body: CheckIn = _parsed(await raw_body(request), CheckIn)
        await run_in_threadpool(store.read, db, context, "Patient", body.patient)  # 404 for one not known
        made = await run_in_threadpool(measurements.check, db, body.patient)
        return FhirResponse(_collection(made))

    @app.post("/workflow/referral", status_code=201, tags=["workflow"], openapi_extra=_schema(ReferralIn))
    async def refer(request: Request) -> Response:
        """Send a diagnostic referral from general practice (fast track or standard)."""
        context = context_of(request)
        body: ReferralIn = _parsed(await raw_body(request), ReferralIn)
        found = await run_in_threadpool(
            referral.refer, db, context, body.patient, body.department, body.track, body.suspicion
        )
        return _thread(found, 201, f"/workflow/referral/{found.task['id']}")

    @app.get("/workflow/referral/{task_id}", tags=["workflow"])
    def read_referral(request: Request, task_id: str) -> Response:
        """A referral's thread: its Task, the ServiceRequest and the booking and answer."""
        return _thread(referral.thread(db, context_of(request), task_id))

    @app.post("/workflow/referral/{task_id}/{transition}", tags=["workflow"], openapi_extra=_schema(MoveIn))
    async def move_referral(request: Request, task_id: str, transition: str) -> Response:
        """Move a referral on (receive, book, answer, close, withdraw)."""
        context = context_of(request)
        body: MoveIn = _parsed(await raw_body(request), MoveIn)
        found = await run_in_threadpool(
            referral.move, db, context, task_id, transition, body.text, if_match(request)
        )
        return _thread(found)

    @app.get("/workflow/inbox", tags=["workflow"])
    def read_inbox(request: Request, whose: str = "organization", limit: str = "50") -> Response:
        """The asker's organisation's or own inbox: overdue, due, new, answered and waiting Tasks."""
        context = context_of(request)
        if whose not in ("organization", "person"):
            raise Invalid(f"whose must be organization or person, not {whose[:40]!r}", where="whose")
        count = whole("limit", limit[:20], 1, 200)
        found = inbox(db, context, whose, count)  # type: ignore[arg-type]
        return JSONResponse(found.as_json())

    @app.get("/workflow/agreements", tags=["workflow"])
    def read_agreements(request: Request) -> Response:
        """The answer-time agreements for advice, with their urgencies."""
        context_of(request)  # signed in
        return JSONResponse([a.model_dump(mode="json", by_alias=True) for a in agreements.agreements()])


ESCALATE_EVERY = 60.0  # seconds between two rounds: overdue advice escalated, home measurements checked


def run_escalation(app: FastAPI, db: Engine, every: float = ESCALATE_EVERY) -> None:
    """Once a minute while the server runs: escalate overdue advice requests and check home measurements
    against their thresholds (each worker process does; a request two workers escalate at once is
    escalated once, the loser's write refused; a measurement may get a Task from each of two workers
    checking it in the same instant, the one known race here — `naer coordination measurements` from a
    single scheduler avoids it)."""
    log = logging.getLogger("naer.workflow")
    running: list[asyncio.Task[None]] = []

    async def rounds() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                done = await run_in_threadpool(advice.escalate_overdue, db)
                if done:
                    log.info("escalated %d overdue advice requests", len(done))
                alerts = await run_in_threadpool(measurements.check_all, db)
                if alerts:
                    log.info("%d home measurements outside their thresholds", len(alerts))
            except Exception:  # the loop must go on; the failure is logged loudly
                log.exception("a round of the workflows failed")

    async def start() -> None:
        running.append(asyncio.get_running_loop().create_task(rounds()))

    async def stop() -> None:
        for task in running:
            task.cancel()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)
