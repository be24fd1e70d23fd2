"""Domain errors. Actions and jobs raise these; the contract layer
(`facility.api.errors`) turns each into the standard's envelope with an HTTP
status and a project Code from one table (docs/api-conventions.md).
"""

from __future__ import annotations


class FacilityError(Exception):
    http_status = 500
    code = 50000

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class Invalid(FacilityError):
    """The request is well-formed but its content breaks a rule."""

    http_status = 400
    code = 40000


class NotFound(FacilityError):
    http_status = 404
    code = 40400


class Conflict(FacilityError):
    """The request clashes with the current state of the object."""

    http_status = 409
    code = 40900


class TooLarge(FacilityError):
    http_status = 413
    code = 41300


class Rejected(FacilityError):
    """Content (a package, a file) was examined and refused."""

    http_status = 422
    code = 42200


class Unavailable(FacilityError):
    http_status = 503
    code = 50300
