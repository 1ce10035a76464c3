"""Listeners that hear of every write of the store's write path, inside its transaction.

This is how a domain package keeps a transactional outbox without the store knowing it: the messaging
package listens for Encounters (naer.messaging.events) and stores the HospitalNotification a change
causes in the same transaction as the change, so the two commit or roll back together. A listener that
raises makes the write fail. Bulk loads do not call listeners: loaded history is not news.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from naer.store.resources import Stored

Listener = Callable[[Connection, "Stored"], None]
_listeners: dict[str, Listener] = {}


def listen(name: str, listener: Listener) -> None:
    """Register ``listener`` under ``name`` (registering a name again replaces it)."""
    _listeners[name] = listener


def forget(name: str) -> None:
    _listeners.pop(name, None)


def written(con: Connection, version: Stored) -> None:
    """Tell every listener of a version just written (a deletion has no content)."""
    for listener in list(_listeners.values()):
        listener(con, version)
