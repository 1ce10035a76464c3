"""Who is asking: every read, search and write of the store takes a RequestContext and asks it.

The store asks the context four things, and the access package (``naer.access.context``) answers them
from the policy file, the asker's token and the care relations in the index:

- ``permit``: may the asker do this kind of thing to this type at all (role and SMART scopes)? It
  raises Forbidden (403) to refuse.
- ``visible``: which rows may the asker know exist? A SQL condition on a table's (resource_type, id)
  columns, which the store puts inside every query it runs for the asker — reads, searches, chains,
  ``_has``, includes, history, counts, exports — so that nothing outside it is read, counted or named.
- ``writable``: may the asker write a resource about these citizens (403 if not)?
- ``written`` / ``accessed``: what was written (inside the write's transaction, so that its audit entry
  commits with it) and what was read (after the read).

``Internal`` is the context of the platform's own jobs (a named CLI command, a migration): it sees
everything and audits nothing itself; the job records one audit entry of its own where it should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection

Action = Literal["read", "vread", "search", "history", "create", "update", "delete", "export", "import"]


class RequestContext:
    """The asker. The base class allows everything; subclasses narrow it."""

    actor: str = "system"

    def permit(self, action: Action, resource_type: str | None) -> None:
        """Raise Forbidden if the asker may not do ``action`` on ``resource_type`` (None: any type)."""

    def visible(self, type_column: Any, id_column: Any, many: bool = False) -> ColumnElement[bool] | None:
        """A condition on rows the asker may know exist (None: every row); ``many``: the query reads a
        large part of the store (an export), so the condition may be shaped for that."""
        return None

    def writable(self, con: Connection, action: Action, resource_type: str, patients: set[str]) -> None:
        """Raise Forbidden if the asker may not write a ``resource_type`` about ``patients``."""

    def written(
        self, con: Connection, action: Action, resource_type: str, rid: str, version: int, patients: set[str]
    ) -> None:
        """Hear of a write, inside its transaction."""

    def accessed(self, action: Action, keys: Sequence[tuple[str, str]], query: str | None = None) -> None:
        """Hear of what a read, search or export returned (resource type, id)."""


@dataclass(frozen=True)
class Internal(RequestContext):
    """The platform's own jobs: named, unrestricted."""

    actor: str = "system"


SYSTEM = Internal()
