"""The frontend's only way to the API: httpx with explicit timeouts, errors turned into readable messages."""

from __future__ import annotations

from pathlib import Path

import httpx


class ApiError(Exception):
    """Something a person can read: the API is down, timed out, or rejected the file."""

    def __init__(self, message: str, status_code: int = 502):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def recognize(api_url: str, video: Path, filename: str, *, timeout_s: float, top_k: int = 5,
              request_id: str | None = None) -> dict:
    """POST the file to `{api_url}/recognize_action` as multipart field `video`; return the JSON result.

    `request_id` goes along as X-Request-ID so that both services' logs name the same request.
    """
    timeout = httpx.Timeout(timeout_s, connect=5.0)
    try:
        with open(video, "rb") as f, httpx.Client(timeout=timeout) as client:
            response = client.post(
                f"{api_url.rstrip('/')}/recognize_action",
                params={"top_k": top_k},
                files={"video": (filename, f, "application/octet-stream")},
                headers={"X-Request-ID": request_id} if request_id else None,
            )
    except httpx.ConnectError:
        raise ApiError("The recognition service is not reachable. Is the API running?", 503) from None
    except httpx.TimeoutException:
        raise ApiError(f"The recognition service did not answer within {timeout_s:.0f} seconds.", 504) from None
    except httpx.HTTPError as exc:
        raise ApiError(f"Could not talk to the recognition service ({exc.__class__.__name__}).", 502) from None
    if response.status_code != 200:
        raise ApiError(_detail(response), response.status_code if 400 <= response.status_code < 500 else 502)
    return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # FastAPI validation errors
        detail = "; ".join(str(item.get("msg", item)) for item in detail)
    return f"The recognition service rejected the video: {detail or response.reason_phrase} (HTTP {response.status_code})."
