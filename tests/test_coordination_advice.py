"""Advice requests end to end through the API, on SQLite and PostgreSQL, with the clock in the test's
hand: asking, answer times from the agreement, the state machine, who may move what, the 72-hour rule,
escalation to the on-call role, inboxes, and bad input that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer import clock
from naer.access.tables import audit_log
from naer.coordination import advice
from naer.store.tables import resources
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 (monday_morning: autouse)

SAME_DAY_DEADLINE = "2026-12-07T14:30:00Z"  # Monday 15:30 in Denmark


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    yield from worlds(request, tmp_path_factory, "coordination")


def _ask(api: TestClient, w: World, person: str, **body: Any) -> Any:
    return api.post("/workflow/advice", headers=w.headers(person), content=orjson.dumps(body))


def _move(api: TestClient, w: World, person: str, task: str, transition: str, **body: Any) -> Any:
    headers = w.headers(person)
    if "if_match" in body:
        headers["If-Match"] = body.pop("if_match")
    return api.post(f"/workflow/advice/{task}/{transition}", headers=headers, content=orjson.dumps(body))


def _task(answer: Any) -> dict[str, Any]:
    return answer.json()["entry"][0]["resource"]  # type: ignore[no-any-return]


def _state(task: dict[str, Any]) -> str:
    return str(task["businessStatus"]["coding"][0]["code"])


def _counts(w: World) -> dict[str, int]:
    with w.db.connect() as con:
        rows = con.execute(
            select(resources.c.resource_type, func.count()).group_by(resources.c.resource_type)
        ).all()
        audited = con.execute(select(func.count()).select_from(audit_log)).scalar_one()
    return {**{str(k): int(v) for k, v in rows}, "audit": int(audited)}


def test_a_nurse_asks_and_the_department_answers(world: tuple[World, TestClient]) -> None:
    w, api = world
    asked = _ask(api, w, "nurse", patient="p-home", department="dept-med", urgency="same-day",
                 question="Borgeren har feber 38,9 og hoster. Skal vi starte antibiotika?")  # fmt: skip
    assert asked.status_code == 201, asked.text
    task = _task(asked)
    assert asked.headers["ETag"] == 'W/"1"'
    assert asked.headers["Location"] == f"/workflow/advice/{task['id']}"
    assert _state(task) == "sent" and task["status"] == "requested"
    assert task["restriction"]["period"]["end"] == SAME_DAY_DEADLINE
    assert task["owner"]["reference"] == "Organization/dept-med"
    request = asked.json()["entry"][1]["resource"]
    assert request["resourceType"] == "CommunicationRequest" and request["status"] == "active"
    assert request["priority"] == "urgent" and request["sender"]["reference"] == "Organization/home-0741"

    # The physician of the department asked sees the thread; one of another department does not.
    assert api.get(f"/workflow/advice/{task['id']}", headers=w.headers("phys")).status_code == 200
    assert api.get(f"/workflow/advice/{task['id']}", headers=w.headers("phys-geri")).status_code == 404
    assert api.get("/fhir/Patient/p-home", headers=w.headers("phys")).status_code == 200  # advice relation

    # Only the department moves it on; a colleague of the nurse may close it once it is answered.
    assert _move(api, w, "nurse", task["id"], "answer", text="Ja").status_code == 403
    received = _move(api, w, "phys", task["id"], "receive")
    assert received.status_code == 200, received.text
    assert _state(_task(received)) == "received" and received.headers["ETag"] == 'W/"2"'
    clock.set_clock(NOW + timedelta(hours=2))
    answered = _move(api, w, "phys", task["id"], "answer", text="Start amoxicillin 750 mg x 3, CRP i morgen.")
    assert answered.status_code == 200, answered.text
    assert _state(_task(answered)) == "answered" and _task(answered)["status"] == "completed"
    messages = [e["resource"] for e in answered.json()["entry"][2:]]
    assert [m["payload"][0]["contentString"] for m in messages] == [
        "Start amoxicillin 750 mg x 3, CRP i morgen."
    ]
    assert messages[0]["sender"]["reference"] == "PractitionerRole/role-phys"

    before = _counts(w)
    second = _move(api, w, "phys", task["id"], "answer", text="Et svar til")
    assert second.status_code == 409 and "is answered and cannot be moved by 'answer'" in second.text
    closed = _move(api, w, "nurse2", task["id"], "close")
    assert closed.status_code == 200, closed.text
    assert _state(_task(closed)) == "closed"
    assert closed.json()["entry"][1]["resource"]["status"] == "completed"
    # With the request closed, the department's advice relation has ended: it may not even know of the
    # thread any more (404), so an answer after the close changes nothing.
    again = _move(api, w, "phys", task["id"], "answer", text="Endnu et svar")
    assert again.status_code == 404
    after = _counts(w)
    assert after["Communication"] == before["Communication"]  # the refused answers wrote nothing
    assert api.get("/fhir/Patient/p-home", headers=w.headers("phys")).status_code == 404


def test_a_second_answer_to_a_closed_request_is_refused(world: tuple[World, TestClient]) -> None:
    w, api = world
    # The citizen is admitted at the department asked, so it still sees the thread after the close.
    task = _task(_ask(api, w, "nurse", patient="p-admitted", department="dept-med", urgency="same-day",
                      question="Hvornår forventes udskrivelse?"))  # fmt: skip
    assert _move(api, w, "phys", task["id"], "answer", text="I morgen").status_code == 200
    assert _move(api, w, "nurse", task["id"], "close").status_code == 200
    before = _counts(w)
    again = _move(api, w, "phys", task["id"], "answer", text="Endnu et svar")
    assert again.status_code == 409, again.text
    assert (
        "the advice request is closed and cannot be moved by 'answer'"
        in again.json()["issue"][0]["diagnostics"]
    )
    assert {k: n for k, n in _counts(w).items() if k != "audit"} == {
        k: n for k, n in before.items() if k != "audit"
    }


def test_a_stale_if_match_changes_nothing(world: tuple[World, TestClient]) -> None:
    w, api = world
    task = _task(_ask(api, w, "gp", patient="p-home", department="dept-med", urgency="three-working-days",
                      question="Ønsker vurdering af medicinliste."))  # fmt: skip
    assert task["restriction"]["period"]["end"] == "2026-12-10T14:30:00Z"  # Thursday 15:30
    assert _move(api, w, "phys", task["id"], "receive", if_match='W/"1"').status_code == 200
    before = _counts(w)
    stale = _move(api, w, "phys", task["id"], "answer", text="Svar", if_match='W/"1"')
    assert stale.status_code == 412, stale.text
    # (the audit log grows by the reads' entries, which its writer commits within 0.2 s: not compared)
    assert {k: n for k, n in _counts(w).items() if k != "audit"} == {
        k: n for k, n in before.items() if k != "audit"
    }
    assert _move(api, w, "phys", task["id"], "answer", text="Svar", if_match="nonsense").status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"patient": "p-home", "department": "dept-nowhere", "urgency": "same-day", "question": "q"}, 422,
         "no active department Organization/dept-nowhere"),
        ({"patient": "p-home", "department": "home-0741", "urgency": "same-day", "question": "q"}, 422,
         "is not a hospital department"),
        ({"patient": "p-home", "department": "dept-med", "urgency": "tomorrow", "question": "q"}, 422,
         "has no urgency 'tomorrow'"),
        ({"patient": "p-home", "department": "dept-med", "urgency": "same-day", "question": "  "}, 400,
         "question must not be empty"),
        ({"patient": "p-home", "department": "dept-med", "urgency": "same-day", "question": "x" * 10_001},
         400, "at most 10000 characters"),
        ({"patient": "p-home", "department": "dept-med", "urgency": "same-day", "question": "q", "x": 1}, 400,
         "x: Extra inputs are not permitted"),
        ({"patient": "../Patient/x", "department": "dept-med", "urgency": "same-day", "question": "q"}, 400,
         "patient: String should match pattern"),
        ({"patient": "p-home", "urgency": "same-day", "question": "q"}, 400, "name the department to ask"),
        ({"patient": "p-none", "department": "dept-med", "urgency": "same-day", "question": "q"}, 404,
         "Patient/p-none is not known"),
        ({"patient": "p-nobody", "department": "dept-med", "urgency": "same-day", "question": "q"}, 404,
         "is not known"),
    ],
)  # fmt: skip
def test_bad_advice_requests_are_refused_and_change_nothing(
    world: tuple[World, TestClient], body: dict[str, Any], status: int, message: str
) -> None:
    w, api = world
    before = _counts(w)
    answer = _ask(api, w, "nurse", **body)
    assert answer.status_code == status, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and message in outcome["issue"][0]["diagnostics"]
    after = _counts(w)
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }


def test_bodies_that_are_not_json_objects(world: tuple[World, TestClient]) -> None:
    w, api = world
    for raw, kind, status in ((b"{", "application/json", 400), (b"[]", "application/json", 400),
                              (b"", "application/json", 400), (b'{"a":1}', "text/plain", 415)):  # fmt: skip
        headers = {**w.headers("nurse"), "Content-Type": kind}
        answer = api.post("/workflow/advice", headers=headers, content=raw)
        assert answer.status_code == status, (raw, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert (
        api.post("/workflow/advice", content=b"{}", headers={"Content-Type": "application/json"}).status_code
        == 401
    )


def test_who_may_not_ask(world: tuple[World, TestClient]) -> None:
    w, api = world
    body = {"patient": "p-home", "department": "dept-med", "urgency": "same-day", "question": "q"}
    assert _ask(api, w, "nurse-other", **body).status_code == 404  # no relation: not even that she exists
    assert _ask(api, w, "citizen", **body).status_code == 403
    assert _ask(api, w, "planner", **body).status_code == 403


def test_within_72_hours_of_a_discharge_the_request_goes_to_the_discharging_department(
    world: tuple[World, TestClient],
) -> None:
    w, api = world
    routed = _ask(
        api, w, "nurse", patient="p-discharged", urgency="acute", question="Dyspnø efter udskrivelse"
    )
    assert routed.status_code == 201, routed.text
    task = _task(routed)
    assert task["owner"]["reference"] == "Organization/dept-geri"
    inputs = {i["type"]["coding"][0]["code"]: i for i in task["input"]}
    assert inputs["routing"]["valueCoding"]["code"] == "discharge-72-hours"
    assert inputs["discharge"]["valueReference"]["reference"] == "Encounter/e-dis-imp"
    assert task["restriction"]["period"]["end"] == "2026-12-07T09:30:00Z"  # acute: 30 minutes
    # Naming another department does not take the request away from the responsible one ...
    named = _ask(
        api, w, "nurse", patient="p-discharged", department="dept-med", urgency="same-day", question="q"
    )
    assert _task(named)["owner"]["reference"] == "Organization/dept-geri"
    # ... and 73 hours after the discharge (43 from now) the rule no longer applies.
    clock.set_clock(NOW + timedelta(hours=43))
    later = _ask(api, w, "nurse", patient="p-discharged", urgency="same-day", question="q")
    assert later.status_code == 400 and "name the department" in later.text
    later = _ask(
        api, w, "nurse", patient="p-discharged", department="dept-med", urgency="same-day", question="q"
    )
    assert _task(later)["owner"]["reference"] == "Organization/dept-med"


def test_an_overdue_request_escalates_to_the_on_call_role(world: tuple[World, TestClient]) -> None:
    w, api = world
    task = _task(
        _ask(api, w, "nurse", patient="p-home", department="dept-med", urgency="acute", question="Akut")
    )
    assert api.get(f"/workflow/advice/{task['id']}", headers=w.headers("oncall")).status_code == 404
    clock.set_clock(NOW + timedelta(minutes=29))
    assert task["id"] not in advice.escalate_overdue(w.db)
    clock.set_clock(NOW + timedelta(minutes=31))
    assert task["id"] in advice.escalate_overdue(w.db)
    assert task["id"] not in advice.escalate_overdue(w.db)  # once
    seen = api.get(f"/workflow/advice/{task['id']}", headers=w.headers("oncall"))
    assert seen.status_code == 200, seen.text  # the on-call role now has the task relation
    escalated = _task(seen)
    assert _state(escalated) == "escalated"
    assert escalated["restriction"]["recipient"] == [
        {"reference": "PractitionerRole/role-oncall", "display": "Vagthavende"}
    ]
    inbox = api.get("/workflow/inbox?whose=person", headers=w.headers("oncall")).json()
    assert task["id"] in [t["id"] for t in inbox["lists"]["escalated"]["tasks"]]
    department = api.get("/workflow/inbox", headers=w.headers("phys")).json()
    assert task["id"] in [t["id"] for t in department["lists"]["overdue"]["tasks"]]
    assert "Patient/p-home" in department["patients"]
    answered = _move(api, w, "oncall", task["id"], "answer", text="Ring 1-1-2")
    assert answered.status_code == 200, answered.text
    mine = api.get("/workflow/inbox?whose=person", headers=w.headers("nurse")).json()
    assert task["id"] in [t["id"] for t in mine["lists"]["answered"]["tasks"]]
    unit = api.get("/workflow/inbox", headers=w.headers("nurse2")).json()  # the unit's inbox shows it too
    assert task["id"] in [t["id"] for t in unit["lists"]["answered"]["tasks"]]


def test_a_further_question_restarts_the_answer_time_and_withdrawal(world: tuple[World, TestClient]) -> None:
    w, api = world
    task = _task(
        _ask(api, w, "nurse", patient="p-home", department="dept-med", urgency="same-day", question="q1")
    )
    assert _move(api, w, "phys", task["id"], "answer", text="a1").status_code == 200
    assert _move(api, w, "nurse", task["id"], "ask-again").status_code == 400  # a question needs text
    clock.set_clock(NOW + timedelta(hours=4))  # Monday 14:00, after the cutoff: the next working day
    again = _move(api, w, "nurse", task["id"], "ask-again", text="q2")
    assert again.status_code == 200, again.text
    assert _state(_task(again)) == "sent"
    assert _task(again)["restriction"]["period"]["end"] == "2026-12-08T14:30:00Z"
    assert _move(api, w, "nurse", task["id"], "ask-again", text="q3").status_code == 409  # not answered yet
    texts = [e["resource"]["payload"][0]["contentString"] for e in again.json()["entry"][2:]]
    assert texts == ["a1", "q2"]
    withdrawn = _move(api, w, "nurse", task["id"], "withdraw", text="Løst ved telefon")
    assert withdrawn.status_code == 200 and _state(_task(withdrawn)) == "withdrawn"
    assert _task(withdrawn)["status"] == "cancelled"
    assert _move(api, w, "nurse", task["id"], "fly").status_code == 404


def test_inbox_arguments_and_audit(world: tuple[World, TestClient]) -> None:
    w, api = world
    assert api.get("/workflow/inbox?whose=everyone", headers=w.headers("phys")).status_code == 400
    assert api.get("/workflow/inbox?limit=0", headers=w.headers("phys")).status_code == 400
    assert api.get("/workflow/inbox?limit=99999999999999999999", headers=w.headers("phys")).status_code == 400
    assert api.get("/workflow/inbox", headers=w.headers("citizen")).status_code == 403
    assert api.get("/workflow/inbox").status_code == 401
    agreements = api.get("/workflow/agreements", headers=w.headers("nurse")).json()
    assert {a["id"] for a in agreements} == {"region-midt", "region-midt-samsoe"}
    # Each write of a request is in the audit log with the relation that allowed it.
    task = _task(
        _ask(api, w, "gp", patient="p-home", department="dept-med", urgency="same-day", question="q")
    )
    with w.db.connect() as con:
        contents = con.execute(select(audit_log.c.content).where(audit_log.c.actor == "gp")).scalars()
        rows = [orjson.loads(r) for r in contents]
    written = [
        r
        for r in rows
        if any(f"Task/{task['id']}/" in (e.get("what") or {}).get("reference", "") for e in r["entity"])
    ]
    assert written and written[0]["entity"][0]["detail"][0]["valueString"] == "general-practitioner"
