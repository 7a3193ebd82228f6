"""Dataset layouts and leak-free subsets, on small fixture trees."""

from __future__ import annotations

import csv

import pytest

from models.training.datasets import (
    DatasetError,
    from_class_folders,
    load_samples,
    source_group,
    split_by_group,
    write_csv,
)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def ucf_tree(tmp_path):
    """A UCF101-shaped tree: 3 classes x 4 groups x 2 clips, with split files."""
    root = tmp_path / "UCF101"
    names = ["ApplyEyeMakeup", "Archery", "Basketball"]
    for cls in names:
        for g in range(1, 5):
            for c in range(1, 3):
                _touch(root / cls / f"v_{cls}_g{g:02d}_c{c:02d}.avi")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    train = [f"{n}/v_{n}_g{g:02d}_c{c:02d}.avi {i}" for i, n in enumerate(names, 1) for g in (1, 2, 3) for c in (1, 2)]
    test = [f"{n}/v_{n}_g04_c{c:02d}.avi" for n in names for c in (1, 2)]
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def test_class_folders(ucf_tree):
    samples = from_class_folders(ucf_tree)
    assert len(samples) == 24 and {s.label for s in samples} == {"ApplyEyeMakeup", "Archery", "Basketball"}
    assert samples[0].group == "ApplyEyeMakeup/g01"


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    _touch(tmp_path / "clips" / "a.mp4")
    (tmp_path / "list.csv").write_text("video,label\nclips/a.mp4,shooting\n")
    (sample,) = load_samples(tmp_path / "list.csv")
    assert sample.path == (tmp_path / "clips" / "a.mp4").resolve() and sample.label == "shooting"
    (tmp_path / "bad.csv").write_text("file,class\na.mp4,x\n")
    with pytest.raises(DatasetError, match="video,label"):
        load_samples(tmp_path / "bad.csv")


def test_ucf101_split_files(ucf_tree):
    train = load_samples(ucf_tree, split=1, subset="train")
    test = load_samples(ucf_tree, split=1, subset="test")
    assert len(train) == 18 and len(test) == 6
    assert not {s.group for s in train} & {s.group for s in test}
    with pytest.raises(DatasetError, match="trainlist02"):
        load_samples(ucf_tree, split=2)


def test_source_group():
    from pathlib import Path

    assert source_group(Path("v_Archery_g08_c03.avi"), "Archery") == "Archery/g08"
    assert source_group(Path("my_clip.mp4"), "shooting") == "shooting/my_clip"


def test_split_keeps_groups_together_and_is_stratified(ucf_tree):
    samples = from_class_folders(ucf_tree)
    train, val, test = split_by_group(samples, fractions=(0.5, 0.25, 0.25), seed=3)
    groups = [{s.group for s in part} for part in (train, val, test)]
    assert not groups[0] & groups[1] and not groups[0] & groups[2] and not groups[1] & groups[2]
    for part, expected in ((train, 12), (val, 6), (test, 6)):
        assert len(part) == expected
        assert {s.label for s in part} == {"ApplyEyeMakeup", "Archery", "Basketball"}
    assert split_by_group(samples, fractions=(0.5, 0.25, 0.25), seed=3) == (train, val, test)  # reproducible


def test_subset_of_classes_and_videos(ucf_tree, tmp_path):
    samples = from_class_folders(ucf_tree)
    train, val, test = split_by_group(samples, num_classes=2, max_per_class=4, seed=0)
    everything = train + val + test
    assert {s.label for s in everything} == {"ApplyEyeMakeup", "Archery"}
    assert all(sum(s.label == label for s in everything) == 4 for label in ("ApplyEyeMakeup", "Archery"))
    write_csv(train, tmp_path / "out" / "train.csv")
    rows = list(csv.DictReader(open(tmp_path / "out" / "train.csv")))
    assert len(rows) == len(train) and [s.path for s in load_samples(tmp_path / "out" / "train.csv")] == \
        [s.path.resolve() for s in train]


def test_bad_fractions_and_missing_data(tmp_path):
    with pytest.raises(DatasetError):
        split_by_group([], fractions=(0.5, 0.5, 0.5))
    with pytest.raises(DatasetError, match="does not exist"):
        load_samples(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class subfolders"):
        load_samples(tmp_path / "empty")
