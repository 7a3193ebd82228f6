"""Memory soak: start the API, warm it up, send N sequential recognitions, report how its RSS moved.

    .venv/bin/python scripts/soak.py --requests 100 [--video tests/data/cricket__...mp4] [--json out.json]

Exits 1 when the RSS after the last request is more than --max-growth (default 5%) above the RSS after
warm-up. Traffic goes to 127.0.0.1 only; the loop is bounded by --requests and --timeout-s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.api_process import rss_bytes, running_api  # noqa: E402
DEFAULT_VIDEO = ROOT / "tests" / "data" / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"


def soak(video: Path, *, requests: int, warm_up: int, timeout_s: float) -> dict:
    started = time.monotonic()
    with running_api() as api:
        data = video.read_bytes()
        samples = []
        with httpx.Client(base_url=api.url, timeout=600) as client:
            for i in range(warm_up + requests):
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"stopped after {i} requests ({timeout_s} s)")
                response = client.post("/recognize_action", content=data, headers={"Content-Type": "video/mp4"})
                response.raise_for_status()
                samples.append(rss_bytes(api.pid))
        after_warm_up, last = samples[warm_up - 1], samples[-1]
        return {
            "video": video.name, "warm_up_requests": warm_up, "requests": requests,
            "rss_after_warm_up_mb": round(after_warm_up / 2**20, 1), "rss_last_mb": round(last / 2**20, 1),
            "rss_peak_mb": round(max(samples[warm_up:]) / 2**20, 1),
            "growth": round(last / after_warm_up - 1, 4),
            "leftover_uploads": len(os.listdir(api.upload_dir)),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--max-growth", type=float, default=0.05)
    parser.add_argument("--timeout-s", type=float, default=3 * 3600)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = soak(args.video, requests=args.requests, warm_up=args.warm_up, timeout_s=args.timeout_s)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["growth"] < args.max_growth and report["leftover_uploads"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
