"""Find a resource type's files in a data folder and say how DuckDB reads them.

A data folder is what ``naer synth`` or a FHIR bulk export writes: NDJSON files (plain or gzip) named
after their resource type (``Patient.ndjson``, ``Patient.000.ndjson.gz``), or Parquet files of raw resources
(one JSON text column named ``resource``), or a single NDJSON file of mixed types. Every file is filtered on
``resourceType``, so a mixed file is read correctly, only more slowly.
"""

from __future__ import annotations

from pathlib import Path

from naer.errors import UserError
from naer.views.compile import columns_struct
from naer.views.expressions import sql_string

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz", ".json", ".json.gz")


class SourceError(UserError):
    """Input files that cannot be found or read."""


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(NDJSON_SUFFIXES) and name != "manifest.json":
        return "ndjson"
    return None


def _type_of_file(path: Path) -> str:
    return path.name.split(".")[0]


def files_for(input_path: Path, resource: str) -> tuple[list[Path], str]:
    """The files holding ``resource`` in a folder (by name; a file or folder named for no type holds all),
    and how to read them: ``ndjson`` (files of this one type), ``mixed`` (NDJSON of any types) or
    ``parquet``."""
    if not input_path.exists():
        raise SourceError(f"no input {input_path}")
    if input_path.is_file():
        kind = _kind(input_path)
        if kind is None:
            raise SourceError(f"{input_path} is not NDJSON (.ndjson, .ndjson.gz) or Parquet")
        if kind == "ndjson" and _type_of_file(input_path) != resource:
            kind = "mixed"
        return [input_path], kind
    candidates = sorted(p for p in input_path.iterdir() if p.is_file() and _kind(p) is not None)
    typed = [p for p in candidates if _type_of_file(p) == resource]
    chosen = typed or [p for p in candidates if not _type_of_file(p)[:1].isupper()]
    kinds = {k for k in (_kind(p) for p in chosen) if k}
    if len(kinds) > 1:
        raise SourceError(f"{input_path} holds both NDJSON and Parquet files for {resource}; keep one")
    kind = kinds.pop() if kinds else "ndjson"
    return chosen, "mixed" if kind == "ndjson" and not typed and chosen else kind


def source_sql(files: list[Path], kind: str, fields: dict[str, str]) -> str:
    """A DuckDB table expression giving one row per resource with the top-level ``fields`` as columns."""
    if not files:
        # No file for this type: an empty table with the right columns, so a view of an absent type is empty.
        cols = ", ".join(f'NULL::{t} AS "{k}"' for k, t in sorted(fields.items()))
        return f"(SELECT {cols} WHERE FALSE)"
    listing = "[" + ", ".join(sql_string(str(f)) for f in files) + "]"
    if kind == "parquet":
        keys = sorted(fields)
        paths = "[" + ", ".join(sql_string("$." + k) for k in keys) + "]"
        cols = ", ".join(
            (f"e[{i + 1}]" if fields[k] == "JSON" else f"json_extract_string(e[{i + 1}], '$')") + f' AS "{k}"'
            for i, k in enumerate(keys)
        )
        inner = f"SELECT json_extract(resource::JSON, {paths}) AS e FROM read_parquet({listing})"
        return f"(SELECT {cols} FROM ({inner}))"
    return (
        f"read_ndjson({listing}, columns={columns_struct(fields)}, format='newline_delimited', "
        "maximum_object_size=67108864)"
    )
