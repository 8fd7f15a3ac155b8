"""The service layer's errors: each carries a message an admin can act on (shown as is by CLI/UI/API)."""

from __future__ import annotations


class EntrasyncError(Exception):
    """Base: ``str(err)`` is a complete, user-facing sentence. ``status`` is the HTTP status to use."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(EntrasyncError):
    status = 404


class PermissionDeniedError(EntrasyncError):
    status = 403


class ConflictError(EntrasyncError):
    status = 409


class NotConnectedError(EntrasyncError):
    status = 409


class RefreshRunningError(ConflictError):
    pass


class StalePlanError(ConflictError):
    pass


class ValidationError(EntrasyncError):
    """Bad input, with one message per field so a form can show each next to its field."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v.rstrip('.')}" for k, v in self.errors.items()) + ".")


class InputRefusedError(EntrasyncError):
    """The database cannot represent a value (e.g. NUL characters on PostgreSQL): the request's fault."""

    status = 400


class ConfigurationError(EntrasyncError):
    """The deployment's configuration cannot work as it is (a secret key that does not open the stored
    credential, a URL that is not one); retrying will not help, the message says what to fix."""

    status = 409


class UpstreamError(EntrasyncError):
    """Microsoft Graph failed a read made on demand (explain, dry run, Preview): nothing was changed."""

    status = 502
