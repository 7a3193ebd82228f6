"""Labelled video lists from the layouts people have, and leak-free subsets of them.

Layouts: (a) a folder with one subfolder per class (UCF101/UCF11 style); (b) a CSV with columns
`video,label`, paths relative to the CSV; (c) UCF101's split files (`classInd.txt`,
`trainlist0N.txt`, `testlist0N.txt`) beside the class folders, with a split number.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif"}
_UCF_GROUP = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c\d+$", re.IGNORECASE)


class DatasetError(ValueError):
    """The dataset description is not usable (missing file, unknown column, empty...)."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str  # videos of one group (UCF101's _gXX_: same actor and scene) never straddle splits


def source_group(path: Path, label: str) -> str:
    """UCF101's `v_Class_g08_c01.avi` -> `Class/g08`; any other name is its own group."""
    match = _UCF_GROUP.match(path.stem)
    return f"{label}/g{match['group']}" if match else f"{label}/{path.stem}"


def _sample(path: Path, label: str) -> Sample:
    return Sample(path=path, label=label, group=source_group(path, label))


def from_class_folders(root: Path) -> list[Sample]:
    root = Path(root)
    samples = [
        _sample(path, class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for path in sorted(class_dir.rglob("*"))
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()
    ]
    if not samples:
        raise DatasetError(f"{root} has no class subfolders with videos in them")
    return samples


def from_csv(csv_path: Path) -> list[Sample]:
    csv_path = Path(csv_path)
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{csv_path} needs the columns video,label (it has {reader.fieldnames})")
        samples = [
            _sample((csv_path.parent / row["video"]).resolve(), row["label"].strip())
            for row in reader
            if row["video"] and row["label"] and row["label"].strip()
        ]
    if not samples:
        raise DatasetError(f"{csv_path} lists no videos")
    return samples


def from_ucf101_split(root: Path, split: int, subset: str) -> list[Sample]:
    """`subset` is 'train' or 'test'; `root` holds the class folders and the split files
    (directly or in `ucfTrainTestlist/`)."""
    root = Path(root)
    lists = root / "ucfTrainTestlist" if (root / "ucfTrainTestlist").is_dir() else root
    list_file = lists / f"{subset}list{split:02d}.txt"
    if not (lists / "classInd.txt").is_file() or not list_file.is_file():
        raise DatasetError(f"{lists} needs classInd.txt and {list_file.name}")
    classes = {}
    for line in (lists / "classInd.txt").read_text().splitlines():
        if line.strip():
            index, name = line.split()
            classes[name.lower()] = name
    samples = []
    for line in list_file.read_text().splitlines():
        if not line.strip():
            continue
        relative = line.split()[0]
        class_name = classes.get(relative.split("/")[0].lower())
        if class_name is None:
            raise DatasetError(f"{list_file}: {relative} is in no class of classInd.txt")
        samples.append(_sample(root / relative, class_name))
    return samples


def load_samples(spec: str | Path, *, split: int | None = None, subset: str = "train") -> list[Sample]:
    """A CSV file, a class-folder tree, or (with `split`) a UCF101 tree with split files."""
    spec = Path(spec)
    if not spec.exists():
        raise DatasetError(f"{spec} does not exist")
    if spec.is_file():
        return from_csv(spec)
    if split is not None:
        return from_ucf101_split(spec, split, subset)
    return from_class_folders(spec)


def write_csv(samples: list[Sample], csv_path: Path) -> None:
    """Paths are written relative to the CSV's folder when they can be."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    base = csv_path.parent.resolve()
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "label"])
        for s in samples:
            path = s.path.resolve()
            try:
                shown = path.relative_to(base)
            except ValueError:
                shown = path
            writer.writerow([str(shown), s.label])


def split_by_group(
    samples: list[Sample], *, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
    num_classes: int | None = None, max_per_class: int | None = None,
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Stratified train/val/test split in which all videos of one source group stay together.

    Optionally keep only the first `num_classes` classes (sorted by name) and at most `max_per_class`
    videos of each (whole groups, chosen at random with `seed`).
    """
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise DatasetError(f"split fractions must be non-negative and add up to 1, got {fractions}")
    rng = random.Random(seed)
    by_class: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        by_class[s.label][s.group].append(s)
    classes = sorted(by_class)[:num_classes] if num_classes else sorted(by_class)
    parts: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
    for label in classes:
        groups = [by_class[label][g] for g in sorted(by_class[label])]
        rng.shuffle(groups)
        if max_per_class:
            kept, count = [], 0
            for group in groups:
                if count >= max_per_class:
                    break
                kept.append(group[: max_per_class - count])
                count += len(kept[-1])
            groups = kept
        total = sum(len(g) for g in groups)
        targets = [round(total * fractions[0]), round(total * (fractions[0] + fractions[1]))]
        seen = 0
        for group in groups:  # fill train, then val, then test, group by group
            part = 0 if seen < targets[0] else 1 if seen < targets[1] else 2
            parts[part].extend(group)
            seen += len(group)
    return parts
