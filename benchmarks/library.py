"""`make bench-library`: the library with 1,000 stored games of 4,000 windows each, on SQLite and on PostgreSQL
(a throwaway cluster of Debian's), in one run: how long a search across all of them takes (p50, p95), a page of
`GET /videos`, and what a game takes on disk.

    .venv/bin/python -m benchmarks.library [--games 1000] [--windows 4000] [--queries 200] [--out bench/library]

The games are one real result (the model's, on `make bench-moments`' game A: real clips, real windows and
moments) tiled to --windows windows, each game with its labels rotated among Kinetics-400's sport labels so that
a label is found in some games and not others. Latency is `Library.search` and `Library.videos` in this process
(the route adds its HTTP on top). Writes library.json and library.md under --out.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def real_result(out: Path) -> dict:
    """The default model's result on bench-moments' game A (made once, kept beside the report)."""
    kept = out / "game-A.result.json"
    if kept.is_file():
        return json.loads(kept.read_text())
    from benchmarks.moments import GAMES, _game
    from service.model import open_recognizer
    from service.settings import Settings

    clips, seed, repeats, _ = GAMES["A"]
    video, _truth = _game(ROOT / "bench" / "moments", "A", clips, seed, repeats)
    recognizer = open_recognizer(Settings(warm_up=False))
    try:
        result = recognizer.recognize(video, filename=video.name)
    finally:
        recognizer.close()
    out.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(result))
    return result


def game(result: dict, windows: int, rename: dict[str, str], number: int) -> dict:
    """`result` repeated end to end to `windows` windows, its labels renamed by `rename`."""
    length, clips, segments = result["video"]["duration_s"], [], []
    swap = lambda label: rename.get(label, label)  # noqa: E731
    block = 0
    while len(clips) < windows:
        shift = block * length
        for clip in result["clips"][: windows - len(clips)]:
            clips.append({**clip, "index": len(clips), "start_s": round(clip["start_s"] + shift, 3),
                          "end_s": round(clip["end_s"] + shift, 3),
                          "actions": [{**a, "label": swap(a["label"])} for a in clip["actions"]]})
        last = clips[-1]["end_s"]
        for s in result["segments"]:
            if s["end_s"] + shift <= last:
                first = s["windows"][0] + block * len(result["clips"])
                segments.append({**s, "label": swap(s["label"]), "start_s": round(s["start_s"] + shift, 3),
                                 "end_s": round(s["end_s"] + shift, 3), "peak_s": round(s["peak_s"] + shift, 3),
                                 "windows": [first, first + s["windows"][1] - s["windows"][0]]})
        block += 1
    return {**result, "clips": clips, "segments": segments,
            "actions": [{**a, "label": swap(a["label"])} for a in result["actions"]],
            "video": {**result["video"], "filename": f"game-{number:04d}.mp4", "duration_s": last}}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(url: str, result: dict, args, labels: list[str]) -> dict:
    from models.recognition.segments import SegmentSettings
    from service.library.store import Library, analysis
    from service.settings import Settings

    library = Library.open(Settings(database_url=url))
    rng = random.Random(1)
    own = sorted({s["label"] for s in result["segments"]})
    asked = analysis(Settings(), head=None, sport=None, top_k=5, segments=SegmentSettings())
    started, stored = time.perf_counter(), 0
    for number in range(args.games):
        rename = dict(zip(own, rng.sample(labels, len(own))))
        one = game(result, args.windows, rename, number)
        library.keep(one, sha256=f"{number:064x}", size=1, analysed=asked)
        stored += len(one["segments"])
    write_s = time.perf_counter() - started
    queries = [rng.choice(labels) for _ in range(args.queries)]
    search_ms, found = [], []
    for label in queries:
        begun = time.perf_counter()
        total, _page = library.search(labels=[label], min_confidence=0.3, limit=50)
        search_ms.append((time.perf_counter() - begun) * 1000)
        found.append(total)
    videos_ms = []
    for _ in range(args.queries // 4):
        begun = time.perf_counter()
        library.videos(limit=20, offset=rng.randrange(0, max(1, args.games - 20)), labels=[rng.choice(labels)])
        videos_ms.append((time.perf_counter() - begun) * 1000)
    size = _size(library)
    library.close()
    return {"games": args.games, "windows_per_game": args.windows, "moments": stored, "write_s": round(write_s, 1),
            "search_ms": {"p50": round(percentile(search_ms, 0.5), 2), "p95": round(percentile(search_ms, 0.95), 2)},
            "moments_found_per_search": round(statistics.mean(found), 1),
            "videos_ms": {"p50": round(percentile(videos_ms, 0.5), 2), "p95": round(percentile(videos_ms, 0.95), 2)},
            "bytes_per_game": round(size / args.games)}


def _size(library) -> int:
    from sqlalchemy import text

    with library.engine.connect() as db:
        if library.engine.dialect.name == "sqlite":
            db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return Path(library.engine.url.database).stat().st_size
        return int(db.execute(text("SELECT pg_database_size(current_database())")).scalar())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.library", description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=4000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "library")
    args = parser.parse_args(argv)
    from benchmarks.__main__ import machine
    from benchmarks.postgres_process import PostgresServer
    from models.sports import sports

    result = real_result(args.out)
    labels = sorted({label for sport in sports().values() for label in sport.labels})
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "runs": {}}
    with tempfile.TemporaryDirectory() as folder:
        report["runs"]["sqlite"] = measure(f"sqlite:///{folder}/library.db", result, args, labels)
        print("sqlite:", report["runs"]["sqlite"], file=sys.stderr, flush=True)
    server = PostgresServer()
    try:
        report["runs"]["postgresql"] = measure(server.url, result, args, labels)
        print("postgresql:", report["runs"]["postgresql"], file=sys.stderr, flush=True)
    finally:
        server.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "library.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# The library ({report['date']})", "", "| database | games | moments | write | search p50 / p95 | "
             "videos page p50 / p95 | per game |", "|---|---|---|---|---|---|---|"]
    for name, run in report["runs"].items():
        lines.append(f"| {name} | {run['games']} x {run['windows_per_game']} windows | {run['moments']} | "
                     f"{run['write_s']} s | {run['search_ms']['p50']} / {run['search_ms']['p95']} ms | "
                     f"{run['videos_ms']['p50']} / {run['videos_ms']['p95']} ms | {run['bytes_per_game'] / 1e3:.0f} kB |")
    (args.out / "library.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
