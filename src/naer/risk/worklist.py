"""Worklists: for each GP clinic and each municipality, the citizens most at risk (the top N, or everyone
above a probability), each with the reasons in plain words and a suggested proactive action from the rules in
actions.yaml; as rows for a page or a file, and as FHIR Task resources for the people who act on them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import yaml

from naer.errors import UserError
from naer.risk.explain import _check_when, holds, reasons
from naer.risk.model import Model, population_features

HERE = Path(__file__).parent
TASK_IDENTIFIER = "https://naer.example.org/fhir/NamingSystem/risk-worklist-task"
ACTION_SYSTEM = "https://naer.example.org/fhir/CodeSystem/proactive-action"


@cache
def rules() -> list[dict[str, Any]]:
    """actions.yaml, checked; the last rule must hold for everyone, so that every citizen gets an action."""
    data: list[dict[str, Any]] = yaml.safe_load((HERE / "actions.yaml").read_text(encoding="utf-8"))["rules"]
    known = set(population_features())
    for rule in data:
        where = f"actions.yaml {rule.get('id', '?')}"
        if set(rule) != {"id", "when", "action", "action_da", "owner", "within_days", "priority"}:
            raise UserError(
                f"{where}: a rule has id, when, action, action_da, owner, within_days and priority"
            )
        if rule["owner"] not in ("gp", "municipality"):
            raise UserError(f"{where}: owner must be gp or municipality, not {rule['owner']!r}")
        if rule["priority"] not in ("routine", "urgent", "asap", "stat"):
            raise UserError(f"{where}: priority {rule['priority']!r} is not a FHIR request priority")
        _check_when(where, rule["when"] or {}, known)
    if not data or data[-1]["when"]:
        raise UserError("actions.yaml: the last rule must have an empty `when` (everyone else)")
    return data


def organizations(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """The organisations a worklist can be for: GP clinics by id, municipalities by id and by code."""
    found: dict[str, dict[str, Any]] = {}
    for oid, name, kind, code in con.execute(
        "SELECT id, name, kind, municipality_code FROM organization "
        "WHERE kind IN ('gp-clinic', 'municipality')"
    ).fetchall():
        entry = {"id": oid, "name": name, "kind": kind, "municipality_code": code}
        found[oid] = entry
        if kind == "municipality" and code:
            found.setdefault(code, entry)
    return found


def _municipality_orgs(orgs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Municipality code -> its Organization id."""
    return {e["municipality_code"]: e["id"] for e in orgs.values() if e["kind"] == "municipality"}


def _codes(asked: list[str], orgs: dict[str, dict[str, Any]]) -> set[str]:
    known = set(_municipality_orgs(orgs))
    codes = {raw.strip().zfill(4) for raw in asked}
    unknown = sorted(codes - known)
    if unknown:
        raise UserError(
            f"--living-in {', '.join(unknown)}: no municipality with that code in the data "
            f"({len(known)} known)"
        )
    return codes


def check_limits(top: int | None, threshold: float | None) -> None:
    """Either a top N or a probability threshold, each in range (checked before any data is read)."""
    if (top is None) == (threshold is None):
        raise UserError("give either --top N or --threshold P")
    if top is not None and top < 1:
        raise UserError(f"--top {top}: give a positive number of citizens")
    if threshold is not None and not 0 < threshold < 1:
        raise UserError(f"--threshold {threshold}: give a probability between 0 and 1")


def select(
    population: pa.Table,
    probability: np.ndarray,
    top: int | None,
    threshold: float | None,
    only: list[str] | None,
    orgs: dict[str, dict[str, Any]],
    living_in: list[str] | None = None,
) -> dict[int, list[str]]:
    """Rows selected, each with the lists (organisation ids) it is on: per GP clinic and per municipality the
    top ``top`` by probability, or everyone at or above ``threshold``. ``living_in``: only the citizens
    living in these municipalities (codes), for example a site's own when the data hold its peers too."""
    check_limits(top, threshold)
    places_kept = _codes(living_in, orgs) if living_in else None
    wanted: set[str] | None = None
    if only:
        unknown = [o for o in only if o not in orgs]
        if unknown:
            raise UserError(
                f"unknown organisation {', '.join(unknown)}: give the id of a GP clinic or a municipality "
                f"Organization, or a municipality code ({len(orgs)} known in the data)"
            )
        wanted = {orgs[o]["id"] for o in only}
    municipality_org = _municipality_orgs(orgs)
    lists: dict[str, list[int]] = {}
    clinics = population.column("gp_clinic_id").to_pylist()
    places = population.column("municipality_code").to_pylist()
    for i, (clinic, place) in enumerate(zip(clinics, places, strict=True)):
        if places_kept is not None and place not in places_kept:
            continue
        for org in (clinic if clinic in orgs else None, municipality_org.get(place)):
            if org is not None and (wanted is None or org in wanted):
                lists.setdefault(org, []).append(i)
    if not lists and wanted is None:  # data without GP clinics or municipalities (other generators): one list
        lists["all"] = list(range(population.num_rows))
    chosen: dict[int, list[str]] = {}
    for org, rows in sorted(lists.items()):
        index = np.asarray(rows)
        ranked = index[np.argsort(-probability[index], kind="stable")]
        keep = ranked[:top] if top is not None else ranked[probability[ranked] >= (threshold or 0)]
        for i in keep.tolist():
            chosen.setdefault(i, []).append(org)
    return chosen


def rows(
    population: pa.Table,
    probability: np.ndarray,
    model: Model,
    chosen: dict[int, list[str]],
    orgs: dict[str, dict[str, Any]],
    reference: date,
) -> list[dict[str, Any]]:
    """The worklist rows of the chosen citizens, highest risk first."""
    order = sorted(chosen, key=lambda i: -probability[i])
    if not order:
        return []
    picked = population.take(pa.array(order))
    records = picked.to_pylist()
    contributions = model.contributions(picked)
    said = reasons(model, contributions, records)
    said_da = reasons(model, contributions, records, lang="da")
    # how many citizens have a higher risk: the rank that says "top 0.4 %"
    rank = len(probability) - np.searchsorted(np.sort(probability), probability[order], side="right")
    municipality_org = _municipality_orgs(orgs)
    out = []
    for k, (i, record, why, why_da) in enumerate(zip(order, records, said, said_da, strict=True)):
        rule = next(r for r in rules() if holds(r["when"] or {}, record))
        owner = (
            record["gp_clinic_id"]
            if rule["owner"] == "gp"
            else municipality_org.get(record["municipality_code"])
        )
        out.append(
            {
                "patient_id": record["patient_id"],
                "probability": float(probability[i]),
                "top_percent": float(100 * (int(rank[k]) + 1) / len(probability)),
                "age": record["age"],
                "sex": record["sex"],
                "municipality_code": record["municipality_code"],
                "gp_clinic_id": record["gp_clinic_id"],
                "gp_clinic_name": orgs.get(record["gp_clinic_id"] or "", {}).get("name"),
                "municipality_name": orgs.get(record["municipality_code"] or "", {}).get("name"),
                "lists": chosen[i],
                "reasons": why,
                "reasons_da": why_da,
                "rule": rule["id"],
                "action": rule["action"],
                "action_da": rule["action_da"],
                "made": reference.isoformat(),
                "owner": rule["owner"],
                "owner_id": owner,
                "priority": rule["priority"],
                "due": (reference + timedelta(days=int(rule["within_days"]))).isoformat(),
            }
        )
    return out


def _percent(p: float) -> str:
    """A probability as a Danish percentage (23 %, 0,4 %)."""
    return (f"{100 * p:.0f} %" if p >= 0.01 else f"{100 * p:.1f} %").replace(".", ",")


def tasks(worklist: list[dict[str, Any]], reference: date) -> list[dict[str, Any]]:
    """One FHIR R4 Task per citizen: a proposal to its owner, with the risk, the reasons and a deadline, in
    Danish for the Danish GP clinic or municipality that acts on it (the action's English name is the
    coding's display); its identifier (reference day, citizen, rule) makes publishing it twice create it
    once."""
    out = []
    for n, row in enumerate(worklist, 1):
        said = row.get("reasons_da") or row["reasons"]
        why = "; ".join(said) or "ingen enkelt faktor skiller sig ud"
        top = f"{max(row['top_percent'], 0.1):.1f}".replace(".", ",")
        task: dict[str, Any] = {
            "resourceType": "Task",
            "id": f"risk-{reference:%Y%m%d}-{n:06d}",
            "identifier": [
                {
                    "system": TASK_IDENTIFIER,
                    "value": f"{reference.isoformat()}/{row['patient_id']}/{row['rule']}",
                }
            ],
            "status": "requested",
            "intent": "proposal",
            "priority": row["priority"],
            "code": {
                "coding": [{"system": ACTION_SYSTEM, "code": row["rule"], "display": row["action"]}],
                "text": row.get("action_da") or row["action"],
            },
            "description": (
                f"Risiko for en akut indlæggelse inden for 12 måneder: {_percent(row['probability'])} "
                f"(blandt de øverste {top} % af borgerne). Hvorfor: {why}."
            ),
            "for": {"reference": f"Patient/{row['patient_id']}"},
            "authoredOn": f"{reference.isoformat()}T00:00:00+01:00",
            "requester": {"display": "Nær risikostratificering"},
            "restriction": {"period": {"end": f"{row['due']}T23:59:59+01:00"}},
            "reasonCode": {"text": "Risiko for akut indlæggelse inden for 12 måneder (forebyggende liste)"},
            "note": [{"text": reason} for reason in said],
            "input": [
                {
                    "type": {"text": "sandsynlighed for en akut indlæggelse inden for 12 måneder"},
                    "valueDecimal": round(row["probability"], 4),
                }
            ],
        }
        if row["owner_id"]:
            task["owner"] = {"reference": f"Organization/{row['owner_id']}"}
        out.append(task)
    return out


def publish(
    task_list: list[dict[str, Any]], base: str, timeout: float = 120, token: str | None = None
) -> dict[str, int]:
    """Send the Tasks to a running Nær (or any FHIR R4 server) as one transaction of conditional creates, so
    a worklist published twice is stored once; all or nothing."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, t['identifier'][0]['value'])}",
                "resource": {k: v for k, v in t.items() if k != "id"},
                "request": {
                    "method": "POST",
                    "url": "Task",
                    "ifNoneExist": f"identifier={TASK_IDENTIFIER}|{t['identifier'][0]['value']}",
                },
            }
            for t in task_list
        ],
    }
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base.rstrip("/"), data=json.dumps(bundle).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise UserError(f"the FHIR server at {base} refused the Tasks ({error.code}): {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise UserError(f"cannot reach a FHIR server at {base}: {error}") from None
    statuses = [e.get("response", {}).get("status", "") for e in answer.get("entry", [])]
    return {
        "created": sum(s.startswith("201") for s in statuses),
        "existing": sum(s.startswith("200") for s in statuses),
    }
