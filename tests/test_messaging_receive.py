"""The inbox, exactly once, on SQLite and PostgreSQL: the same message twice, a retransmission, a reused
Bundle id, messages out of order, a citizen not served, an invalid message, concurrent deliveries, and a
process killed (-9) before and after its commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from naer.fhir.systems import CPR, MUNICIPALITY_CODES, MUNICIPALITY_EXTENSION, SOR
from naer.messaging import acknowledgement as ack
from naer.messaging import parts
from naer.messaging.parse import read
from naer.messaging.receive import Receipt, receive
from naer.messaging.tables import hospital_stay, message
from naer.store import resources as store
from naer.store.context import SYSTEM
from tests import messaging_world as mw
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 - fixture

FIXTURES = Path(os.environ.get("NAER_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
PROTOCOL = FIXTURES / "medcom" / "carecommunication-test-protocol" / "send"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: Any, tmp_path_factory: Any) -> Iterator[tuple[World, Any]]:
    yield from worlds(request, tmp_path_factory, "messages", mw.prepare)


@pytest.fixture
def world(served: tuple[World, Any]) -> World:
    return served[0]


def _send(w: World, found: dict[str, Any]) -> Receipt:
    return receive(w.db, orjson.dumps(found))


def _stays(w: World, episode: str) -> list[dict[str, Any]]:
    with w.db.connect() as con:
        rows = con.execute(select(hospital_stay).where(hospital_stay.c.episode == episode)).all()
    return [dict(row._mapping) for row in rows]


def _count(w: World, header: str) -> int:
    with w.db.connect() as con:
        return int(
            con.execute(
                select(func.count()).select_from(message).where(message.c.header_id == header)
            ).scalar()
            or 0
        )


def _header(found: dict[str, Any]) -> str:
    return str(found["entry"][0]["resource"]["id"])


def test_a_message_is_applied_once_and_answered_the_same_every_time(world: World) -> None:
    stay = mw.Stay()
    first = stay.send("STIN", NOW)
    answer = _send(world, first)
    assert (answer.outcome, answer.code, answer.patient) == ("applied", "ok", "p-home")
    assert ack.answer_of(answer.acknowledgement or {}) == (_header(first), "ok")
    again = _send(world, first)
    assert again.outcome == "duplicate" and again.acknowledgement == answer.acknowledgement
    retransmitted = {**first, "id": parts.new_id()}  # a new Bundle id, the same MessageHeader id
    third = _send(world, retransmitted)
    assert third.outcome == "duplicate" and third.acknowledgement == answer.acknowledgement
    assert _count(world, _header(first)) == 1
    (row,) = _stays(world, stay.stay.episode)
    assert (row["state"], row["code"], row["organization"], row["patient"]) == (
        "admitted",
        "STIN",
        "home-0741",
        "p-home",
    )


def test_a_bundle_id_used_again_for_another_message_is_an_error(world: World) -> None:
    stay = mw.Stay()
    first = stay.send("STIN", NOW)
    assert _send(world, first).outcome == "applied"
    later = stay.send("STOR", NOW + 5 * mw.HOUR, leave_start=NOW + 5 * mw.HOUR)
    reused = {**later, "id": first["id"]}
    answer = _send(world, reused)
    assert answer.outcome == "bundle-reused" and answer.code == "fatal-error"
    assert "came before with MessageHeader" in answer.problems[0]
    assert _count(world, _header(later)) == 0
    assert _stays(world, stay.stay.episode)[0]["state"] == "admitted"  # nothing changed
    assert _send(world, later).outcome == "applied"  # the same message in a Bundle of its own is taken


def test_notifications_out_of_order_leave_the_state_of_the_latest(world: World) -> None:
    stay = mw.Stay(start=NOW - 60 * mw.HOUR)
    t = NOW - 60 * mw.HOUR
    admitted = stay.send("STIN", t)
    leave = stay.send("STOR", t + 20 * mw.HOUR, leave_start=t + 20 * mw.HOUR)
    back = stay.send("SLOR", t + 30 * mw.HOUR, leave_end=t + 30 * mw.HOUR)
    home = stay.send("SLHJ", t + 50 * mw.HOUR, end=t + 50 * mw.HOUR)
    for found in (home, leave, admitted, back):  # the discharge first, the admission after
        assert _send(world, found).outcome == "applied"
    (row,) = _stays(world, stay.stay.episode)
    assert (row["state"], row["code"], row["header_id"]) == ("finished", "SLHJ", _header(home))


def test_a_citizen_the_unit_does_not_serve_is_acknowledged_and_not_shown(world: World) -> None:
    stay = mw.Stay("p-none")  # lives in Odder, no relation with Samsø's home care
    answer = _send(world, stay.send("STIN", NOW))
    assert (answer.outcome, answer.code) == ("not-served", "ok")
    assert _stays(world, stay.stay.episode) == []
    with world.db.connect() as con:
        state = con.execute(select(message.c.state).where(message.c.header_id == answer.header)).scalar()
    assert state == "not-served"


def test_an_invalid_message_changes_nothing_and_is_answered_with_the_problem(world: World) -> None:
    stay = mw.Stay()
    found = stay.send("STIN", NOW)
    for entry in found["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["resource"]["class"]["code"] = "AMB"
    answer = _send(world, found)
    assert (answer.outcome, answer.code) == ("rejected", "fatal-error")
    outcome = parts.first(answer.acknowledgement or {}, "OperationOutcome") or {}
    texts = [issue["details"]["text"] for issue in outcome.get("issue", [])]
    assert any("v3-ActCode#AMB is not in" in text for text in texts)
    assert _stays(world, stay.stay.episode) == []
    assert _send(world, found).acknowledgement == answer.acknowledgement  # the same answer again


def test_a_receiver_nær_does_not_hold_is_refused(world: World) -> None:
    stay = mw.Stay()
    stay.receiver = mw.OUTSIDE
    answer = _send(world, stay.send("STIN", NOW))
    assert answer.code == "fatal-error" and "no organisation with SOR code" in answer.problems[0]


def test_an_acknowledgement_is_never_acknowledged(world: World) -> None:
    found = mw.care_message()
    answer = ack.build(found, "ok", [], mw.party("home-0741"), mw.party("dept-med"), NOW)
    receipt = _send(world, answer)
    assert receipt.acknowledgement is None and receipt.outcome.startswith("acknowledgement")


def test_a_care_communication_lands_in_the_receiving_unit_s_thread(world: World) -> None:
    found = mw.care_message(text="Hvordan går det med <b>fru</b> Hansen?")
    answer = _send(world, found)
    assert (answer.outcome, answer.code) == ("applied", "ok")
    with world.db.connect() as con:
        row = con.execute(select(message).where(message.c.header_id == answer.header)).one()
    assert (row.organization, row.kind, row.code, row.patient) == (
        "home-0741",
        "care-communication",
        "new",
        "p-home",
    )
    assert row.thread == found["entry"][2]["resource"]["identifier"][0]["value"]


def test_unreadable_input_is_refused_with_a_reason(world: World) -> None:
    for raw, says in [
        (b"", "empty"),
        (b"[1, 2]", "object"),
        (
            b'{"resourceType": "Bundle", "id": "x", "type": "message"}',
            "MessageHeader (the first entry) has no valid id",
        ),
        (
            b"<Bundle xmlns='http://hl7.org/fhir'><id value='x'/><timestamp value='yesterday'/></Bundle>",
            "not a FHIR R4",
        ),
        (b"\xff\xfe\x00", "not JSON"),
    ]:
        receipt = receive(world.db, raw)
        assert receipt.outcome == "unreadable" and receipt.acknowledgement is None
        assert says in receipt.problems[0], receipt.problems


@pytest.mark.skipif(not PROTOCOL.is_dir(), reason=f"MedCom's test protocol not at {PROTOCOL}")
def test_medcom_s_send_test_protocol_messages_are_received(world: World) -> None:
    """Each message of MedCom's send protocol, addressed to a unit Nær holds about a citizen of its
    municipality, is applied and acknowledged ok, in JSON and in XML; sent twice, answered the same."""
    files = sorted(PROTOCOL.glob("Bundle-*"))
    for path in files:
        raw = path.read_bytes()
        found = read(raw, "application/fhir+xml" if path.suffix == ".xml" else None)
        head = parts.first(found, "MessageHeader") or {}
        receiver = parts.party_of(parts.resolve(found, head["destination"][0]["receiver"]))
        assert receiver is not None
        _hold(world, receiver, parts.identity_of(parts.first(found, "Patient")))
        answer = receive(world.db, raw, "application/fhir+xml" if path.suffix == ".xml" else None)
        assert (answer.outcome, answer.code) in {("applied", "ok"), ("duplicate", "ok")}, (
            path.name,
            answer.problems,
        )
        again = receive(world.db, raw)
        assert again.acknowledgement == answer.acknowledgement


def _hold(w: World, receiver: parts.Party, identity: tuple[str, str] | None) -> None:
    """A municipal unit with the receiver's SOR code in Samsø, and the citizen living there."""
    org = f"protocol-{receiver.sor}"
    store.update(w.db, SYSTEM, "Organization", org, {
        "resourceType": "Organization", "id": org, "active": True, "name": receiver.name,
        "identifier": [{"system": SOR, "value": receiver.sor}],
        "partOf": {"reference": "Organization/muni-0741"},
    })  # fmt: skip
    assert identity is not None
    system, value = identity
    rid = f"protocol-{value.lower()}"
    code = {"coding": [{"system": MUNICIPALITY_CODES, "code": "0741"}]}
    store.update(w.db, SYSTEM, "Patient", rid, {
        "resourceType": "Patient", "id": rid, "identifier": [{"system": system, "value": value}],
        "address": [{"extension": [{"url": MUNICIPALITY_EXTENSION, "valueCodeableConcept": code}]}],
    })  # fmt: skip
    assert system in (CPR, parts.X_ECPR)


# -- PostgreSQL: concurrency and crashes ---------------------------------------------------------------------


def _postgres(w: World) -> None:
    if not w.url.startswith("postgresql"):
        pytest.skip("concurrency and crash tests run on PostgreSQL")


def test_the_same_message_delivered_concurrently_is_applied_once(world: World) -> None:
    _postgres(world)
    found = mw.Stay().send("STIN", NOW)
    raw = orjson.dumps(found)
    answers: list[Receipt] = []
    barrier = threading.Barrier(4)

    def deliver(bundle_id: str) -> None:
        barrier.wait()
        answers.append(receive(world.db, raw.replace(found["id"].encode(), bundle_id.encode())))

    threads = [threading.Thread(target=deliver, args=(parts.new_id(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.outcome for a in answers) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert len({orjson.dumps(a.acknowledgement) for a in answers}) == 1
    assert _count(world, _header(found)) == 1


def test_two_messages_about_one_citizen_delivered_concurrently_both_apply(world: World) -> None:
    _postgres(world)
    stay = mw.Stay()
    admitted = stay.send("STIN", NOW)
    leave = stay.send("STOR", NOW + 3 * mw.HOUR, leave_start=NOW + 3 * mw.HOUR)
    care = mw.care_message()
    results: list[Receipt] = []
    barrier = threading.Barrier(3)

    def deliver(found: dict[str, Any]) -> None:
        barrier.wait()
        results.append(_send(world, found))

    threads = [threading.Thread(target=deliver, args=(m,)) for m in (leave, admitted, care)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.outcome for r in results) == ["applied", "applied", "applied"]
    (row,) = _stays(world, stay.stay.episode)
    assert row["state"] == "leave"


KILL = """
import os, signal, sys
from datetime import datetime
from naer import clock
from naer.messaging import receive as inbox
clock.set_clock(datetime.fromisoformat(sys.argv[4]))  # the world's Monday morning
from naer.store.db import engine
raw = open(sys.argv[2], "rb").read()
if sys.argv[3] == "before-commit":  # dies while the transaction is open: the effect is written, not committed
    real = inbox.ack.build
    def dying(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    inbox.ack.build = dying
inbox.receive(engine(sys.argv[1]), raw, record=lambda *a: os.kill(os.getpid(), signal.SIGKILL))
print("not killed")
"""


@pytest.mark.parametrize("moment", ["before-commit", "after-commit"])
def test_a_process_killed_mid_message_loses_nothing_and_doubles_nothing(
    world: World, tmp_path: Path, moment: str
) -> None:
    _postgres(world)
    stay = mw.Stay()
    found = stay.send("STIN", NOW)
    path = tmp_path / "message.json"
    path.write_bytes(orjson.dumps(found))
    command = [sys.executable, "-c", KILL, world.url, str(path), moment, NOW.isoformat()]
    done = subprocess.run(command, capture_output=True, timeout=120, env={**os.environ, "NAER_TODAY": ""})
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert _count(world, _header(found)) == (1 if moment == "after-commit" else 0)
    answer = _send(world, found)  # the sender had no acknowledgement, so it sends again
    assert answer.outcome == ("duplicate" if moment == "after-commit" else "applied")
    assert answer.code == "ok"
    assert _count(world, _header(found)) == 1 and len(_stays(world, stay.stay.episode)) == 1


# -- the gateway's endpoint ------------------------------------------------------------------------------


def test_the_gateway_posts_messages_and_gets_the_acknowledgement(served: tuple[World, Any]) -> None:
    w, api = served
    found = mw.Stay().send("STIN", NOW)
    headers = {"Authorization": f"Bearer {w.tokens['gateway']}", "Content-Type": "application/fhir+json"}
    answer = api.post("/fhir/$process-message", content=orjson.dumps(found), headers=headers)
    assert answer.status_code == 200, answer.text
    assert ack.answer_of(answer.json()) == (_header(found), "ok")
    again = api.post("/fhir/$process-message", content=orjson.dumps(found), headers=headers)
    assert again.json() == answer.json()
    as_xml = api.post(
        "/fhir/$process-message",
        content=orjson.dumps(found),
        headers={**headers, "Accept": "application/fhir+xml"},
    )
    assert as_xml.headers["content-type"].startswith("application/fhir+xml")
    assert b"<response>" in as_xml.content and _header(found).encode() in as_xml.content


def test_only_the_gateway_posts_messages(served: tuple[World, Any]) -> None:
    w, api = served
    found = orjson.dumps(mw.Stay().send("STIN", NOW))
    json_body = {"Content-Type": "application/fhir+json"}
    assert api.post("/fhir/$process-message", content=found, headers=json_body).status_code == 401
    nurse = api.post("/fhir/$process-message", content=found, headers=w.headers("nurse"))
    assert nurse.status_code == 403 and nurse.json()["resourceType"] == "OperationOutcome"


def test_the_gateway_gets_an_outcome_for_what_it_cannot_answer(served: tuple[World, Any]) -> None:
    w, api = served
    headers = {"Authorization": f"Bearer {w.tokens['gateway']}", "Content-Type": "application/fhir+json"}
    for body in (b"", b"{", b'{"resourceType": "Patient"}', b"<!DOCTYPE x><x/>", b"\x00" * 100):
        answer = api.post("/fhir/$process-message", content=body, headers=headers)
        assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome", body


def test_the_gateway_may_send_xml(served: tuple[World, Any]) -> None:
    w, api = served
    found = mw.Stay().send("STIN", NOW)
    xml = Bundle.model_validate(found).model_dump_xml()
    headers = {"Authorization": f"Bearer {w.tokens['gateway']}", "Content-Type": "application/fhir+xml"}
    answer = api.post("/fhir/$process-message", content=xml, headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+xml")
    back = read(answer.content, "application/fhir+xml")
    assert ack.answer_of(back) == (_header(found), "ok")
