"""MedCom messages for the demo: ten days of a hospital department's stays of Samsø citizens in home care,
told to Samsø's home care by HospitalNotification as they happen, and care communications between the
department, home care and the GP.

Everything goes through the platform's own paths: the stays are Encounters written to the store (their
notifications stored in the same transactions by the outbox's listener), sent by the outbox and received
by Samsø's inbox (the same Nær), with the clock standing at each event's hour; the care communications
are written by the demo's people (`naer users demo`). Only `naer messages demo` (`make demo`) calls this.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from naer import clock
from naer.coordination import values as v
from naer.coordination.demo import _context, _encounters
from naer.fhir.systems import ACT_CODE, DISCHARGE_DISPOSITION
from naer.messaging import compose, events, outbox
from naer.store import resources as store
from naer.store.context import SYSTEM

HOME_CARE = "muni-0741-homecare"
STAYS = 12
PHONES = {"overlaege": "78450000", "hjemmesygeplejerske": "87923000", "laege": "86591100"}


def make_demo(db: Engine) -> dict[str, int]:
    """Write the demo's messages; how many of each."""
    events.install()
    physician = _context(db, "overlaege")
    nurse = _context(db, "hjemmesygeplejerske")
    gp = _context(db, "laege")
    department = physician.principal.organization or ""
    now = clock.now()
    rng = random.Random(21)
    at_home = [
        v.ref_id(e.get("subject"), "Patient")
        for e in _encounters(
            db,
            [
                ("status", "in-progress"),
                ("class", f"{ACT_CODE}|HH"),
                ("service-provider", f"Organization/{HOME_CARE}"),
            ],
        )
    ]
    citizens = [p for p in dict.fromkeys(at_home) if p][:STAYS]
    made: dict[str, int] = {}

    def count(what: str, n: int = 1) -> None:
        made[what] = made.get(what, 0) + n

    ended: dict[str, Any] = {}  # each citizen's discharge (None: still in hospital)
    for index, patient in enumerate(citizens):
        start = now - timedelta(days=10 - index * 0.7, hours=rng.randrange(0, 8))
        plan = _plan(index, start, now, still_in=index >= len(citizens) - 3)
        plan = [step for step in plan if step[0] <= now - timedelta(hours=1)] or plan[:1]  # nothing ahead
        ended[patient] = plan[-1][0] if plan[-1][1] == "finished" else None
        rid = f"demo-stay-{index + 1}"
        for moment, status, klass, extra in plan:
            encounter: dict[str, Any] = {
                "resourceType": "Encounter",
                "id": rid,
                "status": status,
                "class": {"system": ACT_CODE, "code": klass},
                "subject": {"reference": f"Patient/{patient}"},
                "serviceProvider": {"reference": f"Organization/{department}"},
                "period": {
                    "start": start.isoformat(),
                    **({"end": moment.isoformat()} if status == "finished" else {}),
                },
                **extra,
            }
            if status == "finished":  # discharged home: the department's 72 hours of responsibility
                home = {"coding": [{"system": DISCHARGE_DISPOSITION, "code": "home"}]}
                encounter["hospitalization"] = {"dischargeDisposition": home}
            with clock.frozen_at(moment):
                store.update(db, SYSTEM, "Encounter", rid, encounter)
                count("stay changes")
                outbox.send_due(db, moment)
    # Care communications: the department writes to home care about the citizen it discharged last
    # (within its 72 hours), the nurse answers; the nurse writes to the GP about another citizen.
    recent = sorted(
        (end, p) for p, end in ended.items() if end is not None and now - end < timedelta(hours=60)
    )
    if recent:
        discharged = recent[-1][1]
        with clock.frozen_at(now - timedelta(hours=6)):
            first = compose.send(
                db, physician, discharged,
                "Udskrevet i går efter pneumoni. Fortsætter penicillin 1 mio. x 4 i fem dage. "
                "Ønsker tilsyn med temperatur og vejrtrækning de første dage; ring ved SAT under 92 %.",
                PHONES["overlaege"], receiver=_sor(db, HOME_CARE), category="discharge",
            )  # fmt: skip
            count("care communications")
        with clock.frozen_at(now - timedelta(hours=2)):
            answer = "Tak. Vi har set borgeren i dag: feberfri, SAT 95 %. Vi følger op i morgen."
            compose.send(
                db, nurse, discharged, answer, PHONES["hjemmesygeplejerske"], answering=("in", first)
            )
            count("care communications")
    if len(citizens) > 1 and gp.principal.organization:
        with clock.frozen_at(now - timedelta(hours=1)):
            compose.send(
                db, nurse, citizens[1], "Borgeren har tiltagende hævede ben og har taget 2 kg på på en uge. "
                "Vil du se på vanddrivende medicin?", PHONES["hjemmesygeplejerske"],
                receiver=_sor(db, gp.principal.organization), category="medicine",
            )  # fmt: skip
            count("care communications")
    return made


def _plan(index: int, start: Any, now: Any, still_in: bool) -> list[tuple[Any, str, str, dict[str, Any]]]:
    """A stay's changes by the hour: most go home within days, some take a leave on the way, one comes
    in acute ambulant and is admitted, and the last three are still in hospital now."""
    h = timedelta(hours=1)
    admitted: tuple[Any, str, str, dict[str, Any]] = (start, "in-progress", "IMP", {})
    if still_in:
        return [admitted]
    if index == 2:  # acute ambulant first, then admitted (a new STIN)
        return [(start, "in-progress", "EMER", {}), (start + 5 * h, "in-progress", "IMP", {}),
                (start + 60 * h, "finished", "IMP", {})]  # fmt: skip
    if index % 4 == 1:  # a leave over a weekend
        away = {"start": (start + 40 * h).isoformat(), "end": (start + 64 * h).isoformat()}
        leaving = {"statusHistory": [{"status": "onleave", "period": {"start": away["start"]}}]}
        back = {"statusHistory": [{"status": "onleave", "period": away}]}
        return [
            admitted,
            (start + 40 * h, "onleave", "IMP", leaving),
            (start + 64 * h, "in-progress", "IMP", back),
            (start + 90 * h, "finished", "IMP", {}),
        ]
    length = min(timedelta(hours=36 + 12 * (index % 5)), now - start - h)
    return [admitted, (start + length, "finished", "IMP", {})]


def _sor(db: Engine, organization: str) -> str:
    org = v.directory(db, "Organization", organization) or {}
    return next(
        (
            str(i.get("value"))
            for i in org.get("identifier", [])
            if i.get("system") == "urn:oid:1.2.208.176.1.1"
        ),
        "",
    )
