"""What the service says when it will not, or could not, do what was asked: a status code in HTTP's terms and
a readable detail. The API answers it as is (api/middleware/refusals.py); a job keeps it as its error object."""

from __future__ import annotations

CLIENT_GONE = 499  # nginx's "client closed request": logged, never read


class Refused(Exception):
    """`status_code` (4xx for the request, 503 for "not now"), `detail` for a person, and for a 503 the
    seconds after which a retry may get in (None: the service's RETRY_AFTER_S)."""

    status_code = 500

    def __init__(self, detail: str, *, status_code: int | None = None, retry_after_s: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code or self.status_code
        self.retry_after_s = retry_after_s

    def error(self) -> dict:
        """The error object of a failed job (`GET /jobs/{id}`)."""
        return {"status_code": self.status_code, "detail": self.detail}

    @classmethod
    def from_error(cls, error: dict) -> Refused:
        """The refusal an error object (`error()`, as a job or a queue task carries it) stands for."""
        return cls(error["detail"], status_code=int(error["status_code"]))


class Busy(Refused):
    """No room for this work now: try again after a while."""

    status_code = 503


class JobCancelled(Refused):
    """A job cancelled by DELETE /jobs/{id} (or its part of a game)."""

    status_code = CLIENT_GONE

    def __init__(self, detail: str = "cancelled (DELETE /jobs/{id})"):
        super().__init__(detail)


class Misconfigured(Refused):
    """A worker set up unlike the API: a person must fix the deployment, a retry will not help."""

    status_code = 500


INTERNAL_ERROR = Refused("internal error while recognizing")  # what a job that crashed says (logged in full)
