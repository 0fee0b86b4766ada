"""CKAN's response envelope, and the mapping of domain errors to CKAN error types."""

import logging
from typing import Any

from fastapi.responses import JSONResponse

from portal.core.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PortalError,
    Unauthorized,
)

log = logging.getLogger(__name__)

NOT_FOUND = "Not Found Error"
AUTHORIZATION = "Authorization Error"
VALIDATION = "Validation Error"
BAD_REQUEST = "Bad Request"
INTERNAL = "Internal Server Error"


class CkanError(Exception):
    """An error answered in CKAN's envelope: its `__type`, HTTP status, message and fields."""

    def __init__(
        self,
        kind: str,
        status: int,
        message: str,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.message = message
        self.fields = fields or {}

    def as_dict(self) -> dict[str, Any]:
        """Return the `error` object of the envelope."""
        return {"__type": self.kind, "message": self.message, **self.fields}


def validation_error(fields: dict[str, list[str]], status: int = 409) -> CkanError:
    """Return a Validation Error listing the problem of each field, as CKAN does."""
    message = "; ".join(f"{key}: {' '.join(problems)}" for key, problems in fields.items())
    return CkanError(VALIDATION, status, message, fields)


def bad_request(detail: str) -> CkanError:
    """Return CKAN's 400 "Bad request - …" error."""
    return CkanError(BAD_REQUEST, 400, f"Bad request - {detail}")


def from_domain(error: PortalError) -> CkanError:
    """Translate a domain error to the CKAN error a client expects."""
    if isinstance(error, NotFound):
        return CkanError(NOT_FOUND, 404, error.message)
    if isinstance(error, Unauthorized | Forbidden):
        return CkanError(AUTHORIZATION, 403, error.message)
    if isinstance(error, PayloadTooLarge):
        return CkanError(VALIDATION, 413, error.message, {"upload": [error.message]})
    if isinstance(error, InvalidInput | Conflict):
        return CkanError(VALIDATION, 409, error.message)
    if isinstance(error, DatabaseUnavailable):
        return CkanError(INTERNAL, 503, error.message)
    log.error("%s: %s", error.code, error.message)
    return CkanError(INTERNAL, 500, error.message)


def help_url(base: str, action: str) -> str:
    """Return the `help` link of an action's responses."""
    return f"{base}/api/3/action/help_show?name={action}"


def success(base: str, action: str, result: Any) -> JSONResponse:
    """Return a successful CKAN response."""
    return JSONResponse({"help": help_url(base, action), "success": True, "result": result})


def failure(base: str, action: str, error: CkanError) -> JSONResponse:
    """Return a failed CKAN response; `error` is always an object."""
    body = {"help": help_url(base, action), "success": False, "error": error.as_dict()}
    return JSONResponse(body, status_code=error.status)
