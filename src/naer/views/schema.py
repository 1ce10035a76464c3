"""What the FHIR R4 structure says about an element: its type, whether it repeats, its choice variants.

The compiler needs this to turn ``name.family`` into one JSON path (``$.name[*].family``) instead of
testing at run time whether each step is an array, to resolve ``value.ofType(Quantity)`` to
``valueQuantity``, and to reject a path into an element that does not exist. The facts come from the
fhir.resources R4B models (R4B differs from R4 only in resources Nær does not use; see
docs/fhir-validation.md), read once per type.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cache

from fhir.resources.R4B import get_fhir_model_class

# fhir.resources marks primitive types with Annotated metadata classes named after the FHIR type.
_PRIMITIVES = {
    "Id": "id",
    "Uri": "uri",
    "Url": "url",
    "Canonical": "canonical",
    "Oid": "oid",
    "Uuid": "uuid",
    "Code": "code",
    "String": "string",
    "Markdown": "markdown",
    "Xhtml": "xhtml",
    "Base64Binary": "base64Binary",
    "Date": "date",
    "DateTime": "dateTime",
    "Instant": "instant",
    "Time": "time",
    "Integer": "integer",
    "Integer64": "integer64",
    "PositiveInt": "positiveInt",
    "UnsignedInt": "unsignedInt",
    "Decimal": "decimal",
    "Boolean": "boolean",
}
STRING_TYPES = frozenset(
    {"id", "uri", "url", "canonical", "oid", "uuid", "code", "string", "markdown", "xhtml", "base64Binary"}
)
DATE_TYPES = frozenset({"date", "dateTime", "instant", "time"})
INTEGER_TYPES = frozenset({"integer", "integer64", "positiveInt", "unsignedInt"})
NUMBER_TYPES = INTEGER_TYPES | {"decimal"}
PRIMITIVE_TYPES = STRING_TYPES | DATE_TYPES | NUMBER_TYPES | {"boolean"}


@dataclass(frozen=True)
class Element:
    name: str  # the JSON key
    type: str | None  # FHIR type name; "Resource" for contained resources; None when not known
    many: bool


@dataclass(frozen=True)
class Choice:
    """A choice element such as ``value[x]``: FHIR type -> JSON key (``Quantity`` -> ``valueQuantity``)."""

    name: str
    variants: dict[str, str]


def _type_name(annotation: object) -> tuple[str | None, bool]:
    """(FHIR type, repeats) for a pydantic field annotation of a fhir.resources model."""
    many = False
    ann = annotation
    while True:
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        if origin is typing.Union or (origin is not None and type(None) in args):
            ann = next(a for a in args if a is not type(None))
            continue
        if origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            many = True
            ann = args[0]
            continue
        if origin is typing.Annotated:
            for meta in args[1:]:
                fhir = _PRIMITIVES.get(type(meta).__name__)
                if fhir:
                    return fhir, many
            ann = args[0]
            continue
        break
    if ann is bool:
        return "boolean", many
    name = getattr(ann, "__name__", "") or str(ann)
    name = name.rsplit(".", 1)[-1]
    if name.endswith("Type") and name not in ("Type",):
        name = name[: -len("Type")]
        return ("Resource" if name in ("Resource", "DomainResource") else name), many
    return None, many


@cache
def elements(type_name: str) -> dict[str, Element | Choice] | None:
    """The elements of a FHIR resource or data type, or None if the type is not known to the models."""
    try:
        model = get_fhir_model_class(type_name)
    except (KeyError, ValueError, AttributeError):
        return None
    out: dict[str, Element | Choice] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        key = field.alias or ""
        fhir_type, many = _type_name(field.annotation)
        base = extra.get("one_of_many")
        if isinstance(base, str):
            choice = out.get(base)
            if not isinstance(choice, Choice):
                choice = Choice(base, {})
                out[base] = choice
            variant = key[len(base) :]
            choice.variants[fhir_type or (variant[:1].lower() + variant[1:])] = key
            continue
        out[key] = Element(key, fhir_type, many)
    if any(getattr(b, "__name__", "") == "Resource" for b in model.__mro__):
        out["resourceType"] = Element("resourceType", "code", False)
    return out


def is_resource_type(type_name: str) -> bool:
    """True for a FHIR resource type such as ``Patient`` (not a data type such as ``HumanName``)."""
    found = elements(type_name)
    return found is not None and "resourceType" in found
