"""Flask frontend: `flask --app frontend run --port 5000`. It never imports TensorFlow; it talks to the API over HTTP."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from common.logs import configure_logging
from frontend import secret_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default  # an empty variable means "not set"


def _env_config() -> dict:
    api_url = _env("API_URL", "http://127.0.0.1:8000")
    return {
        "API_URL": api_url,
        "API_PUBLIC_URL": _env("API_PUBLIC_URL", api_url),  # the API as browsers reach it (live, resumable uploads)
        "API_TIMEOUT_S": float(_env("API_TIMEOUT_S", "900")),
        "MAX_CONTENT_LENGTH": int(_env("MAX_UPLOAD_MB", "8192")) * 1024 * 1024,
        # files this big or bigger go from the browser straight to the API, resumably (tus); smaller ones through here
        "RESUMABLE_UPLOAD_MB": float(_env("RESUMABLE_UPLOAD_MB", "100")),
        "MAX_VIDEO_DURATION_S": float(_env("MAX_VIDEO_DURATION_S", "10800")),  # the API's limit, stated on the page
        "UPLOAD_FOLDER": _env("FRONTEND_UPLOAD_DIR", str(PROJECT_ROOT / "static" / "uploads")),
        "DATA_DIR": _env("FRONTEND_DATA_DIR", str(PROJECT_ROOT / "var" / "frontend")),
        "API_KEY": os.environ.get("API_KEY") or None,
        "UPLOAD_MAX_AGE_S": float(_env("UPLOAD_MAX_AGE_H", "24")) * 3600,
        "UPLOAD_MAX_FILES": int(_env("UPLOAD_MAX_FILES", "200")),
    }


def create_app(test_config: dict | None = None) -> Flask:
    configure_logging(_env("LOG_LEVEL", "INFO"))
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
        template_folder="templates",
    )
    app.config.update(_env_config())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):  # the same key in every worker and after a restart
        app.config["SECRET_KEY"] = secret_key.load_or_create(os.environ.get("FLASK_SECRET_KEY"),
                                                             Path(app.config["DATA_DIR"]))
    Path(app.config["UPLOAD_FOLDER"]).mkdir(parents=True, exist_ok=True)

    from frontend import library, security, views

    app.register_blueprint(views.bp)
    app.register_blueprint(library.bp)
    security.install(app)
    return app
