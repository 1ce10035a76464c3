"""Reading FHIR bulk NDJSON: open a plain or gzip file, and parse one line into a JSON object."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Any, cast

import orjson

from naer.fhir import jsontext


def open_ndjson(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when its name ends in .gz."""
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def json_object(line: bytes) -> dict[str, Any] | str:
    """The line as a JSON object, or what is wrong with it ("not JSON (...)", "not a JSON object")."""
    try:
        value = jsontext.loads(line)
    except orjson.JSONDecodeError as error:
        return f"not JSON ({error.msg})"
    if not isinstance(value, dict):
        return "not a JSON object"
    return value
