"""The one error tree of cas_dvid; handlers pick a category, never a message."""

from __future__ import annotations


class CasDvidError(Exception):
    """Root of every error cas_dvid raises on purpose."""


class NotFoundError(CasDvidError, KeyError):
    """A thing that was asked for does not exist (an object, a ref, a key, a repo)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; keep messages plain for DVID-style bodies.
        return str(self.args[0]) if self.args else ""


class InvalidInputError(CasDvidError, ValueError):
    """Input was malformed or out of range; the message says what was expected."""


class ConflictError(CasDvidError):
    """A compare-and-swap lost: ``current`` and ``current_token`` describe the winner."""

    def __init__(
        self, message: str, current: bytes | None = None, current_token: str | None = None
    ) -> None:
        super().__init__(message)
        self.current = current
        self.current_token = current_token


class LockedError(CasDvidError):
    """A write was aimed at a committed (locked) version."""


class CorruptObjectError(CasDvidError):
    """Stored bytes do not decode, or do not hash to the id they are stored under."""


class MissingObjectError(NotFoundError):
    """An object the store's own trees or commits point to is absent: the store is damaged.

    A NotFoundError still (callers probing for objects keep working), but answered as a
    500 naming the object, never as the client's 400.
    """

    http_status = "500 Internal Server Error"


class BackendError(CasDvidError):
    """The storage backend failed (unreachable, refused, or misbehaving)."""


class TooLargeError(InvalidInputError):
    """A request body or result is over a configured limit."""


class MissingDataError(NotFoundError):
    """A key or label that is absent at a version: the one case DVID answers 404."""


class BusyError(CasDvidError):
    """The server is at its memory budget: try again after ``retry_after`` seconds (a 503)."""

    http_status = "503 Service Unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
