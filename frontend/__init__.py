"""Flask frontend: `flask --app frontend run --port 5000`. It never imports TensorFlow; it talks to the API over HTTP."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.logs import configure_logging
from frontend import secret_key
from frontend.settings import PROJECT_ROOT, FrontendSettings


def create_app(test_config: dict | None = None) -> Flask:
    """The page, configured from `FrontendSettings` (the environment, or .env), then `test_config` over it."""
    settings = FrontendSettings()
    configure_logging(settings.log_level)
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
        template_folder="templates",
    )
    app.config.update(settings.flask_config())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):  # the same key in every worker and after a restart
        app.config["SECRET_KEY"] = secret_key.load_or_create(settings.flask_secret_key,
                                                             Path(app.config["DATA_DIR"]))
    Path(app.config["UPLOAD_FOLDER"]).mkdir(parents=True, exist_ok=True)

    from frontend import library, security, views

    app.register_blueprint(views.bp)
    app.register_blueprint(library.bp)
    security.install(app)
    return app
