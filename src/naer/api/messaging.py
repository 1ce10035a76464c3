"""The MedCom gateway's endpoint: FHIR's ``$process-message`` (``POST /fhir/$process-message``).

The body is one MedCom message Bundle, in FHIR JSON or FHIR XML. The answer is the Acknowledgement
message (200), in the format the message came in unless ``Accept`` asks for the other. A message that
cannot be read, or names no MessageHeader to answer, is refused with an OperationOutcome (400). Only a
registered system client (the message gateway) may post messages; each message received is an audit
entry that names its citizen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naer.access.context import AccessContext
from naer.api.outcome import FhirResponse, outcome
from naer.api.params import raw_body
from naer.messaging import compose, outbox
from naer.messaging.parse import is_xml
from naer.messaging.receive import receive
from naer.settings import get_settings
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid

FHIR_XML = "application/fhir+xml"
SEND_EVERY = 10.0  # seconds between the outbox's rounds in a server process


Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    contentType: Annotated[str, Field(max_length=100)]
    data: Annotated[str, Field(max_length=14_000_000)]  # base64 of at most 10 MiB


class Answering(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: Literal["in", "out"]
    header: Id


class CareCommunicationIn(BaseModel):
    """A CareCommunication to write: new (receiver, category, text), or a reply or forward of a message of
    the asker's organisation (``answering``; a forward names its receiver)."""

    model_config = ConfigDict(extra="forbid")
    patient: Id
    text: Annotated[str, Field(min_length=1, max_length=100_000)]  # (compose.send says why, when longer)
    phone: Annotated[str, Field(min_length=1, max_length=20)]
    receiver: Annotated[str | None, Field(pattern=r"^[0-9]{6,20}$")] = None
    category: Annotated[str | None, Field(max_length=64)] = None
    topic: Annotated[str | None, Field(max_length=60)] = None
    priority: Literal["asap"] | None = None
    attachments: Annotated[list[AttachmentIn], Field(max_length=10)] = []
    answering: Answering | None = None
    forward: bool = False


def add_messaging_routes(app: FastAPI, db: Engine, context_of: Callable[[Request], RequestContext]) -> None:
    body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CareCommunicationIn.model_json_schema()}},
        }
    }

    @app.post(
        "/workflow/messages", tags=["messaging"], summary="Write a CareCommunication", status_code=201,
        openapi_extra=body,
    )  # fmt: skip
    async def write_message(request: Request) -> Response:
        context = context_of(request)
        raw = await raw_body(request)
        try:
            given = CareCommunicationIn.model_validate_json(raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or None
            raise Invalid(f"{where}: {first.get('msg', 'not valid')}", where=where) from None
        attachments = tuple(compose.Attachment(a.title, a.contentType, a.data) for a in given.attachments)
        answering = (given.answering.direction, given.answering.header) if given.answering else None
        header = await run_in_threadpool(
            lambda: compose.send(
                db, context, given.patient, given.text, given.phone, receiver=given.receiver,
                category=given.category, topic=given.topic, priority=given.priority,
                attachments=attachments, answering=answering, forward=given.forward,
            )
        )  # fmt: skip
        answer = FhirResponse({"header": header}, status_code=201)
        answer.headers["Location"] = f"/messages/out/{header}"
        return answer

    @app.post("/fhir/$process-message", tags=["messaging"], summary="Receive a MedCom message")
    async def process_message(request: Request) -> Response:
        context = context_of(request)
        if isinstance(context, AccessContext) and context.principal.role != "system":
            raise Forbidden("only the message gateway (a system client) posts MedCom messages")
        raw = await raw_body(request)
        content_type = request.headers.get("content-type")

        def record(action: str, patient: str | None, detail: str) -> None:
            if isinstance(context, AccessContext):
                context.record_event(action, patient=patient, detail=detail)

        receipt = await run_in_threadpool(receive, db, raw, content_type, None, record)
        if receipt.acknowledgement is None:
            if receipt.outcome.startswith("acknowledgement"):
                return Response(status_code=204)  # an acknowledgement is never answered
            return outcome(400, "invalid", "; ".join(receipt.problems)[:2000] or receipt.outcome)
        accept = request.headers.get("accept", "")
        xml = "xml" in accept.lower() if "fhir+" in accept.lower() else is_xml(raw, content_type)
        if xml:
            try:
                text = Bundle.model_validate(receipt.acknowledgement).model_dump_xml()
            except Exception:
                logging.getLogger("naer.messaging").exception("acknowledgement %s in XML", receipt.header)
                return FhirResponse(receipt.acknowledgement)
            body = text.encode() if isinstance(text, str) else text
            return Response(body, media_type=FHIR_XML)
        return FhirResponse(receipt.acknowledgement)


def run_outbox(app: FastAPI, db: Engine, every: float = SEND_EVERY) -> None:
    """While the server runs: send what the outbox holds that is due (new messages, and retransmissions
    after 30 minutes without an acknowledgement). Two server processes may send one message at once; the
    receiver takes it once (the same MessageHeader id), which is MedCom's reliable messaging."""
    log = logging.getLogger("naer.messaging")
    running: list[asyncio.Task[None]] = []

    async def rounds() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                done = await run_in_threadpool(outbox.send_due, db, None, get_settings().messaging_outbox)
                if done:
                    log.info("outbox: %s", ", ".join(f"{d.header} {d.state}" for d in done[:20]))
            except Exception:  # the loop must go on; the failure is logged loudly
                log.exception("a round of the outbox failed")

    async def start() -> None:
        running.append(asyncio.get_running_loop().create_task(rounds()))

    async def stop() -> None:
        for task in running:
            task.cancel()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)
