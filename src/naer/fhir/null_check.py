"""A faster route to fhir_core's own check that a list of complex elements holds no null.

fhir_core 1.1.12 (under fhir.resources 8.3.0) runs ``reject_null_complex_elements`` before validating every
element, and it walks *all* fields of the element's model (an Encounter's 40-odd, each asked whether it is a
list of a complex type) to look at the few keys the element has: a third of the time it takes to validate
an Encounter (40 of 123 µs on a quiet machine), and of what `naer load` spends per resource. ``check`` asks
the same question from a table made once per model (the keys that hold lists of complex types) and only of
the keys present; where it finds a null it hands the element to the library's own check, so the errors,
their wording and their locations stay the library's. The two agree on every input (``check`` says why;
tests/test_fhir_null_check.py tries it).

``install`` puts ``check`` in the library's place: pydantic has already bound the library's validator into
every model's compiled schema, so the function's code is swapped (it then calls ``check``); the models stay
untouched. It does so only when the library's function has the source it was written against (the version
pinned in constraints.txt); any other leaves the library's check as it is.
"""

from __future__ import annotations

import hashlib
import inspect
import types
from functools import cache
from typing import Any

from fhir_core import fhirabstractmodel
from fhir_core.utils import is_list_type, is_primitive_type

LIBRARY_SOURCE = "d0d0200524d20d33"  # the digest of fhir_core 1.1.12's reject_null_complex_elements source


def _library() -> types.FunctionType:
    method = fhirabstractmodel.FHIRAbstractModel.reject_null_complex_elements
    function: types.FunctionType = method.__func__
    return function


def _digest(function: types.FunctionType) -> str | None:
    """A digest of the function's source text (the same on every Python), or None without a source."""
    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


_ORIGINAL = _library()
# the library's check as it was, under its own module's names (it raises the errors that ``check`` reports)
library_check = types.FunctionType(
    _ORIGINAL.__code__, _ORIGINAL.__globals__, "library_check", _ORIGINAL.__defaults__, _ORIGINAL.__closure__
)


@cache
def _complex_list_keys(cls: type) -> frozenset[str]:
    """The names and aliases of ``cls``'s fields that are lists of complex elements, as the library picks
    them (not primitive lists, whose nulls line values up with their ``_field`` extensions)."""
    fields = cls.model_fields  # type: ignore[attr-defined]
    return frozenset(
        key
        for name, field in fields.items()
        if is_list_type(field) and not is_primitive_type(field) and not name.endswith("__ext")
        for key in (name, field.alias)
        if key
    )


def check(cls: type, data: Any) -> Any:
    """``data`` unchanged, or the library's error for a null inside a list of complex elements.

    The same answer as the library's for every input: the library raises only for a key of this table that
    holds a list with a null, and such a key sends the element to the library's own check."""
    if isinstance(data, dict):
        keys = _complex_list_keys(cls)
        for key, value in data.items():
            if key in keys and isinstance(value, list) and None in value:
                return library_check(cls, data)
    return data


def _shim(cls: type, data: Any) -> Any:  # runs with fhir_core's module names: see install()
    return _naer_null_check(cls, data)  # type: ignore[name-defined]  # noqa: F821


def installed() -> bool:
    return _library().__code__ is _shim.__code__


def uninstall() -> None:
    """Give the library its own check back (the tests compare the two)."""
    _ORIGINAL.__code__ = library_check.__code__


def install() -> bool:
    """Route the library's null check through ``check``; False (and nothing changed) when the library is not
    the version this was written against."""
    if installed():
        return True
    if _digest(library_check) != LIBRARY_SOURCE:
        return False
    fhirabstractmodel._naer_null_check = check  # type: ignore[attr-defined]
    _ORIGINAL.__code__ = _shim.__code__
    return True
