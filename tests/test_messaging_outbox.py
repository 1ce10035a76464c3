"""The outbox: a hospital stay's changes in the store become HospitalNotifications to the citizen's home
care, stored in the same transaction, sent after (to a unit of this Nær directly, else as a file for
the VANS gateway), sent again after 30 minutes without an acknowledgement (new Bundle, same
MessageHeader), at most twice, then shown to a person."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from naer import clock
from naer.messaging import acknowledgement as ack
from naer.messaging import events, outbox, parts
from naer.messaging.receive import receive
from naer.messaging.tables import hospital_stay, message
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.errors import StoreError
from tests import messaging_world as mw
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 - fixture

H = timedelta(hours=1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    events.install()
    try:
        for made, _api in worlds(request, tmp_path_factory, "outbox", mw.prepare):
            yield made
    finally:
        from naer.store import events as store_events

        store_events.forget("messaging.hospital-notification")


def _encounter(
    rid: str, patient: str, status: str, klass: str = "IMP", provider: str = "dept-med", **more: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "id": rid, "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": f"Organization/{provider}"},
        "period": {"start": NOW.isoformat()}, **more,
    }  # fmt: skip


def _sent(w: World, episode: str) -> list[Any]:
    with w.db.connect() as con:
        return con.execute(
            select(message)
            .where(message.c.direction == "out", message.c.episode == episode)
            .order_by(message.c.created)
        ).all()


def _stay(w: World, episode: str) -> Any:
    with w.db.connect() as con:
        return con.execute(select(hospital_stay).where(hospital_stay.c.episode == episode)).first()


def test_a_stay_s_changes_are_told_to_home_care_and_applied_there(world: World) -> None:
    rid = "stay-home-1"
    store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-home", "in-progress"))
    (stin,) = _sent(world, rid)
    assert (stin.code, stin.state, stin.receiver_sor, stin.organization) == (
        "STIN",
        "pending",
        mw.SORS["home-0741"],
        "dept-med",
    )
    done = outbox.send_due(world.db)
    assert [(d.header, d.state) for d in done] == [(stin.header_id, "acknowledged")]
    assert _stay(world, rid).state == "admitted"  # the home care unit's list (the same Nær)
    clock.set_clock(NOW + 20 * H)
    leave = _encounter(rid, "p-home", "onleave", statusHistory=[
        {"status": "onleave", "period": {"start": (NOW + 20 * H).isoformat()}}])  # fmt: skip
    store.update(world.db, SYSTEM, "Encounter", rid, leave)
    clock.set_clock(NOW + 30 * H)
    away = {"start": (NOW + 20 * H).isoformat(), "end": (NOW + 30 * H).isoformat()}
    back = _encounter(rid, "p-home", "in-progress", statusHistory=[{"status": "onleave", "period": away}])
    store.update(world.db, SYSTEM, "Encounter", rid, back)
    clock.set_clock(NOW + 50 * H)
    home = _encounter(
        rid, "p-home", "finished", period={"start": NOW.isoformat(), "end": (NOW + 50 * H).isoformat()}
    )
    store.update(world.db, SYSTEM, "Encounter", rid, home)
    outbox.send_due(world.db)
    told = [(m.code, m.state) for m in _sent(world, rid)]
    assert told == [(code, "acknowledged") for code in ("STIN", "STOR", "SLOR", "SLHJ")]
    last = orjson.loads(_sent(world, rid)[-1].body)
    steps = [parts.activity_of(p) for p in parts.entries(last) if p["resourceType"] == "Provenance"]
    assert steps == [
        "admit-inpatient",
        "start-leave-inpatient",
        "end-leave-inpatient",
        "discharge-inpatient-home",
    ]
    assert _stay(world, rid).state == "finished"


def test_a_death_is_mors(world: World) -> None:
    rid = "stay-home-2"
    store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-discharged", "in-progress"))
    person = orjson.loads(store.read(world.db, SYSTEM, "Patient", "p-discharged").content or "{}")
    store.update(
        world.db, SYSTEM, "Patient", "p-discharged", {**person, "deceasedDateTime": (NOW + 5 * H).isoformat()}
    )
    end = {"start": NOW.isoformat(), "end": (NOW + 5 * H).isoformat()}
    store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-discharged", "finished", period=end))
    outbox.send_due(world.db)
    assert [m.code for m in _sent(world, rid)] == ["STIN", "MORS"]
    assert _stay(world, rid).state == "deceased"
    store.update(world.db, SYSTEM, "Patient", "p-discharged", person)


def test_only_hospital_stays_of_citizens_in_home_care_are_told(world: World) -> None:
    store.update(world.db, SYSTEM, "Encounter", "stay-none", _encounter("stay-none", "p-none", "in-progress"))
    assert _sent(world, "stay-none") == []  # no home care: nobody to tell
    acute = _encounter("stay-acute", "p-home", "in-progress", provider="acute-0741")
    store.update(world.db, SYSTEM, "Encounter", "stay-acute", acute)
    assert _sent(world, "stay-acute") == []  # a municipal acute bed is no hospital stay
    visit = _encounter("stay-amb", "p-home", "in-progress", klass="AMB")
    store.update(world.db, SYSTEM, "Encounter", "stay-amb", visit)
    assert _sent(world, "stay-amb") == []  # an outpatient visit is no admission


def test_acute_ambulant_becoming_admitted_is_a_new_stin(world: World) -> None:
    rid = "stay-emer"
    store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-home", "in-progress", klass="EMER"))
    store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-home", "in-progress", klass="IMP"))
    assert [m.code for m in _sent(world, rid)] == ["STAA", "STIN"]


def test_a_notification_rolls_back_with_its_cause(world: World) -> None:
    """The outbox row is written in the Encounter's transaction: a write that fails leaves neither."""
    rid = "stay-rolled-back"
    with pytest.raises(StoreError):
        store.update(world.db, SYSTEM, "Encounter", rid, _encounter(rid, "p-home", "in-progress"), if_match=7)
    assert _sent(world, rid) == []


def test_a_unit_outside_nær_gets_a_file_and_retransmissions_then_a_person_looks(
    world: World, tmp_path: Path
) -> None:
    found = mw.Stay().send("STIN", NOW)
    outside = {**found}
    # the receiver is a unit this Nær does not hold: the hospital writes to it through the VANS folder
    head = outside["entry"][0]["resource"]
    with world.db.begin() as con:
        header = outbox.put(
            con, outside, "hospital-notification", "STIN", "dept-med", "p-home", episode="far"
        )
    with world.db.begin() as con:
        con.execute(message.update().where(message.c.header_id == header).values(receiver_sor=mw.OUTSIDE.sor))
    folder = tmp_path / "vans"
    first = outbox.send_due(world.db, NOW, folder)
    assert [(d.header, d.state) for d in first if d.header == header] == [(header, "sent")]
    files = {p.name for p in folder.iterdir()}
    assert files == {f"{outside['id']}.json"}
    assert outbox.send_due(world.db, NOW + 29 * timedelta(minutes=1), folder) == []  # not yet
    bundles = set()
    for n in (1, 2):
        again = outbox.send_due(world.db, NOW + n * 31 * timedelta(minutes=1), folder)
        assert [(d.state, d.attempts) for d in again if d.header == header] == [("sent", n + 1)]
    for path in folder.iterdir():
        sent = orjson.loads(path.read_bytes())
        bundles.add(sent["id"])
        assert sent["entry"][0]["resource"]["id"] == head["id"]  # the same MessageHeader every time
    assert len(bundles) == 3  # three Bundles
    last = outbox.send_due(world.db, NOW + 100 * timedelta(minutes=1), folder)
    assert [d.state for d in last if d.header == header] == ["attention"]
    assert outbox.retry(world.db, header, NOW + 101 * timedelta(minutes=1))
    outbox.send_due(world.db, NOW + 101 * timedelta(minutes=1), folder)
    answer = ack.build(outside, "ok", [], mw.OUTSIDE, mw.party("dept-med"), NOW + 102 * timedelta(minutes=1))
    assert receive(world.db, orjson.dumps(answer)).acknowledgement is None  # never answered
    with world.db.connect() as con:
        state = con.execute(
            select(message.c.state).where(message.c.header_id == header, message.c.direction == "out")
        ).scalar()
    assert state == "acknowledged"
    assert len({p.name for p in folder.iterdir()}) == 4  # sent again by a person: a fourth Bundle


def test_a_message_that_cannot_go_waits_out_of_the_others_way(world: World, tmp_path: Path) -> None:
    blocked = tmp_path / "file"  # the transport's folder cannot be made: a file is in its place
    blocked.write_text("x")
    waiting = []
    with world.db.begin() as con:
        for _ in range(3):
            found = mw.Stay().send("STIN", NOW)
            header = outbox.put(
                con, found, "hospital-notification", "STIN", "dept-med", "p-home", episode="w"
            )
            con.execute(
                message.update().where(message.c.header_id == header).values(receiver_sor=mw.OUTSIDE.sor)
            )
            waiting.append(header)
        local = outbox.put(con, mw.Stay().send("STIN", NOW), "hospital-notification", "STIN", "dept-med",
                           "p-home", episode="l")  # fmt: skip
    done = {d.header: d.state for d in outbox.send_due(world.db, NOW, blocked / "vans")}
    assert done[local] == "acknowledged"  # the local one went, though the folder could not be written
    assert all(done[h] == "pending" for h in waiting)
    assert not {d.header for d in outbox.send_due(world.db, NOW + timedelta(minutes=1))} & set(waiting)
    later = {
        d.header: d.state for d in outbox.send_due(world.db, NOW + timedelta(minutes=31), tmp_path / "v")
    }
    assert all(later[h] == "sent" for h in waiting)
