"""The frontend's only way to the API: httpx with explicit timeouts, errors turned into readable messages."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx


class ApiError(Exception):
    """Something a person can read: the API is down, timed out, or rejected the file."""

    def __init__(self, message: str, status_code: int = 502):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


CONNECT_RETRIES = 3  # connection failures only (httpx backs off between them); an answer is never retried


def _call(method: str, url: str, *, timeout_s: float, api_key: str | None = None, into: Path | None = None,
          **kwargs) -> httpx.Response:
    """One HTTP call to the API with readable errors for every way it can fail; a 200's body streams `into`
    that file when given (deleted if it does not arrive whole)."""
    headers = dict(kwargs.pop("headers", None) or {})
    if api_key:
        headers["X-API-Key"] = api_key
    transport = httpx.HTTPTransport(retries=CONNECT_RETRIES)
    with _readable_errors(timeout_s):
        with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transport) as client, \
                client.stream(method, url, headers=headers, **kwargs) as response:
            if into is not None and response.status_code == 200:
                _save(response, into)
            else:
                response.read()
    return _checked(response)


def stream(url: str, *, timeout_s: float, api_key: str | None = None, params=None,
           headers: dict | None = None) -> tuple[httpx.Response, Callable[[], None]]:
    """GET `url` and hand its answer on as it arrives (a video, a reel): (the response, its body unread, and what
    closes it); the same readable errors as every call."""
    headers = {key: value for key, value in (headers or {}).items() if value}
    if api_key:
        headers["X-API-Key"] = api_key
    client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0),
                          transport=httpx.HTTPTransport(retries=CONNECT_RETRIES))

    def close() -> None:
        response.close()
        client.close()

    try:
        with _readable_errors(timeout_s):
            response = client.send(client.build_request("GET", url, params=params, headers=headers), stream=True)
            if response.status_code >= 300 and response.status_code != 304:
                response.read()
                close()
    except BaseException:
        client.close()
        raise
    return _checked(response), close


@contextlib.contextmanager
def _readable_errors(timeout_s: float) -> Iterator[None]:
    try:
        yield
    except httpx.ConnectError:
        raise ApiError("The recognition service is not reachable right now; it may be restarting. "
                       "Try again in a moment.", 503) from None
    except httpx.TimeoutException:
        raise ApiError(f"The recognition service did not answer within {timeout_s:.0f} seconds.", 504) from None
    except httpx.HTTPError as exc:
        raise ApiError(f"Could not talk to the recognition service ({exc.__class__.__name__}).", 502) from None


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code == 503:
        raise ApiError(f"The recognition service is busy ({_detail_text(response)}). Try again in a moment.", 503)
    if response.status_code == 404:
        raise ApiError(f"Not found: {_detail_text(response)}.", 404)
    if response.status_code == 501:
        raise ApiError(f"Not available here: {_detail_text(response)}.", 501)
    if response.status_code == 410:
        raise ApiError(f"No longer available: {_detail_text(response)}.", 410)
    if response.status_code >= 300 and response.status_code != 304:
        raise ApiError(_detail(response), response.status_code if 400 <= response.status_code < 500 else 502)
    return response


def _save(response: httpx.Response, into: Path) -> None:
    try:
        with open(into, "wb") as file:
            for chunk in response.iter_bytes(1 << 20):
                file.write(chunk)
    except BaseException:
        into.unlink(missing_ok=True)
        raise


def _post_video(api_url: str, route: str, video: Path, filename: str, *, timeout_s: float, top_k: int,
                request_id: str | None, api_key: str | None, sport: str | None = None) -> dict:
    params = {"top_k": top_k, **({"sport": sport} if sport else {})}
    with open(video, "rb") as f:
        return _call(
            "POST", f"{api_url.rstrip('/')}{route}", timeout_s=timeout_s, api_key=api_key, params=params,
            files={"video": (filename, f, "application/octet-stream")},
            headers={"X-Request-ID": request_id} if request_id else None,
        ).json()


def recognize(api_url: str, video: Path, filename: str, *, timeout_s: float, top_k: int = 5,
              request_id: str | None = None, api_key: str | None = None, sport: str | None = None) -> dict:
    """POST the file to `{api_url}/recognize_action` as multipart field `video`; return the JSON result.

    `request_id` goes along as X-Request-ID so that both services' logs name the same request.
    """
    return _post_video(api_url, "/recognize_action", video, filename, timeout_s=timeout_s, top_k=top_k,
                       request_id=request_id, api_key=api_key, sport=sport)


def submit_job(api_url: str, video: Path, filename: str, *, timeout_s: float, top_k: int = 5,
               request_id: str | None = None, api_key: str | None = None, sport: str | None = None) -> dict:
    """POST the file to `{api_url}/jobs`; returns the queued job (`id`, `status`, `progress`)."""
    return _post_video(api_url, "/jobs", video, filename, timeout_s=timeout_s, top_k=top_k, request_id=request_id,
                       api_key=api_key, sport=sport)


def sports(api_url: str, *, timeout_s: float = 5) -> list[dict]:
    """The sports the API can narrow a ranking to: `[{"id", "name", "labels"}]`."""
    return _call("GET", f"{api_url.rstrip('/')}/sports", timeout_s=timeout_s).json()["sports"]


def cancel_job(api_url: str, job_id: str, *, timeout_s: float = 10, api_key: str | None = None) -> dict:
    """DELETE `{api_url}/jobs/{id}`: the job's state, `cancelled` (a running one stops within a second)."""
    return _call("DELETE", f"{api_url.rstrip('/')}/jobs/{quote(job_id, safe='')}", timeout_s=timeout_s,
                 api_key=api_key).json()


def job_status(api_url: str, job_id: str, *, timeout_s: float = 10, api_key: str | None = None) -> dict:
    return _call("GET", f"{api_url.rstrip('/')}/jobs/{quote(job_id, safe='')}", timeout_s=timeout_s,
                 api_key=api_key).json()


def highlights(api_url: str, job_id: str, labels: list[str], pad_s: float, into: Path, *, timeout_s: float = 900,
               api_key: str | None = None) -> str:
    """GET `{api_url}/jobs/{id}/highlights` into the file `into`; returns how the API cut it (copy or encode)."""
    response = _call("GET", f"{api_url.rstrip('/')}/jobs/{quote(job_id, safe='')}/highlights", timeout_s=timeout_s,
                     api_key=api_key, into=into, params={"label": labels, "pad_s": pad_s})
    return response.headers.get("X-Reel-Cut", "")


def labels(api_url: str, *, timeout_s: float = 5) -> list[str]:
    """Every action the API's model can name."""
    return _call("GET", f"{api_url.rstrip('/')}/labels", timeout_s=timeout_s).json()["labels"]


def library_get(api_url: str, path: str, *, timeout_s: float = 30, api_key: str | None = None, **params) -> dict:
    """GET one of the library's JSON routes (`/videos`, `/videos/{id}`, `/search`) with `params`."""
    return _call("GET", f"{api_url.rstrip('/')}{path}", timeout_s=timeout_s, api_key=api_key,
                 params={k: v for k, v in params.items() if v is not None}).json()


def fetch(url: str, into: Path, *, timeout_s: float, api_key: str | None = None) -> None:
    """GET `url` (an API video) whole into the file `into`."""
    _call("GET", url, timeout_s=timeout_s, api_key=api_key, into=into)


def library_delete(api_url: str, video_id: str, *, timeout_s: float = 30, api_key: str | None = None) -> None:
    """DELETE `{api_url}/videos/{id}`: its result, moments and files."""
    _call("DELETE", f"{api_url.rstrip('/')}/videos/{quote(video_id, safe='')}", timeout_s=timeout_s, api_key=api_key)


def upload_token(api_url: str, *, timeout_s: float = 10, api_key: str | None = None) -> dict:
    """A short-lived token with which a browser uploads resumably straight to the API (its /uploads, tus)."""
    return _call("POST", f"{api_url.rstrip('/')}/uploads/tokens", timeout_s=timeout_s, api_key=api_key).json()


def live_session(api_url: str, *, timeout_s: float = 10, api_key: str | None = None) -> dict:
    """A token that opens one live session at the API's WebSocket (`token`, `expires_in_s`, `path`)."""
    return _call("POST", f"{api_url.rstrip('/')}/live/sessions", timeout_s=timeout_s, api_key=api_key).json()


def _detail_text(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI validation errors
        detail = "; ".join(str(item.get("msg", item)) for item in detail)
    return str(detail or response.reason_phrase)


def _detail(response: httpx.Response) -> str:
    return f"The recognition service rejected the video: {_detail_text(response)} (HTTP {response.status_code})."
