"""`make bench-train`: how much more a head learns from few videos, in one run on this machine's default model.

A dataset cut from the real clips of ../shared/clips (tests/data without it), labelled by the sport or activity
in their names, as a team labels its own videos: 2-s segments, the training ones from the first 60% of each
video (every 0.75 s), the held-out ones from its last 30% (every 2 s, so no frame is on both sides), and the
second yoga video held out whole. Rows, each top-1 on the held-out side over three seeds and the minutes of its
first run (features extracted into its own cache, then trained):

- the LSTM head on frozen features, one view of each video (as before augmentation);
- with augmentation (`--views 4`);
- with augmentation and test-time views (`--tta` when evaluating);
- fine-tuned top blocks of I3D (`python -m models finetune`: Mixed_5b, Mixed_5c and a classifier of the labels, on
  Mixed_4f activations of 4 views, then its int8 model made and checked), ranked by its own logits;
- an LSTM head trained (4 views) on that fine-tuned extractor's features, as it is served with `HEAD_PATH`.

`python -m benchmarks.training [--out bench/train] [--seeds 3]` writes report.md and report.json there."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.clips import expected_top1
from benchmarks.api_process import ROOT
from models.video import probe

SEGMENT_S = 2.0
TRAIN_STEP_S, TEST_STEP_S = 0.75, 2.0
TRAIN_UNTIL, TEST_FROM = 0.6, 0.7  # of each video's length
HELD_OUT_WHOLE = "yoga__uniformer_Tw2yXa6CzWE.mp4"  # a second video of a class: never trained on


def _clips_folder() -> Path:
    shared = ROOT.parent / "shared" / "clips"
    return shared if (shared / "CLIPS.md").is_file() else ROOT / "tests" / "data"


def _cut(source: Path, start_s: float, out: Path) -> Path:
    import imageio_ffmpeg

    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial.mp4")
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", f"{start_s:.3f}",
                        "-i", str(source), "-t", f"{SEGMENT_S:.3f}", "-an", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "18", "-pix_fmt", "yuv420p", str(partial)], check=True)
        partial.replace(out)
    return out


def build_dataset(folder: Path, out: Path):
    """(training samples, held-out samples): segments of every clip long enough for both sides."""
    from models.training.datasets import Sample

    train, held_out = [], []
    for name in sorted(expected_top1(folder)):
        source = folder / name
        if source.suffix == ".gif":  # the cricket GIF repeats its MP4
            continue
        label, duration = name.split("__")[0], probe(source).duration_s
        starts = {"test": [], "train": []}
        if name == HELD_OUT_WHOLE:
            starts["test"] = [s * TEST_STEP_S for s in range(int(duration // TEST_STEP_S))]
        else:
            at = 0.0
            while at + SEGMENT_S <= TRAIN_UNTIL * duration + 1e-6:
                starts["train"].append(at)
                at += TRAIN_STEP_S
            at = TEST_FROM * duration
            while at + SEGMENT_S <= duration + 1e-6:
                starts["test"].append(at)
                at += TEST_STEP_S
        if name != HELD_OUT_WHOLE and (not starts["train"] or not starts["test"]):
            continue  # too short for both sides (the 3-s cricket clip)
        for side, kept in (("train", train), ("test", held_out)):
            for start in starts[side]:
                segment = _cut(source, start, out / side / label / f"{source.stem}_{start:05.2f}.mp4")
                kept.append(Sample(segment, label, segment.stem))  # each segment its own group: a random val split
    return train, held_out


def _finetuned_rows(train_samples, held_out, extractor, out: Path, seeds: int) -> list[dict]:
    """The fine-tuned extractor's own ranking, and an LSTM head on its features, seed by seed."""
    from models.runtimes.factory import open_extractor
    from models.training.finetune import FinetuneConfig, finetune
    from models.training.trainer import TrainConfig, evaluate, train

    cache = out / "cache" / "finetuned"
    shutil.rmtree(cache, ignore_errors=True)  # the activations are paid for in the first run
    own, own_min, headed, headed_min = [], [], [], []
    for seed in range(seeds):
        handle = out / "extractors" / f"finetuned-{seed}"
        started = time.perf_counter()
        finetune(train_samples, handle, extractor, cache_dir=cache, progress=False, config=FinetuneConfig(seed=seed))
        tuned = open_extractor(str(handle))
        own.append(evaluate(held_out, None, tuned, cache_dir=cache, progress=False)["top1"])
        own_min.append((time.perf_counter() - started) / 60)
        started = time.perf_counter()
        head = out / "heads" / f"finetuned-{seed}-head"  # not the extractor's name: its own ranking has that
        train(train_samples, head, tuned, cache_dir=cache, progress=False, config=TrainConfig(seed=seed, views=4))
        headed.append(evaluate(held_out, head, tuned, cache_dir=cache, progress=False)["top1"])
        headed_min.append(own_min[-1] + (time.perf_counter() - started) / 60)
        print(f"fine-tuned, seed {seed}: top-1 {own[-1]:.3f} ({tuned.precision}), with an LSTM head {headed[-1]:.3f}",
              flush=True)
        tuned.close()
    return [{"row": "fine-tuned top blocks of I3D (4 views), its own ranking", "top1": own, "first_run_min": own_min[0],
             "later_runs_min": own_min[1:]},
            {"row": "fine-tuned top blocks + an LSTM head on them (4 views)", "top1": headed,
             "first_run_min": headed_min[0], "later_runs_min": headed_min[1:]}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "train"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)

    from models.hardware import cpu_kind
    from models.paths import DEFAULT_SAVED_MODEL
    from models.runtimes.factory import open_extractor
    from models.training.trainer import TrainConfig, evaluate, train

    train_samples, held_out = build_dataset(_clips_folder(), out / "data")
    labels = sorted({s.label for s in train_samples})
    print(f"{len(labels)} classes, {len(train_samples)} training segments, {len(held_out)} held out", flush=True)
    extractor = open_extractor(str(DEFAULT_SAVED_MODEL))
    rows = []
    for row, augment in (("frozen features, one view", False), ("with augmentation (4 views)", True)):
        cache = out / "cache" / ("augmented" if augment else "plain")
        shutil.rmtree(cache, ignore_errors=True)  # each row pays for its own features
        scores, tta_scores, minutes, tta_minutes = [], [], [], []
        for seed in range(args.seeds):
            head = out / "heads" / f"{'augmented' if augment else 'plain'}-{seed}"
            started = time.perf_counter()
            train(train_samples, head, extractor, cache_dir=cache, progress=False,
                  config=TrainConfig(seed=seed, augment=augment, views=4))
            scores.append(evaluate(held_out, head, extractor, cache_dir=cache, progress=False)["top1"])
            minutes.append((time.perf_counter() - started) / 60)
            if augment:
                started = time.perf_counter()
                tta_scores.append(evaluate(held_out, head, extractor, cache_dir=cache, progress=False, tta=True)["top1"])
                tta_minutes.append(minutes[-1] + (time.perf_counter() - started) / 60)
            print(f"{row}, seed {seed}: top-1 {scores[-1]:.3f}" + (f", with TTA {tta_scores[-1]:.3f}" if augment else ""),
                  flush=True)
        rows.append({"row": row, "top1": scores, "first_run_min": minutes[0], "later_runs_min": minutes[1:]})
        if augment:
            rows.append({"row": "with augmentation and test-time views", "top1": tta_scores,
                         "first_run_min": tta_minutes[0], "later_runs_min": tta_minutes[1:]})
    rows += _finetuned_rows(train_samples, held_out, extractor, out, args.seeds)
    report = {"cpu": cpu_kind(), "machine": platform.machine(), "extractor": extractor.runtime,
              "precision": extractor.precision, "classes": labels, "train_segments": len(train_samples),
              "held_out_segments": len(held_out), "segment_s": SEGMENT_S, "seeds": args.seeds, "rows": rows}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Few videos: {len(labels)} classes, {len(train_samples)} training and {len(held_out)} held-out "
             f"segments of {SEGMENT_S:g} s", "", f"CPU: {report['cpu']}; {extractor.runtime} {extractor.precision}", "",
             f"| | held-out top-1, mean of {args.seeds} seeds (min-max) | minutes, first run (features + training + "
             "evaluation) | minutes, later runs (features cached) |", "|---|---|---|---|"]
    for r in rows:
        later = f"{statistics.mean(r['later_runs_min']):.2f}" if r["later_runs_min"] else ""
        lines.append(f"| {r['row']} | {statistics.mean(r['top1']):.3f} ({min(r['top1']):.3f}-{max(r['top1']):.3f}) "
                     f"| {r['first_run_min']:.2f} | {later} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    extractor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
