"""The domain error hierarchy; `portal.api.errors` maps it to HTTP."""


class PortalError(Exception):
    """Base of every error the portal raises on purpose, with a user-facing message."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(PortalError):
    """The thing asked for does not exist, or the caller may not know it exists."""

    code = "not_found"


class InvalidInput(PortalError):
    """The caller sent something the portal cannot use."""

    code = "invalid_input"


class Unauthorized(PortalError):
    """The caller has not proven who they are."""

    code = "unauthorized"


class Forbidden(PortalError):
    """The caller is known but lacks the right to do this."""

    code = "forbidden"


class Conflict(PortalError):
    """The request clashes with the current state."""

    code = "conflict"


class PreconditionFailed(PortalError):
    """An `If-Match` precondition names a version that is no longer current."""

    code = "precondition_failed"


class PayloadTooLarge(InvalidInput):
    """An upload or download is over the configured size limit."""

    code = "payload_too_large"


class LoadFailed(InvalidInput):
    """A file could not be loaded; the previous data is kept."""

    code = "load_failed"


class HarvestFailed(PortalError):
    """A harvest source could not be read."""

    code = "harvest_failed"


class DatabaseUnavailable(PortalError):
    """The database cannot be reached."""

    code = "database_unavailable"
