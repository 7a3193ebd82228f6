"""Sport vocabularies: Kinetics-400's sport labels grouped by sport (data/sports.json), every label checked to be one
of the 400. A sport narrows a result to its labels (models.recognition.heads.SportHead)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from models.labels import kinetics_labels

SPORTS_FILE = Path(__file__).resolve().parent / "data" / "sports.json"


@dataclass(frozen=True)
class Sport:
    id: str
    name: str
    labels: tuple[str, ...]


class UnknownSportError(ValueError):
    """A sport that is not in the vocabularies; the message lists those that are."""


@lru_cache(maxsize=1)
def sports() -> dict[str, Sport]:
    known = set(kinetics_labels())
    found = {}
    for sport_id, entry in json.loads(SPORTS_FILE.read_text()).items():
        missing = [label for label in entry["labels"] if label not in known]
        if missing:
            raise RuntimeError(f"{SPORTS_FILE}: {sport_id} names labels that Kinetics-400 does not have: {missing}")
        found[sport_id] = Sport(sport_id, entry["name"], tuple(entry["labels"]))
    return found


def sport(sport_id: str) -> Sport:
    try:
        return sports()[sport_id]
    except KeyError:
        raise UnknownSportError(f"unknown sport {sport_id!r}; known: {', '.join(sports())}") from None
