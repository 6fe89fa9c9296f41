"""Domain errors: what services raise when a rule of the domain says no.

Services know nothing of HTTP; `cloud/problems.py` is the one place that maps each
kind to a status and renders it as problem+json. `detail` is for people; `title`
names the rule in a few words; keyword extensions travel into the problem body.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses; subclasses say how."""

    default_title = "Refused"

    def __init__(
        self, detail: str | None = None, *, title: str | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail or title or self.default_title)
        self.detail = detail
        self.title = title or self.default_title
        self.extensions = extensions


class NotAuthenticated(DomainError):
    """Who is asking is unknown (no or bad credentials)."""

    default_title = "Not signed in"


class Forbidden(DomainError):
    """The caller may not do this."""

    default_title = "Forbidden"


class NotFound(DomainError):
    """The thing named does not exist (or is not visible to the caller)."""

    default_title = "Not found"


class Conflict(DomainError):
    """It clashes with the current state (taken, already done, wrong status)."""

    default_title = "Conflict"


class Full(Conflict):
    """No capacity left (a shuttle trip's seats): a 409 whose title says which."""

    default_title = "Full"


class PreconditionFailed(Conflict):
    """A conditional write (If-Match) names a version that is no longer the current one."""

    default_title = "Precondition failed"


class Gone(DomainError):
    """It existed but is no longer usable (expired, used up)."""

    default_title = "Gone"


class TooLarge(DomainError):
    """The input is bigger than the service takes."""

    default_title = "Too large"


class Invalid(DomainError):
    """The input is well-formed but breaks a rule."""

    default_title = "Invalid request"


class Unavailable(DomainError):
    """A dependency is busy or down right now; trying again later may work."""

    default_title = "Unavailable"
