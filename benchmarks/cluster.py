"""`make bench-cluster`: jobs/s and clips/s through Redis and queue workers, against one API process.

    .venv/bin/python -m benchmarks.cluster [--workers 1 2] [--rounds 1] [--out bench]

Every scenario gets the same jobs: each real clip in tests/data (`--rounds` times), all submitted at once
to `POST /jobs`, then followed until done. The baseline is one API process with in-process jobs (no
broker); then the gateway with 1, 2, ... queue workers on this machine. Every result's top-1 is checked.
On a 2-core machine two workers share the same cores, so they cannot double throughput: the figures say
what the queue costs and that it works; each worker on its own GPU or host adds its own throughput.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.api_process import ROOT, running_api
from benchmarks.clips import DATA, expected_top1
from benchmarks.cluster_process import running_cluster
from benchmarks.load import cpu_name

QUEUE_ROOM = {"JOBS_MAX_QUEUED": "256", "LOG_LEVEL": "WARNING"}


def run_jobs(api: str, clips: list[Path], labels: dict[str, str], timeout_s: float = 1800) -> dict:
    """Submit every clip as a job at once, follow them all; throughput from the first submit to the last done."""
    started = time.monotonic()
    ids = {}
    with httpx.Client(timeout=120) as client:
        for clip in clips:
            response = client.post(f"{api}/jobs", files={"video": (clip.name, clip.read_bytes())})
            response.raise_for_status()
            ids[response.json()["id"]] = clip
        finals: dict[str, dict] = {}
        while len(finals) < len(ids) and time.monotonic() - started < timeout_s:
            for job_id in [j for j in ids if j not in finals]:
                body = client.get(f"{api}/jobs/{job_id}").json()
                if body["status"] in ("done", "failed"):
                    finals[job_id] = body
            time.sleep(0.2)
    wall = time.monotonic() - started
    done = [f for f in finals.values() if f["status"] == "done"]
    windows = sum(len(f["result"]["clips"]) for f in done)
    correct = sum(f["result"]["actions"][0]["label"] == labels[ids[job_id].name]
                  for job_id, f in finals.items() if f["status"] == "done")
    return {"jobs": len(ids), "done": len(done), "correct": correct, "wall_s": round(wall, 1),
            "jobs_per_s": round(len(done) / wall, 3), "clips_per_s": round(windows / wall, 2), "windows": windows,
            "by_worker": dict(Counter(f.get("worker") or "in-process" for f in done))}


def markdown(rows: list[dict], cpu: str) -> str:
    base = rows[0]["clips_per_s"]
    lines = [f"# make bench-cluster ({cpu})", "",
             "| setup | jobs | done | right top-1 | wall | jobs/s | clips/s | vs one process | jobs per worker |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = ", ".join(f"{n}" for _, n in sorted(r["by_worker"].items()))
        lines.append(f"| {r['setup']} | {r['jobs']} | {r['done']} | {r['correct']}/{r['jobs']} | {r['wall_s']} s | "
                     f"{r['jobs_per_s']} | {r['clips_per_s']} | {r['clips_per_s'] / base:.2f}x | {share} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="one scenario per number of workers")
    parser.add_argument("--rounds", type=int, default=1, help="how many times each clip of tests/data is sent")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    labels = expected_top1()
    clips = [DATA / name for name in sorted(labels)] * args.rounds
    rows = []
    print("[bench-cluster] one API process, in-process jobs ...", file=sys.stderr, flush=True)
    with running_api(QUEUE_ROOM) as api:
        rows.append({"setup": "one API process (no broker)", **run_jobs(api.url, clips, labels)})
    for workers in args.workers:
        print(f"[bench-cluster] gateway + {workers} queue worker(s) ...", file=sys.stderr, flush=True)
        with running_cluster(workers, env=QUEUE_ROOM) as cluster:
            rows.append({"setup": f"gateway + {workers} worker{'s' if workers > 1 else ''}",
                         **run_jobs(cluster.api, clips, labels)})
    report = markdown(rows, cpu_name())
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster.md").write_text(report)
    (args.out / "cluster.json").write_text(json.dumps({"cpu": cpu_name(), "scenarios": rows}, indent=2) + "\n")
    return 0 if all(r["done"] == r["correct"] == r["jobs"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
