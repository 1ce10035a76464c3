"""Failures a client of the store can cause, each with the HTTP status the FHIR API answers with."""

from __future__ import annotations

from naer.errors import UserError


class StoreError(UserError):
    """A request the store refuses; ``status`` and ``code`` become an OperationOutcome in the API."""

    status = 400
    code = "invalid"  # FHIR issue-type code

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where  # FHIRPath-style location of the problem, when there is one


class Invalid(StoreError):
    status, code = 400, "invalid"


class Unauthorized(StoreError):
    """No valid credentials (401 with ``WWW-Authenticate: Bearer``); the message never says which check
    failed, so that an attacker learns nothing from it."""

    status, code = 401, "login"


class Forbidden(StoreError):
    status, code = 403, "forbidden"


class NotFound(StoreError):
    status, code = 404, "not-found"


class Conflict(StoreError):
    status, code = 409, "conflict"


class Gone(StoreError):
    status, code = 410, "deleted"


class PreconditionFailed(StoreError):
    status, code = 412, "conflict"


class TooLarge(StoreError):
    status, code = 413, "too-costly"


class Unprocessable(StoreError):
    status, code = 422, "processing"


class NotSupported(StoreError):
    """Something FHIR defines that this server does not do. 400, as FHIR answers a search parameter a
    server cannot process: the request is what cannot be served, the server has not failed (5xx)."""

    status, code = 400, "not-supported"
