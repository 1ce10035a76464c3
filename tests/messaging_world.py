"""The workflow tests' small Samsø (tests/coordination_world.py) with what messaging needs: SOR codes on
the organisations, CPR numbers on the citizens, and helpers that build the messages the hospital and
the municipality send each other.

- ``dept-med`` (Aarhus Universitetshospital, medical department) sends HospitalNotifications to
  ``home-0741`` (Samsø's home care), which serves ``p-home`` (home care) and not ``p-none`` (who lives
  in Odder and has no relation with Samsø).
- ``outside`` is a hospital unit Nær does not hold (a sender from elsewhere).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from naer.access import accounts, tokens
from naer.fhir.systems import CPR, SOR
from naer.messaging import carecommunication as cc
from naer.messaging import notification as hn
from naer.messaging import parts
from naer.store import resources as store
from naer.store.context import SYSTEM
from tests.coordination_world import NOW, World

SORS = {
    "dept-med": "265161000016000",
    "dept-geri": "265171000016001",
    "home-0741": "953741000016009",
    "home-0727": "953751000016002",
    "acute-0741": "953761000016005",
    "gp-0741": "123451000016003",
}
CPRS = {
    "p-home": "2509479989",
    "p-none": "0101401234",
    "p-admitted": "0202402345",
    "p-discharged": "0303403456",
}
OUTSIDE = parts.Party("111111000016001", parts.synthetic_gln("111111000016001"), "Et andet hospital")


def party(org: str) -> parts.Party:
    return parts.Party(SORS[org], parts.synthetic_gln(SORS[org]), org)


def citizen(patient: str) -> parts.Citizen:
    return parts.Citizen(CPRS[patient], patient.title(), ("Test",))


def prepare(world: World) -> None:
    """Give the world's organisations their SOR codes and its citizens their CPR numbers, and register
    the message gateway as a system client (``gateway``)."""
    accounts.add(world.db, "gateway", "MedCom gateway", "system", password=None, scopes="system/*.cruds")
    world.tokens["gateway"] = tokens.issue("gateway", "system/*.cruds", 7 * 24 * 60)
    for org, sor in SORS.items():
        found = orjson.loads(store.read(world.db, SYSTEM, "Organization", org).content or "{}")
        found["identifier"] = [*found.get("identifier", []), {"system": SOR, "value": sor}]
        store.update(world.db, SYSTEM, "Organization", org, found)
    for patient, cpr in CPRS.items():
        found = orjson.loads(store.read(world.db, SYSTEM, "Patient", patient).content or "{}")
        found["identifier"] = [{"system": CPR, "value": cpr}]
        store.update(world.db, SYSTEM, "Patient", patient, found)


class Stay:
    """A stay at ``dept-med`` told to ``home-0741`` notification by notification, as the hospital would."""

    def __init__(self, patient: str = "p-home", klass: str = "IMP", start: datetime = NOW) -> None:
        self.patient = patient
        self.stay = hn.Stay(episode=parts.new_id(), klass=klass, start=start)
        self.sender = party("dept-med")
        self.receiver = party("home-0741")

    def send(self, code: str, at: datetime, **changes: Any) -> dict[str, Any]:
        stay = hn.Stay(**{**self.stay.__dict__, **changes})
        message = hn.build(code, self.sender, self.receiver, citizen(self.patient), stay, at,
                           reason=changes.pop("reason", None) if "reason" in changes else None)  # fmt: skip
        kind = hn.kinds()[code]
        step = hn.Step(message["entry"][0]["resource"]["id"], kind.activities[stay.klass], at, self.sender)
        self.stay = hn.Stay(
            **{**stay.__dict__, "history": (*stay.history, step), "state": kind.states[stay.klass]}
        )
        return message


def care_message(patient: str = "p-home", text: str = "Hvordan går det?") -> dict[str, Any]:
    author = cc.Author("Hanne", "Hansen", "overlaege", "87654321")
    sender, receiver = party("dept-med"), party("home-0741")
    thread = cc.Thread(identifier=cc.segment_id(), category="carecoordination")
    message, _ = cc.build("new", thread, [cc.text_segment(text, author, sender, NOW)], sender, receiver,
                          citizen(patient), NOW)  # fmt: skip
    return message


HOUR = timedelta(hours=1)
