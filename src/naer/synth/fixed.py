"""Vectorised rendering of NDJSON lines whose every field has a fixed width.

Most of a population's resources are GP and outpatient contacts, whose values within one chunk all
have the same width (zero-padded ids, ISO timestamps). Such lines are built as a (rows x bytes) uint8
matrix from constant template pieces and per-row byte columns, then written with one ``tobytes()``:
about twenty times faster than formatting each line in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

Piece = bytes | np.ndarray


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as a (n, width) uint8 matrix."""
    v = np.asarray(values, dtype=np.int64)
    if len(v) and (v.min() < 0 or v.max() >= 10**width):
        raise ValueError(f"values do not fit in {width} digits")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def choose(options: Sequence[bytes], which: np.ndarray) -> np.ndarray:
    """Per-row pick among equally long byte strings, as a (n, width) uint8 matrix."""
    widths = {len(o) for o in options}
    if len(widths) != 1:
        raise ValueError("choose() needs options of one width")
    table = np.frombuffer(b"".join(options), dtype=np.uint8).reshape(len(options), -1)
    return table[np.asarray(which, dtype=np.int64)]


def timestamps(start: date, minutes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:00+01:00`` for minutes since ``start``; ``offsets`` holds the per-day offset
    (b"+01:00" or b"+02:00") indexed by day."""
    local = np.datetime64(start, "m") + np.asarray(minutes, dtype=np.int64).astype("timedelta64[m]")
    text = np.datetime_as_string(local, unit="m").astype("S16").view(np.uint8).reshape(-1, 16)
    zone = offsets[np.asarray(minutes, dtype=np.int64) // 1440].view(np.uint8).reshape(-1, 6)
    seconds = np.broadcast_to(np.frombuffer(b":00", dtype=np.uint8), (len(text), 3))
    return np.hstack([text, seconds, zone])


def render(pieces: Sequence[Piece], rows: int) -> memoryview:
    """Join constant pieces (bytes) and per-row columns ((rows, w) uint8) into ``rows`` lines."""
    if rows == 0:
        return memoryview(b"")
    columns = []
    for piece in pieces:
        if isinstance(piece, bytes):
            columns.append(np.broadcast_to(np.frombuffer(piece, dtype=np.uint8), (rows, len(piece))))
        else:
            if piece.shape[0] != rows:
                raise ValueError("every column needs one value per row")
            columns.append(piece)
    columns.append(np.broadcast_to(np.frombuffer(b"\n", dtype=np.uint8), (rows, 1)))
    return memoryview(np.ascontiguousarray(np.hstack(columns)).data).cast("B")


def split_template(template: str, values: int) -> list[bytes]:
    """Split a template with ``values`` ``%s`` slots into the constant pieces between them."""
    parts = template.split("%s")
    if len(parts) != values + 1:
        raise ValueError(f"template has {len(parts) - 1} slots, expected {values}")
    return [p.replace("%%", "%").encode() for p in parts]
