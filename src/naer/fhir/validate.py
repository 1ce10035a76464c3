"""Validate FHIR R4 resources with fhir.resources' R4B models.

The resource types are R4's own (``r4_types.json``, derived from the R4 specification by
scripts/derive_search_parameters.py): R4B-only types (Citation, SubscriptionTopic, NutritionProduct ...)
are unknown here, and the R4-only ones (MedicinalProduct, SubstanceSpecification ...) are kept.
fhir.resources 7+ ships R5 and R4B models but not plain R4 (4.0.1). A type whose R4B model is R4's is
validated by it; one that R4B dropped or changed (``R4B_DIFFERS_FROM_R4``) gets the checks every
resource shares (its id, meta and narrative, by the R4B models of those, which R4B did not change) and no
more, so that a valid R4 resource is never refused for R4B's differences. docs/fhir-validation.md says
what the library does not check (required value-set bindings, invariants) and how Nær covers those gaps.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from naer.fhir import null_check

ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
null_check.install()  # the library's own null check by a faster route (null_check.py says why)

# Types that exist in R4 but not in R4B, or whose R4B shape differs from R4 (none of them are written
# by Nær today): only the elements every resource shares are checked (tests/test_api.py holds that
# every R4 type without an R4B model is listed here).
R4_TYPES: frozenset[str] = frozenset(
    orjson.loads(Path(__file__).with_name("r4_types.json").read_bytes())["types"]
)
R4B_DIFFERS_FROM_R4 = frozenset(
    {
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "SubstanceSpecification",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "EffectEvidenceSynthesis",
        "RiskEvidenceSynthesis",
        "Subscription",
        "Evidence",
        "EvidenceVariable",
    }
)
# What every resource shares, checked by the R4B models of these elements for the types above.
COMMON = {"id": "Id", "meta": "Meta", "implicitRules": "Uri", "language": "Code", "text": "Narrative"}


def validation_errors(resource: dict[str, Any]) -> list[str]:
    """Every problem the FHIR library finds in ``resource``, as ``path: message`` lines."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return ["resourceType: missing"]
    if kind not in R4_TYPES:
        return [f"resourceType: unknown resource type {kind!r} (not one of FHIR R4's)"]
    if kind in R4B_DIFFERS_FROM_R4:
        return _common_errors(kind, resource)
    model = get_fhir_model_class(kind)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [f"{kind}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    except (TypeError, AttributeError, ValueError) as exc:
        # The library's own validators of some types (url, uri) raise these for a value of another JSON
        # type (a boolean, an object) instead of a validation error: the value is not FHIR all the same.
        return [f"{kind}: a value of the wrong JSON type ({type(exc).__name__}: {str(exc)[:200]})"]
    return []


def _common_errors(kind: str, resource: dict[str, Any]) -> list[str]:
    """The checks of the elements every resource shares, for a type without an R4 model."""
    problems = []
    for name, type_name in COMMON.items():
        if name not in resource:
            continue
        value = resource[name]
        try:
            if type_name == "Id":
                if not isinstance(value, str) or not ID.fullmatch(value):
                    problems.append(f"{kind}.id: {value!r} is not a FHIR id")
                continue
            if type_name in ("Uri", "Code"):
                if not isinstance(value, str) or not value.strip():
                    problems.append(f"{kind}.{name}: must be a non-empty string")
                continue
            get_fhir_model_class(type_name).model_validate(value)
        except ValidationError as exc:
            problems += [
                f"{kind}.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            ]
    return problems


@cache
def is_resource_type(name: str) -> bool:
    """True for a resource type of FHIR R4 (``Patient``), not a data type, an abstract base or a type
    only R4B or R5 have."""
    return name in R4_TYPES


@cache
def resource_types() -> tuple[str, ...]:
    """Every resource type of FHIR R4, sorted (for the CapabilityStatement)."""
    return tuple(sorted(R4_TYPES))


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements of a type that FHIR marks as part of its summary (``_summary=true``)."""
    if resource_type in R4B_DIFFERS_FROM_R4:  # no R4 model to say: the elements every resource shares
        return frozenset({"id", "meta", "implicitRules", "resourceType"})
    fields = get_fhir_model_class(resource_type).model_fields
    found = set()
    for name, info in fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            found.add(info.alias or name)
    return frozenset(found | {"id", "meta", "resourceType"})
