"""`uvicorn api.main:app` (what `python -m api --workers N` runs as a gateway): the app with the settings of the
environment (or .env). Tests and `python -m api` build their own with `api.app.create_app`."""

from __future__ import annotations

from api.app import create_app
from service.settings import get_settings

app = create_app(get_settings())
