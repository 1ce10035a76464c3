"""Turn one chunk's events into FHIR R4 resources, one NDJSON line each, grouped by resource type.

The resources that identify someone (Patient, Practitioner, PractitionerRole, Organization) carry
FHIR's test-data tag (meta.tag v3-ActReason#HTEST); contacts, diagnoses and measurements refer to a
tagged Patient and are not tagged themselves, which keeps the largest files a fifth smaller.

High-volume resources (contacts, diagnoses, measurements) are written from fixed JSON templates whose
values are all ASCII identifiers, codes, dates and numbers; resources with free text (names, addresses)
go through orjson. Tests validate every line with a FHIR library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson

from naer.fhir import cpr
from naer.fhir import systems as S
from naer.synth import fixed
from naer.synth.engine import ACUTE, BIG, ChunkEvents, ChunkSpec, Stay
from naer.synth.model import Model

BATCH = 200_000  # rows rendered at once: bounds a worker's memory


def _coding(system: str, code: str) -> str:
    return '{"coding":[{"system":"%s","code":"%s"}]}' % (system, code)


def _encounter_head(kind: str, cls: str) -> str:
    return (
        '{"resourceType":"Encounter","id":"%s","status":"%s",'
        '"class":{"system":"' + S.ACT_CODE + '","code":"' + cls + '"},'
        '"type":[' + _coding(S.CONTACT_TYPE, kind) + "],"
    )


SUBJECT = '"subject":{"reference":"Patient/%s"},'
PROVIDER = '"serviceProvider":{"reference":"Organization/%s"}}'
GP_MODES = (("gp-consultation", "AMB"), ("gp-phone", "VR"), ("gp-email", "VR"))
PARTICIPANT = '"participant":[{"individual":{"reference":"Practitioner/%s"}}],'

PRIORITY = {ACUTE: _coding(S.ACT_PRIORITY, "EM"), 1: _coding(S.ACT_PRIORITY, "EL")}
DX_ROLE = _coding(S.DIAGNOSIS_ROLE, "DD")
CONDITION_DX = (
    '{"resourceType":"Condition","id":"%s",'
    '"verificationStatus":' + _coding(S.CONDITION_VER_STATUS, "confirmed") + ","
    '"category":[' + _coding(S.CONDITION_CATEGORY, "encounter-diagnosis") + "],"
    '"code":{"coding":[{"system":"' + S.SKS + '","code":"%s"}]},'
    '"subject":{"reference":"Patient/%s"},"encounter":{"reference":"Encounter/%s"},"recordedDate":"%s"}'
)
CONDITION_CHRONIC = (
    '{"resourceType":"Condition","id":"%s",'
    '"clinicalStatus":' + _coding(S.CONDITION_CLINICAL, "active") + ","
    '"verificationStatus":' + _coding(S.CONDITION_VER_STATUS, "confirmed") + ","
    '"category":[' + _coding(S.CONDITION_CATEGORY, "problem-list-item") + "],"
    '"code":{"coding":[{"system":"' + S.SKS + '","code":"%s","display":"%s"}],"text":"%s"},'
    '"subject":{"reference":"Patient/%s"},"onsetDateTime":"%s","recordedDate":"%s"}'
)
VITAL = _coding(S.OBSERVATION_CATEGORY, "vital-signs")
SOCIAL = _coding(S.OBSERVATION_CATEGORY, "social-history")
OBS_HEAD = '{"resourceType":"Observation","id":"%s","status":"final","category":[%s],'
TELE = {
    0: OBS_HEAD
    + '"code":{"coding":[{"system":"'
    + S.LOINC
    + '","code":"29463-7","display":"Body weight"}]},'
    + SUBJECT
    + '"effectiveDateTime":"%s","valueQuantity":{"value":%s,"unit":"kg","system":"'
    + S.UCUM
    + '","code":"kg"}}',
    1: OBS_HEAD + '"code":{"coding":[{"system":"' + S.LOINC + '","code":"59408-5","display":'
    '"Oxygen saturation in Arterial blood by Pulse oximetry"}]},'
    + SUBJECT
    + '"effectiveDateTime":"%s","valueQuantity":{"value":%s,"unit":"%%","system":"'
    + S.UCUM
    + '","code":"%%"}}',
    2: OBS_HEAD + '"code":{"coding":[{"system":"' + S.LOINC + '","code":"85354-9","display":'
    '"Blood pressure panel with all children optional"}]},' + SUBJECT + '"effectiveDateTime":"%s",'
    '"component":[{"code":{"coding":[{"system":"' + S.LOINC + '","code":"8480-6","display":'
    '"Systolic blood pressure"}]},"valueQuantity":{"value":%s,"unit":"mm[Hg]","system":"'
    + S.UCUM
    + '","code":"mm[Hg]"}},{"code":{"coding":[{"system":"'
    + S.LOINC
    + '","code":"8462-4","display":'
    '"Diastolic blood pressure"}]},"valueQuantity":{"value":%s,"unit":"mm[Hg]","system":"'
    + S.UCUM
    + '","code":"mm[Hg]"}}]}',
}
SOCIAL_OBS = {
    0: OBS_HEAD + '"code":{"coding":[{"system":"' + S.LOINC + '","code":"82589-3","display":'
    '"Highest level of education"}]},' + SUBJECT + '"effectiveDateTime":"%s",'
    '"valueCodeableConcept":{"coding":[{"system":"' + S.EDUCATION + '","code":"%s"}]}}',
    1: OBS_HEAD + '"code":{"coding":[{"system":"' + S.SOCIAL + '","code":"income-group","display":'
    '"Household income group (tertile)"}]},' + SUBJECT + '"effectiveDateTime":"%s",'
    '"valueCodeableConcept":{"coding":[{"system":"' + S.INCOME + '","code":"%s"}]}}',
    2: OBS_HEAD + '"code":{"coding":[{"system":"' + S.SOCIAL + '","code":"living-alone","display":'
    '"Lives alone"}]},' + SUBJECT + '"effectiveDateTime":"%s","valueBoolean":%s}',
}
DEPARTMENT_OF_DISEASE = {
    "heart_failure": "cardiology",
    "ischaemic_heart_disease": "cardiology",
    "cancer": "oncology",
}


class Clock:
    """Minutes since the start date -> FHIR dateTime in Danish local time (CET/CEST)."""

    def __init__(self, start: date, days: int) -> None:
        self.start = start
        self.day_str = [(start + timedelta(days=d)).isoformat() for d in range(days + 2)]
        self.offset = [_dk_offset(start + timedelta(days=d)) for d in range(days + 2)]
        self.hm = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

    def at(self, minute: int) -> str:
        d, m = divmod(minute, 1440)
        return f"{self.day_str[d]}T{self.hm[m]}{self.offset[d]}"

    def day(self, day: int) -> str:
        if 0 <= day < len(self.day_str):
            return self.day_str[day]
        return (self.start + timedelta(days=int(day))).isoformat()


def _dk_offset(day: date) -> str:
    """Danish summer time runs from the last Sunday of March to the last Sunday of October."""

    def last_sunday(month: int) -> date:
        d = date(day.year, month, 31)
        return d - timedelta(days=(d.weekday() + 1) % 7)

    return "+02:00" if last_sunday(3) <= day < last_sunday(10) else "+01:00"


def write_chunk(
    model: Model,
    spec: ChunkSpec,
    ev: ChunkEvents,
    sink: Callable[[str, bytes | memoryview], None],
    municipality_names: dict[str, str],
) -> dict[str, int]:
    """Write every resource of a chunk through ``sink(resource_type, lines)``; return counts."""
    clock = Clock(spec.start, ev.end_day)
    prefix = f"{spec.municipality.code}-{spec.chunk}"
    people = ev.people
    n = len(people["birth"])
    pids = [f"pat-{prefix}-{i:06d}" for i in range(n)]
    counts: dict[str, int] = {}

    def put(kind: str, lines: list[str]) -> None:
        if lines:
            put_bytes(kind, ("\n".join(lines) + "\n").encode(), len(lines))

    def put_bytes(kind: str, data: bytes | memoryview, n: int) -> None:
        if n:
            sink(kind, data)
            counts[kind] = counts.get(kind, 0) + n

    put("Patient", _patients(model, spec, ev, pids, clock, municipality_names))
    put("Condition", _chronic(model, ev, pids, clock))
    enc_lines, dx_lines = _encounters(model, spec, ev, pids, clock, prefix, put_bytes)
    put("Encounter", enc_lines)
    put("Condition", dx_lines)
    put("Observation", _observations(model, ev, pids, clock, prefix))
    truth = ev.truth
    put(
        "truth",
        [
            f"{pids[p]},{y},{h:.6f},{-math.expm1(-h):.6f},{z:.4f},{u}"
            for p, y, h, z, u in zip(
                truth["person"].tolist(),
                truth["year"].tolist(),
                (truth["hazard"].astype(np.float64)).tolist(),
                (truth["frailty"].astype(np.float64)).tolist(),
                truth["unstable"].tolist(),
                strict=True,
            )
        ],
    )
    return counts


def _patients(
    model: Model,
    spec: ChunkSpec,
    ev: ChunkEvents,
    pids: list[str],
    clock: Clock,
    municipality_names: dict[str, str],
) -> list[str]:
    p = ev.people
    names = model.names
    female_names, male_names = list(names["female"]), list(names["male"])
    families, streets = list(names["family"]), names["streets"]
    mun = spec.municipality
    orgs = spec.orgs
    serial_counter: dict[tuple[int, int], int] = {}
    n_layers = max(1, math.ceil(spec.n_chunks / 100))
    layer = spec.global_index // 100
    lines = []
    for i in range(len(pids)):
        birth_day = int(p["birth"][i])
        born = spec.start + timedelta(days=birth_day)
        sex = "female" if p["sex"][i] == 1 else "male"
        key = (birth_day, int(p["sex"][i]))
        count = serial_counter.get(key, 0)
        serial_counter[key] = count + 1
        digits = cpr.century_digits(born.year)
        slot = layer + (count // 5) * n_layers
        if slot >= len(digits):
            raise RuntimeError(f"synthetic CPR numbers exhausted for {born} in chunk {spec.global_index}")
        number = cpr.synthetic(born, sex, spec.global_index % 100 + 100 * (count % 5), digits[slot])
        home = int(p["address_of"][i]) if p["address_of"][i] >= 0 else i
        entry = int(p["entry"][i])
        exit_day = int(p["exit"][i])
        moved = p["exit_reason"][i] == 2 and exit_day < ev.end_day
        address: dict[str, Any] = {
            "use": "home",
            "line": [f"{streets[int(p['street'][home])]} {int(p['house'][home])}"],
            "city": mun.name,
            "postalCode": mun.postal[int(p["postal"][home])],
            "country": "DK",
            "extension": [_municipality_ext(mun.code)],
        }
        period: dict[str, str] = {}
        if entry > 0 or p["born_here"][i]:
            period["start"] = clock.day(entry)
        if moved:
            period["end"] = clock.day(exit_day)
        if period:
            address["period"] = period
        addresses = [address]
        if moved and spec.other_municipalities:
            code = spec.other_municipalities[int(p["moved_to"][i])]
            addresses.append(
                {
                    "use": "home",
                    "city": municipality_names.get(code, code),
                    "country": "DK",
                    "extension": [_municipality_ext(code)],
                    "period": {"start": clock.day(exit_day)},
                }
            )
        given = (female_names if sex == "female" else male_names)[int(p["given"][i])]
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": pids[i],
            "meta": {"tag": [S.SYNTHETIC_TAG]},
            "identifier": [{"system": S.CPR, "value": number.replace("-", "")}],
            "name": [{"use": "official", "family": families[int(p["family"][i])], "given": [given]}],
            "gender": sex,
            "birthDate": born.isoformat(),
            "address": addresses,
            "generalPractitioner": [{"reference": f"Organization/{orgs.clinics[int(p['clinic'][i])]}"}],
        }
        if p["exit_reason"][i] == 1 and exit_day < ev.end_day:
            resource["deceasedDateTime"] = clock.at(exit_day * 1440 + 600)
        lines.append(orjson.dumps(resource).decode())
    return lines


def _municipality_ext(code: str) -> dict[str, Any]:
    return {
        "url": S.MUNICIPALITY_EXTENSION,
        "valueCodeableConcept": {"coding": [{"system": S.MUNICIPALITY_CODES, "code": code}]},
    }


def _chronic(model: Model, ev: ChunkEvents, pids: list[str], clock: Clock) -> list[str]:
    lines = []
    stop = np.minimum(ev.people["exit"], ev.end_day)
    for d, dis in enumerate(model.diseases):
        onset = ev.onset[d]
        for i in np.flatnonzero((onset < BIG) & (onset < stop)).tolist():
            code = dis.codes[int(ev.disease_code[d, i])]
            day = clock.day(int(onset[i]))
            recorded = clock.day(max(int(onset[i]), int(ev.people["entry"][i])))
            lines.append(
                CONDITION_CHRONIC
                % (
                    f"{pids[i]}-{dis.key.replace('_', '-')}",
                    code,
                    dis.name,
                    dis.name,
                    pids[i],
                    day,
                    recorded,
                )
            )
    return lines


def _period(clock: Clock, start: int, end: int, end_minute: int) -> tuple[str, str]:
    """Status and period JSON; a contact still open at the end of the data set has no end."""
    if end < 0 or end >= end_minute:
        return "in-progress", '"period":{"start":"%s"},' % clock.at(start)
    return "finished", '"period":{"start":"%s","end":"%s"},' % (clock.at(start), clock.at(end))


def _encounters(
    model: Model,
    spec: ChunkSpec,
    ev: ChunkEvents,
    pids: list[str],
    clock: Clock,
    prefix: str,
    put_bytes: Callable[[str, bytes | memoryview, int], None],
) -> tuple[list[str], list[str]]:
    orgs = spec.orgs
    end_minute = ev.end_day * 1440
    clinic = ev.people["clinic"]
    enc: list[str] = []
    dx: list[str] = []
    serial = 0

    def next_id() -> str:
        nonlocal serial
        serial += 1
        return f"enc-{prefix}-{serial:07d}"

    # GP contacts (consultation AMB; phone and e-mail VR), out-of-hours and outpatient visits are
    # most of the data: rendered as fixed-width byte matrices, in batches (synth/fixed.py).
    offsets = np.asarray(clock.offset, dtype="S6")
    code = spec.municipality.code

    def bulk(template: str, slots: list[Any], minutes: np.ndarray, length: int) -> None:
        nonlocal serial
        pieces = fixed.split_template(template, len(slots))
        for lo in range(0, len(minutes), BATCH):
            rows = slice(lo, lo + BATCH)
            n_rows = len(minutes[rows])
            numbers = np.arange(serial + 1, serial + 1 + n_rows)
            serial += n_rows
            columns: list[fixed.Piece] = []
            for piece, slot in zip(pieces, [*slots, None], strict=True):
                columns.append(piece)
                if slot is None:
                    continue
                if slot == "id":
                    columns += [f"enc-{prefix}-".encode(), fixed.digits(numbers, 7)]
                elif slot == "start":
                    columns.append(fixed.timestamps(clock.start, minutes[rows], offsets))
                elif slot == "end":
                    columns.append(fixed.timestamps(clock.start, minutes[rows] + length, offsets))
                else:  # a list of pieces with per-row columns given for all rows
                    columns += [c if isinstance(c, bytes) else c[rows] for c in slot]
            put_bytes("Encounter", fixed.render(columns, n_rows), n_rows)

    gp = ev.bulk["gp"]
    keep = gp["minute"] + 15 < end_minute
    docs = orgs.clinic_practitioners
    sizes = np.asarray([len(d) for d in docs])
    for mode, (kind, cls) in enumerate(GP_MODES):
        sel = keep & (gp["mode"] == mode)
        person, minute = gp["person"][sel], gp["minute"][sel]
        c = clinic[person].astype(np.int64)
        patient = [f"pat-{prefix}-".encode(), fixed.digits(person, 6)]
        provider = [f"gp-{code}-".encode(), fixed.digits(c + 1, 3)]
        period = '"period":{"start":"%s","end":"%s"},'
        if mode == 0:
            doc = [
                f"gpdoc-{code}-".encode(),
                fixed.digits(c + 1, 3),
                b"-",
                fixed.digits((person + minute) % sizes[c] + 1, 1),
            ]
            template = (
                _encounter_head(kind, cls) % ("%s", "finished") + SUBJECT + PARTICIPANT + period + PROVIDER
            )
            bulk(template, ["id", patient, doc, "start", "end", provider], minute, 15)
        else:
            template = _encounter_head(kind, cls) % ("%s", "finished") + SUBJECT + period + PROVIDER
            bulk(template, ["id", patient, "start", "end", provider], minute, 5)

    # Out-of-hours service (lægevagt): two thirds by phone.
    ooh = ev.bulk["ooh"]
    keep = ooh["minute"] + 20 < end_minute
    phone = (ooh["minute"] + ooh["person"]) % 3 != 0
    ooh_org = orgs.out_of_hours_id
    for cls, sel in (("AMB", keep & ~phone), ("VR", keep & phone)):
        person, minute = ooh["person"][sel], ooh["minute"][sel]
        template = (
            _encounter_head("out-of-hours", cls) % ("%s", "finished")
            + SUBJECT
            + '"period":{"start":"%s","end":"%s"},'
            + PROVIDER % ooh_org
        )
        bulk(
            template,
            ["id", [f"pat-{prefix}-".encode(), fixed.digits(person, 6)], "start", "end"],
            minute,
            20,
        )

    # ED visits without admission.
    ed = ev.bulk["ed"]
    ed_head = _acute_with_diagnosis("ed-visit", "EMER")
    emergency = orgs.department_ids["emergency"]
    for person, minute, code in zip(
        ed["person"].tolist(), ed["minute"].tolist(), ed["code"].tolist(), strict=True
    ):
        end = minute + 120 + (person * 7 + minute) % 240
        if end >= end_minute:
            continue
        eid = next_id()
        _, period = _period(clock, minute, end, end_minute)
        enc.append(ed_head % (eid, "finished", pids[person], period, f"{eid}-dx", emergency))
        dx.append(
            CONDITION_DX % (f"{eid}-dx", ev.ed_codes[code], pids[person], eid, clock.day(minute // 1440))
        )

    # Outpatient visits: for a chronic disease (its Condition is the diagnosis) or other reasons.
    out = ev.bulk["outpatient"]
    diseases = model.diseases
    onset = ev.onset
    keep = out["minute"] + 45 < end_minute
    disease = out["disease"].astype(np.int64)
    known = disease >= 0
    diagnosed = np.zeros(len(disease), dtype=bool)
    diagnosed[known] = onset[disease[known], out["person"][known]] <= out["minute"][known] // 1440
    period = '"period":{"start":"%s","end":"%s"},'
    head = _encounter_head("outpatient", "AMB") % ("%s", "finished") + SUBJECT + period
    for d, dis in enumerate(diseases):
        sel = keep & (disease == d) & diagnosed
        person, minute = out["person"][sel], out["minute"][sel]
        dept = (
            dis.outpatient_department
            if dis.outpatient_department == "psychiatry"
            else DEPARTMENT_OF_DISEASE.get(dis.key, "medicine")
        )
        org = orgs.psychiatry_id if dept == "psychiatry" else orgs.department_ids[dept]
        template = (
            head
            + '"diagnosis":[{"condition":{"reference":"Condition/%s"},"use":'
            + DX_ROLE
            + ',"rank":1}],'
            + PROVIDER % org
        )
        cond = [
            f"pat-{prefix}-".encode(),
            fixed.digits(person, 6),
            f"-{dis.key.replace('_', '-')}".encode(),
        ]
        bulk(
            template,
            ["id", [f"pat-{prefix}-".encode(), fixed.digits(person, 6)], "start", "end", cond],
            minute,
            45,
        )
    sel = keep & ~diagnosed
    person, minute = out["person"][sel], out["minute"][sel]
    bulk(
        head + PROVIDER % orgs.department_ids["medicine"],
        ["id", [f"pat-{prefix}-".encode(), fixed.digits(person, 6)], "start", "end"],
        minute,
        45,
    )

    # Hospital stays (admissions; a transfer gives two stays, the second partOf the first).
    stay_ids: list[str] = []
    for stay in ev.stays:
        eid = next_id()
        stay_ids.append(eid)
        enc.append(_stay(stay, eid, stay_ids, pids, clock, end_minute, diseases, ev, model))
        dx.append(
            CONDITION_DX
            % (f"{eid}-dx", stay.main_code, pids[stay.person], eid, clock.day(stay.start // 1440))
        )

    # Municipal episodes: home care (HH), rehabilitation (AMB), acute beds (IMP).
    bed_head = _acute_with_diagnosis("acute-bed", "IMP")
    kinds = {
        "homecare": ("home-care", "HH"),
        "rehab": ("rehabilitation", "AMB"),
        "acutebed": ("acute-bed", "IMP"),
    }
    for ep in ev.episodes:
        if ep.start >= end_minute:
            continue
        kind, cls = kinds[ep.kind]
        status, period = _period(clock, ep.start, ep.end, end_minute)
        unit = orgs.units["acutebeds" if ep.kind == "acutebed" else ep.kind]
        eid = next_id()
        if ep.kind == "acutebed":
            enc.append(bed_head % (eid, status, pids[ep.person], period, f"{eid}-dx", unit))
            dx.append(
                CONDITION_DX % (f"{eid}-dx", ep.code, pids[ep.person], eid, clock.day(ep.start // 1440))
            )
        else:
            head = _encounter_head(kind, cls) + SUBJECT + "%s" + PROVIDER
            enc.append(head % (eid, status, pids[ep.person], period, unit))
    return enc, dx


def _acute_with_diagnosis(kind: str, cls: str) -> str:
    """Template of an acute contact with one main diagnosis: id, status, patient, period, condition,
    provider."""
    return (
        _encounter_head(kind, cls)
        + '"priority":'
        + PRIORITY[ACUTE]
        + ","
        + SUBJECT
        + '%s"diagnosis":[{"condition":{"reference":"Condition/%s"},"use":'
        + DX_ROLE
        + ',"rank":1}],'
        + PROVIDER
    )


def _stay(
    stay: Stay,
    eid: str,
    stay_ids: list[str],
    pids: list[str],
    clock: Clock,
    end_minute: int,
    diseases: Any,
    ev: ChunkEvents,
    model: Model,
) -> str:
    kind = "acute-admission" if stay.kind == ACUTE else "planned-admission"
    status, period = _period(clock, stay.start, stay.end, end_minute)
    diagnosis = ['{"condition":{"reference":"Condition/%s-dx"},"use":%s,"rank":1}' % (eid, DX_ROLE)]
    for rank, d in enumerate(stay.diseases, start=2):
        key = diseases[d].key.replace("_", "-")
        diagnosis.append(
            '{"condition":{"reference":"Condition/%s-%s"},"use":%s,"rank":%d}'
            % (pids[stay.person], key, DX_ROLE, rank)
        )
    hosp = '"hospitalization":{"admitSource":' + _coding(S.ADMIT_SOURCE, stay.admit_source)
    if status == "finished":
        hosp += ',"dischargeDisposition":' + _coding(S.DISCHARGE_DISPOSITION, stay.disposition)
    hosp += "},"
    part_of = '"partOf":{"reference":"Encounter/%s"},' % stay_ids[stay.part_of] if stay.part_of >= 0 else ""
    return (
        _encounter_head(kind, "IMP") % (eid, status)
        + '"priority":'
        + PRIORITY[stay.kind]
        + ","
        + SUBJECT % pids[stay.person]
        + period
        + '"diagnosis":['
        + ",".join(diagnosis)
        + "],"
        + hosp
        + part_of
        + PROVIDER % stay.department
    )


def _observations(model: Model, ev: ChunkEvents, pids: list[str], clock: Clock, prefix: str) -> list[str]:
    lines: list[str] = []
    serial = 0
    stop = np.minimum(ev.people["exit"], ev.end_day)
    edu_groups = model.social["education"]["groups"]
    inc_groups = model.social["income_labels"]
    soc = ev.social
    for person, day, kind, value in zip(
        soc["person"].tolist(),
        soc["day"].tolist(),
        soc["kind"].tolist(),
        soc["value"].tolist(),
        strict=True,
    ):
        if day >= stop[person]:
            continue
        serial += 1
        oid = f"obs-{prefix}-{serial:07d}"
        shown = (
            edu_groups[value]
            if kind == 0
            else inc_groups[value]
            if kind == 1
            else ("true" if value else "false")
        )
        lines.append(SOCIAL_OBS[kind] % (oid, SOCIAL, pids[person], clock.day(day), shown))
    tele = ev.tele
    end_minute = ev.end_day * 1440
    for person, minute, kind, value, value2 in zip(
        tele["person"].tolist(),
        tele["minute"].tolist(),
        tele["kind"].tolist(),
        tele["value"].tolist(),
        tele["value2"].tolist(),
        strict=True,
    ):
        if minute >= min(int(stop[person]) * 1440, end_minute):
            continue
        serial += 1
        oid = f"obs-{prefix}-{serial:07d}"
        shown = f"{value:g}" if kind == 0 else f"{int(value)}"
        if kind == 2:
            lines.append(TELE[2] % (oid, VITAL, pids[person], clock.at(minute), int(value), int(value2)))
        else:
            lines.append(TELE[kind] % (oid, VITAL, pids[person], clock.at(minute), shown))
    return lines
