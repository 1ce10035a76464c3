"""Validate FHIR R4 resources with fhir.resources' R4B models.

fhir.resources 7+ ships R5 and R4B models but not plain R4 (4.0.1). R4B (4.3.0) changed no element of
the resource types Nær writes (Patient, Organization, Practitioner, PractitionerRole, Encounter,
Condition, Observation); docs/fhir-validation.md lists what differs elsewhere and what the library does
not check (required value-set bindings, invariants), and how Nær covers those gaps.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from naer.fhir import null_check

null_check.install()  # the library's own null check by a faster route (null_check.py says why)

# Types that exist in R4 but not in R4B, or whose R4B shape differs from R4 (none of them are written
# by Nær today; listed so that a future writer of these types knows to check by hand).
R4B_DIFFERS_FROM_R4 = frozenset(
    {
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "SubstanceSpecification",
        "EffectEvidenceSynthesis",
        "RiskEvidenceSynthesis",
        "Subscription",
        "Evidence",
        "EvidenceVariable",
    }
)


def validation_errors(resource: dict[str, Any]) -> list[str]:
    """Every problem the FHIR library finds in ``resource``, as ``path: message`` lines."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return ["resourceType: missing"]
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return [f"resourceType: unknown resource type {kind!r}"]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [f"{kind}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    return []


@cache
def is_resource_type(name: str) -> bool:
    """True for a concrete FHIR resource type (``Patient``), not a data type or an abstract base."""
    if name in ("Resource", "DomainResource"):
        return False
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        return False
    return any(base.__name__ == "FHIRResourceModel" for base in model.__mro__)


@cache
def resource_types() -> tuple[str, ...]:
    """Every resource type the FHIR models know, sorted (for the CapabilityStatement)."""
    import importlib
    import pkgutil

    import fhir.resources.R4B as package

    names = []
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        names += [n for n in dir(loaded) if n.lower() == module.name and is_resource_type(n)]
    return tuple(sorted(names))


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements of a type that FHIR marks as part of its summary (``_summary=true``)."""
    fields = get_fhir_model_class(resource_type).model_fields
    found = set()
    for name, info in fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            found.add(info.alias or name)
    return frozenset(found | {"id", "meta", "resourceType"})
