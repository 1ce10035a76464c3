"""How pages name a citizen: the name as the Patient gives it, and the CPR number (DK Core's identifier)."""

from __future__ import annotations

from typing import Any

from naer.fhir.systems import CPR


def name_of(patient: dict[str, Any]) -> str:
    """Given names then family name of the first name (Danish order), or '' when there is none."""
    first = (patient.get("name") or [{}])[0] or {}
    parts = [*(first.get("given") or []), first.get("family") or ""]
    return " ".join(str(p) for p in parts if p).strip()


def cpr_of(patient: dict[str, Any]) -> str:
    """The CPR number as Danes write it (DDMMYY-SSSS), or '' when the Patient has none."""
    number = next(
        (str(i.get("value", "")) for i in patient.get("identifier") or [] if i.get("system") == CPR), ""
    )
    digits = number.replace("-", "")
    return f"{digits[:6]}-{digits[6:]}" if len(digits) == 10 and digits.isdigit() else number
