"""`make load`: many clients at once send real clips of mixed length to a fresh API, some through the
upload page, and every answer is checked.

    .venv/bin/python -m benchmarks.load [--clients 16 64] [--page-share 0.25] [--out bench]

Each scenario starts its own API and page on loopback ports. `clients` threads each send their share of
`--requests` recognitions (default one per client), one after another. The report gives throughput,
latency percentiles, answers by status code, the API's peak RSS and the temp files left.

Targets:
- up to --serve-all clients (16): every answer is 200 with the right label;
- beyond: every request is answered, 200 with the right label or 503 with Retry-After ("busy");
- in both: nothing else, none past the time limit, no temp file left, peak RSS under --max-rss-mb.

The run is bounded: no request starts after --time-limit-s, and each waits at most the API's
processing time limit plus a minute. Exits 1 when a scenario misses its target.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

from benchmarks.api_process import ROOT, peak_rss_bytes, reset_peak_rss, running_api, running_frontend
from benchmarks.clips import DATA, expected_top1

MB = 2**20
RESULT_JSON = re.compile(r'<script type="application/json" id="result-data">(.*?)</script>', re.S)
PAGE_ERROR = re.compile(r'<p id="error"[^>]*>(.*?)</p>', re.S)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Answer:
    client: int
    via: str  # "api" or "page"
    clip: str
    status: int | None  # None: no answer (connection failed or the client gave up)
    seconds: float
    correct: bool | None = None  # for 200: the top-1 is the clip's label
    retry_after: bool = False  # for 503: a Retry-After header (API) or the busy message (page)
    clips: int = 0
    detail: str = ""


def _post_api(client: httpx.Client, api: str, clip: Path) -> tuple[int, dict | None, bool, str]:
    with open(clip, "rb") as f:
        response = client.post(f"{api}/recognize_action", files={"video": (clip.name, f, "application/octet-stream")})
    body = response.json()
    result = body if response.status_code == 200 else None
    return response.status_code, result, "retry-after" in response.headers, str(body.get("detail", ""))[:200]


def _post_page(client: httpx.Client, web: str, clip: Path) -> tuple[int, dict | None, bool, str]:
    token = CSRF.search(client.get(f"{web}/").text).group(1)
    with open(clip, "rb") as f:
        response = client.post(f"{web}/recognize", data={"csrf_token": token},
                               files={"video": (clip.name, f, "application/octet-stream")})
    if response.status_code == 200 and (found := RESULT_JSON.search(response.text)):
        return 200, json.loads(found.group(1)), False, ""
    message = PAGE_ERROR.search(response.text)
    detail = message.group(1).strip() if message else response.text[:200]
    return response.status_code, None, "busy" in detail, detail


def _client(index: int, jobs: list[tuple[str, Path]], urls: dict, labels: dict, timeout_s: float, stop_at: float,
            answers: list[Answer]) -> None:
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10)) as client:
        for via, clip in jobs:
            if time.monotonic() > stop_at:
                return
            started = time.monotonic()
            try:
                post = _post_api if via == "api" else _post_page
                status, result, retry_after, detail = post(client, urls[via], clip)
            except httpx.HTTPError as exc:
                answers.append(Answer(index, via, clip.name, None, time.monotonic() - started,
                                      detail=f"{type(exc).__name__}: {exc}"[:200]))
                continue
            answer = Answer(index, via, clip.name, status, time.monotonic() - started, retry_after=retry_after,
                            detail=detail)
            if result is not None:
                answer.correct = result["actions"][0]["label"] == labels[clip.name]
                answer.clips = len(result["clips"])
            answers.append(answer)


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def run_scenario(clients: int, *, requests: int | None = None, page_share: float = 0.25, clips: list[Path] | None = None,
                 serve_all: bool = True, time_limit_s: float = 1200, max_rss_mb: float = 2048,
                 api_env: dict[str, str] | None = None) -> dict:
    """One scenario against a fresh API and page; returns its report (with `ok` and the `failures`)."""
    labels = expected_top1()
    clips = clips or [DATA / name for name in sorted(labels)]
    requests = requests or clients
    page_every = round(1 / page_share) if page_share > 0 else 0  # every k-th request goes through the page
    plan: list[list[tuple[str, Path]]] = [[] for _ in range(clients)]
    for i in range(requests):
        via = "page" if page_every and i % page_every == page_every - 1 else "api"
        plan[i % clients].append((via, clips[i % len(clips)]))
    env = {"LOG_LEVEL": "WARNING", **(api_env or {})}
    with running_api(env) as api, running_frontend(api.url) as web:
        processing_limit_s = float(env.get("PROCESSING_TIMEOUT_S", 900))
        reset_peak_rss(api.pid)
        answers: list[Answer] = []
        started = time.monotonic()
        threads = [threading.Thread(target=_client, args=(i, plan[i], {"api": api.url, "page": web}, labels,
                                                          processing_limit_s + 60, started + time_limit_s, answers))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall_s = time.monotonic() - started
        peak_mb = peak_rss_bytes(api.pid) / MB
        temp_left = sorted(p.name for p in api.upload_dir.iterdir())
    return _report(clients, requests, answers, wall_s, peak_mb, temp_left, serve_all=serve_all,
                   limit_s=processing_limit_s, max_rss_mb=max_rss_mb)


def _report(clients: int, requests: int, answers: list[Answer], wall_s: float, peak_mb: float, temp_left: list[str], *,
            serve_all: bool, limit_s: float, max_rss_mb: float) -> dict:
    by_status: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status) if answer.status is not None else "no answer"
        by_status[key] = by_status.get(key, 0) + 1
    served = [a for a in answers if a.status == 200]
    failures = []
    if len(answers) < requests:
        failures.append(f"{requests - len(answers)} requests not sent within the time limit")
    for a in answers:
        if a.status == 200 and not a.correct:
            failures.append(f"client {a.client} ({a.via}) {a.clip}: wrong top-1")
        elif a.status == 503 and not serve_all:
            if not a.retry_after:
                failures.append(f"client {a.client} ({a.via}) {a.clip}: 503 without Retry-After: {a.detail}")
        elif a.status != 200:
            failures.append(f"client {a.client} ({a.via}) {a.clip}: {a.status or 'no answer'} {a.detail}")
        if a.seconds > limit_s + 5:
            failures.append(f"client {a.client} ({a.via}) {a.clip}: answered after {a.seconds:.0f} s")
    if temp_left:
        failures.append(f"temp files left: {temp_left}")
    if peak_mb > max_rss_mb:
        failures.append(f"peak RSS {peak_mb:.0f} MB over {max_rss_mb:.0f} MB")
    latencies = [a.seconds for a in answers if a.status is not None]
    served_latencies = [a.seconds for a in served]
    return {
        "clients": clients, "requests": requests, "target": "all 200" if serve_all else "200 or 503 + Retry-After",
        "via_page": sum(a.via == "page" for a in answers), "wall_s": round(wall_s, 1),
        "requests_per_s": round(len(served) / wall_s, 3), "clips_per_s": round(sum(a.clips for a in served) / wall_s, 2),
        "answers": dict(sorted(by_status.items())), "correct": sum(bool(a.correct) for a in served),
        "latency_s": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95),
                      "p99": _percentile(latencies, 99), "max": _percentile(latencies, 100)},
        "latency_200_s": {"p50": _percentile(served_latencies, 50), "p95": _percentile(served_latencies, 95)},
        "peak_rss_mb": round(peak_mb), "temp_files_left": len(temp_left),
        "ok": not failures, "failures": failures[:20], "answers_detail": [asdict(a) for a in answers],
    }


def markdown(reports: list[dict], cpu: str) -> str:
    lines = [f"# Load test ({cpu})", "",
             "| clients | target | answers | correct | req/s | clips/s | p50 | p95 | p99 | peak RSS | temp left | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        answers = ", ".join(f"{count}× {status}" for status, count in r["answers"].items())
        lat = r["latency_s"]
        lines.append(f"| {r['clients']} ({r['via_page']} via page) | {r['target']} | {answers} | "
                     f"{r['correct']}/{r['answers'].get('200', 0)} | {r['requests_per_s']} | {r['clips_per_s']} | "
                     f"{lat['p50']} s | {lat['p95']} s | {lat['p99']} s | {r['peak_rss_mb']} MB | "
                     f"{r['temp_files_left']} | {'yes' if r['ok'] else 'NO'} |")
    for r in reports:
        for failure in r["failures"]:
            lines.append(f"- {r['clients']} clients: {failure}")
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    return f"{model}, {'AMX' if 'amx_bf16' in info else 'no AMX'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="one scenario per number")
    parser.add_argument("--requests", type=int, help="per scenario (default: one per client)")
    parser.add_argument("--page-share", type=float, default=0.25, help="share of requests sent through the page")
    parser.add_argument("--serve-all", type=int, default=16, help="scenarios up to this many clients must get all 200")
    parser.add_argument("--time-limit-s", type=float, default=1200, help="no request starts after this")
    parser.add_argument("--max-rss-mb", type=float, default=2048)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    reports = []
    for clients in args.clients:
        print(f"[load] {clients} clients ...", file=sys.stderr, flush=True)
        reports.append(run_scenario(clients, requests=args.requests, page_share=args.page_share,
                                    serve_all=clients <= args.serve_all, time_limit_s=args.time_limit_s,
                                    max_rss_mb=args.max_rss_mb))
    report = markdown(reports, cpu_name())
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.md").write_text(report)
    (args.out / "load.json").write_text(json.dumps({"cpu": cpu_name(), "scenarios": reports}, indent=2) + "\n")
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
