"""The real clips in tests/data and the Kinetics-400 top-1 a correct model gives each (from their CLIPS.md)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def expected_top1(folder: Path = DATA) -> dict[str, str]:
    """{file name: label} from the table in `folder`/CLIPS.md ("filling eyebrows (applying cream is 2nd)" -> the label)."""
    labels = {}
    for line in (folder / "CLIPS.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and (folder / cells[0]).is_file():
            labels[cells[0]] = cells[1].split(" (")[0]
    return labels
