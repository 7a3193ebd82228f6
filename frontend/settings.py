"""The page's settings, read once from the environment (or a .env file). Apart from the API's: the page's image
has neither service/ nor models/, so the names it shares with the API (MAX_UPLOAD_MB, API_KEY, ...) are
declared here again, with the same defaults (tests/test_settings.py holds them equal)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class FrontendSettings(BaseSettings):
    # An empty variable (API_PUBLIC_URL= in .env) means "not set".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    api_url: str = Field("http://127.0.0.1:8000", description="the API as this page reaches it")
    api_public_url: str | None = Field(None, description="the API as browsers reach it, for the live page's WebSocket "
                                                         "and resumable uploads (default: API_URL)")
    api_timeout_s: float = Field(900, gt=0, description="how long the page waits for an answer of the API")
    max_upload_mb: int = Field(8192, ge=1, description="largest accepted upload, in MiB (the API's limit)")
    resumable_upload_mb: float = Field(100, ge=0, description="files this big or bigger go from the browser straight "
                                                              "to the API, resumably (tus); smaller ones through here")
    max_video_duration_s: float = Field(3 * 3600, gt=0, description="longest accepted video (the API's limit), "
                                                                    "stated on the page")
    frontend_upload_dir: Path = Field(PROJECT_ROOT / "static" / "uploads",
                                      description="where uploaded copies are kept for the player")
    frontend_data_dir: Path = Field(PROJECT_ROOT / "var" / "frontend", description="where the session key is kept")
    api_key: str | None = Field(None, description="sent to the API as X-API-Key (the API's API_KEY)")
    upload_max_age_h: float = Field(24, gt=0, description="kept copies older than this many hours are removed")
    upload_max_files: int = Field(200, ge=1, description="beyond this many kept copies, the oldest are removed")
    log_level: str = "INFO"
    flask_secret_key: str | None = Field(None, description="signs sessions and CSRF tokens (default: a key made once "
                                                           "and kept owner-only in FRONTEND_DATA_DIR)")

    def flask_config(self) -> dict:
        """The app's config keys, as the views read them."""
        return {
            "API_URL": self.api_url,
            "API_PUBLIC_URL": self.api_public_url or self.api_url,
            "API_TIMEOUT_S": self.api_timeout_s,
            "MAX_CONTENT_LENGTH": self.max_upload_mb * 1024 * 1024,
            "RESUMABLE_UPLOAD_MB": self.resumable_upload_mb,
            "MAX_VIDEO_DURATION_S": self.max_video_duration_s,
            "UPLOAD_FOLDER": str(self.frontend_upload_dir),
            "DATA_DIR": str(self.frontend_data_dir),
            "API_KEY": self.api_key,
            "UPLOAD_MAX_AGE_S": self.upload_max_age_h * 3600,
            "UPLOAD_MAX_FILES": self.upload_max_files,
        }
