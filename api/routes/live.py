"""Live recognition: `POST /live/sessions` (a token, for a trusted caller) and the WebSocket `/live` (api/live/)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, status

from api.deps import get_services, require_api_key
from api.live.session import serve_session
from service.schemas import ErrorDetail, LiveSessionToken

router = APIRouter(tags=["live"])


@router.post(
    "/live/sessions",
    response_model=LiveSessionToken,
    summary="A short-lived token that opens one live session",
    description="For a trusted caller (the frontend, with X-API-Key), which hands the token to a browser. "
                "501 on a gateway to queue workers; 503 while the service stops.",
    responses={code: {"model": ErrorDetail} for code in (401, 501, 503)},
    dependencies=[Depends(require_api_key)],
)
def create_live_session(request: Request) -> LiveSessionToken:
    live = get_services(request).live
    if live is None:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, "live recognition runs on an API process with the "
                                                             "model, not on a gateway to queue workers")
    if live.max_sessions == 0:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, "live recognition is turned off (LIVE_MAX_SESSIONS=0)")
    request.app.state.drain.refuse_new_work(5)
    return LiveSessionToken(token=live.tokens.issue(), expires_in_s=live.tokens.ttl_s, path="/live")


@router.websocket("/live")
async def live_session(websocket: WebSocket) -> None:
    """Binary JPEG frames in, one JSON ranking per window out; `?token=` from POST /live/sessions, `?head=` and
    `?sport=` optional."""
    query = websocket.query_params
    services = websocket.app.state.services
    await serve_session(websocket, services.live if services else None, token=query.get("token"),
                        head=query.get("head"), sport=query.get("sport"))
