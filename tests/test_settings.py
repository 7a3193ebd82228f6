"""Every setting in one place: the typed settings (the API's `Settings`, which extends the model's `ModelSettings`
that the command line reads, and the page's `FrontendSettings`) are listed in .env.example and
docs/configuration.md with the code's defaults; the variables only docker compose and the images read, with
their defaults there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from frontend.settings import FrontendSettings
from models.settings import ModelSettings
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CLASSES: tuple[type[BaseSettings], ...] = (Settings, ModelSettings, FrontendSettings)
FIELDS = {(cls, name.upper()): field for cls in CLASSES for name, field in cls.model_fields.items()}
NAMES = {name for _, name in FIELDS}
RUNTIME_ENVIRONMENT = {"ONEDNN_MAX_CPU_ISA"}  # oneDNN's own, documented beside the settings, read by no class
# ${NAME:-default} in the compose file and the Dockerfiles
DEPLOYMENT_TEXT = "\n".join(p.read_text() for p in (ROOT / "docker-compose.yml", *sorted((ROOT / "docker").glob("*"))))
DEPLOYMENT_DEFAULTS = re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", DEPLOYMENT_TEXT)


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def documented() -> list[tuple[str, str]]:
    """(variable, default) of every row of docs/configuration.md's tables."""
    return re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \|", (ROOT / "docs/configuration.md").read_text(), re.M)


def _default(field):
    return field.get_default(call_default_factory=True)


def _same(read, default) -> bool:
    """Equal, or the same path where the listed one is relative to the project (as `make run` starts there)."""
    if read == default:
        return True
    if isinstance(read, (str, Path)) and isinstance(default, (str, Path)) and not Path(read).is_absolute():
        return ROOT / read == Path(default)
    return False


@pytest.fixture
def clean_env(monkeypatch):
    """No setting from this process's environment; each class is then built with no .env file."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _mismatches(listed: dict[str, str], monkeypatch, where: str) -> list[str]:
    """The listed values that, read as their variable, do not give the code's default."""
    wrong = []
    for (cls, name), field in FIELDS.items():
        if name not in listed:
            continue
        value, default = listed[name], _default(field)
        if value == "":  # empty means unset: only for a default that is nothing
            if default not in (None, [], ""):
                wrong.append(f"{where}: {name} is empty, {cls.__name__}'s default is {default!r}")
            continue
        monkeypatch.setenv(name, value)
        try:
            read = getattr(cls(_env_file=None), name.lower())
        except ValidationError as exc:
            wrong.append(f"{where}: {name}={value} is not a valid {cls.__name__} value: {exc.errors()[0]['msg']}")
            continue
        finally:
            monkeypatch.delenv(name)
        if not _same(read, default):
            wrong.append(f"{where}: {name}={value}, {cls.__name__}'s default is {default!r}")
    return wrong


def test_every_field_is_listed_in_env_example_and_the_docs():
    listed, docs = set(env_example()), {name for name, _ in documented()}
    assert not NAMES - listed, f".env.example misses {sorted(NAMES - listed)}"
    assert not NAMES - docs, f"docs/configuration.md misses {sorted(NAMES - docs)}"


def test_env_example_gives_the_code_defaults(clean_env):
    wrong = _mismatches(env_example(), clean_env, ".env.example")
    assert not wrong, "\n".join(wrong)


def test_the_docs_give_the_code_defaults(clean_env):
    """A default the code computes (BATCH_SIZE, LIVE_HOP, ...) is None in the class; the docs may describe it
    in words, but not as a number."""
    wrong = []
    for name, cell in documented():
        value = re.sub(r"\s*\(.*\)$", "", cell.strip()).replace("`", "").rstrip("/")  # `var/` (a note) -> var
        if not any((cls, name) in FIELDS for cls in CLASSES):
            continue
        defaults = {repr(_default(f)) for (_, n), f in FIELDS.items() if n == name}
        if defaults <= {"None", "[]"}:
            if value != "unset" and re.fullmatch(r"[\d.]+", value):
                wrong.append(f"docs/configuration.md: {name} is {value}, the code computes it (its default is unset)")
            continue
        wrong += _mismatches({name: value}, clean_env, "docs/configuration.md")
    assert not wrong, "\n".join(wrong)


def test_a_variable_read_by_two_classes_has_one_default():
    """MAX_UPLOAD_MB, MAX_VIDEO_DURATION_S, API_KEY and LOG_LEVEL: the API's and the page's."""
    for (cls, name), field in FIELDS.items():
        for (other, other_name), other_field in FIELDS.items():
            if name == other_name:
                assert _default(field) == _default(other_field), f"{name}: {cls.__name__} and {other.__name__} differ"


def test_the_cli_and_the_api_read_the_model_settings_alike():
    assert issubclass(Settings, ModelSettings)
    assert Settings.model_config["env_file"] == ModelSettings.model_config["env_file"] == ".env"
    assert FrontendSettings.model_config["env_file"] == ".env"
    for cls in CLASSES:  # HEAD_PATH= in .env means "not set"
        assert cls.model_config["env_ignore_empty"] and cls.model_config["extra"] == "ignore"
    cli = (ROOT / "docs/configuration.md").read_text().split("The command line (")[1].split("\n\n")[0]
    assert not {n.upper() for n in ModelSettings.model_fields} - set(re.findall(r"`([A-Z_]+)`", cli))


def test_compose_and_image_variables_are_listed_with_their_defaults(clean_env):
    """API_PORT, GPU_COUNT, API_WORKERS, ... are read by docker compose or an image's command, not by a class:
    their defaults are there. A setting an image falls back on (API_TIMEOUT_S, gunicorn's timeout) has the code's."""
    listed, docs = env_example(), dict(documented())
    assert set(re.findall(r"\$\{([A-Z_]+)", DEPLOYMENT_TEXT)) <= set(listed)
    deployment_only = set(listed) - NAMES
    assert {"API_PORT", "GPU_COUNT", "API_WORKERS", "FRONTEND_WORKERS"} <= deployment_only
    defaults: dict[str, set[str]] = {}
    for name, default in DEPLOYMENT_DEFAULTS:
        defaults.setdefault(name, set()).add(default)
    for name in deployment_only:
        assert defaults.get(name) == {listed[name]}, f"{name}: .env.example {listed[name]!r}, compose {defaults.get(name)}"
        assert name in docs and docs[name] == (listed[name] or "unset"), f"docs/configuration.md: {name}"
    images = "\n".join(p.read_text() for p in sorted((ROOT / "docker").glob("*")))
    fallbacks = dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", images))
    assert not _mismatches({n: v for n, v in fallbacks.items() if n in NAMES}, clean_env, "docker/")
    assert not {name for name, _ in documented()} - NAMES - deployment_only - RUNTIME_ENVIRONMENT


def test_the_page_image_installs_what_its_settings_need():
    """The page's image installs requirements-frontend.txt alone; requirements.txt includes it, so pinned once."""
    frontend = (ROOT / "requirements-frontend.txt").read_text().splitlines()
    everything = (ROOT / "requirements.txt").read_text().splitlines()
    for package in ("pydantic", "pydantic-settings"):
        assert any(line.startswith(f"{package}==") for line in frontend)
        assert not any(line.startswith(f"{package}==") for line in everything)
