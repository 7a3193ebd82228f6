"""`make bench-live`: the lag from a camera frame to its label, through a real API's live WebSocket.

    .venv/bin/python -m benchmarks.live [--seconds 30] [--out bench]

A "camera" plays real clips from tests/data back to back at 25 fps, as JPEG frames with a short side of 256
(what the live page sends). The lag of a window is from the moment its last frame is sent to the moment its
ranking arrives. Scenarios, in one run against one API process: one session; two sessions at once; one
session while uploads are recognized on the same model. The baseline is the model's own time per window in
the first scenario: lag is reported against it, and against the hop (a new window every 1.28 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from benchmarks.api_process import ROOT, running_api
from benchmarks.clips import DATA, expected_top1
from benchmarks.load import cpu_name

CAMERA_CLIPS = ["basketball__mmaction2_shooting_drill.mp4", "weightlifting__stgcn_clean_and_jerk.mp4",
                "taichi__stgcn_ta_chi.mp4", "archery__paddlevideo_example.avi"]
FPS = 25
CLIP_LEN, HOP = 64, 32


def camera_frames(seconds: float) -> tuple[list[bytes], list[str]]:
    """JPEG frames of the clips back to back (looped to `seconds`), and the expected label of each frame."""
    import cv2

    labels = expected_top1()
    frames, truth = [], []
    while len(frames) < seconds * FPS:
        for name in CAMERA_CLIPS:
            capture = cv2.VideoCapture(str(DATA / name))
            while (read := capture.read())[0]:
                frame = read[1]
                height, width = frame.shape[:2]
                scale = 256 / min(height, width)
                frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
                frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
                truth.append(labels[name])
            capture.release()
    n = int(seconds * FPS)
    return frames[:n], truth[:n]


def stream(api: str, frames: list[bytes], truth: list[str]) -> dict:
    """One live session: send `frames` at 25 fps, time every window's ranking against its last frame's send."""
    token = httpx.post(f"{api}/live/sessions", timeout=10).json()["token"]
    sent_at: dict[int, float] = {}
    windows: list[dict] = []
    with connect(f"{api.replace('http', 'ws', 1)}/live?token={token}", open_timeout=10, max_size=2**20) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"

        def receive() -> None:
            try:
                while True:
                    message = json.loads(ws.recv(timeout=60))
                    message["lag_s"] = time.monotonic() - sent_at[message["end_frame"]]
                    windows.append(message)
                    if message["end_frame"] >= last_window_end:
                        return
            except Exception:  # noqa: BLE001 - the report counts what arrived
                return

        last_window_end = CLIP_LEN + (len(frames) - CLIP_LEN) // HOP * HOP
        receiver = threading.Thread(target=receive)
        receiver.start()
        started = time.monotonic()
        for i, frame in enumerate(frames):
            time.sleep(max(0.0, started + i / FPS - time.monotonic()))
            ws.send(frame)
            sent_at[i + 1] = time.monotonic()
        receiver.join(timeout=120)
    expected = (len(frames) - CLIP_LEN) // HOP + 1
    lags = sorted(w["lag_s"] for w in windows)
    single = [w for w in windows if truth[w["start_frame"]] == truth[w["end_frame"] - 1]]  # within one clip
    return {
        "windows": expected, "recognized": len(windows), "dropped": windows[-1]["dropped_windows"] if windows else None,
        "lag_median_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p95_s": round(lags[int(0.95 * (len(lags) - 1))], 3) if lags else None,
        "lag_max_s": round(lags[-1], 3) if lags else None,
        "inference_median_s": round(statistics.median(w["inference_ms"] for w in windows) / 1000, 3) if windows else None,
        "right_top1": f"{sum(w['actions'][0]['label'] == truth[w['start_frame']] for w in single)}/{len(single)}",
    }


def uploads_meanwhile(api: str, stop: threading.Event, done: list[int]) -> None:
    video = DATA / "yoga__askanything_yoga.mp4"
    with httpx.Client(timeout=600) as client:
        while not stop.is_set():
            if client.post(f"{api}/recognize_action", files={"video": (video.name, video.read_bytes())}).status_code == 200:
                done.append(1)


def scenario(name: str, api: str, frames, truth, *, sessions: int = 1, uploads: bool = False) -> list[dict]:
    print(f"[bench-live] {name} ...", file=sys.stderr, flush=True)
    results: list[dict] = [{} for _ in range(sessions)]
    stop, uploaded = threading.Event(), []
    background = threading.Thread(target=uploads_meanwhile, args=(api, stop, uploaded)) if uploads else None
    if background:
        background.start()
        time.sleep(2)  # an upload is on the model when the camera starts
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, stream(api, frames, truth)))
               for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if background:
        stop.set()
        background.join()
    return [{"scenario": name, "session": i + 1, "uploads_done": len(uploaded) if uploads else None, **r}
            for i, r in enumerate(results)]


def markdown(rows: list[dict], cpu: str, seconds: float) -> str:
    base = rows[0]["inference_median_s"]
    hop_s = HOP / FPS
    lines = [f"# make bench-live ({cpu})", "",
             f"{seconds:g} s of camera at {FPS} fps per session (real clips back to back, JPEG, short side 256); "
             f"a window of {CLIP_LEN} frames every {HOP} ({hop_s:.2f} s). Lag: from sending a window's last frame "
             f"to receiving its ranking. Baseline: the model's median time per window in the first scenario "
             f"({base * 1000:.0f} ms).", "",
             "| scenario | session | windows recognized | dropped | lag median | lag p95 | lag max | median lag / model time "
             "| median lag / hop | right top-1 (windows within one clip) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        note = f" ({r['uploads_done']} uploads done meanwhile)" if r["uploads_done"] is not None else ""
        lines.append(f"| {r['scenario']}{note} | {r['session']} | {r['recognized']}/{r['windows']} | {r['dropped']} | "
                     f"{r['lag_median_s']:.2f} s | {r['lag_p95_s']:.2f} s | {r['lag_max_s']:.2f} s | "
                     f"{r['lag_median_s'] / base:.1f}x | {r['lag_median_s'] / hop_s:.2f} | {r['right_top1']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="camera time per session")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    frames, truth = camera_frames(args.seconds)
    with running_api({"LIVE_MAX_SESSIONS": "2", "LIVE_IDLE_TIMEOUT_S": "60"}) as api:
        rows = scenario("one session", api.url, frames, truth)
        rows += scenario("two sessions at once", api.url, frames, truth, sessions=2)
        rows += scenario("one session while uploads run", api.url, frames, truth, uploads=True)
    report = markdown(rows, cpu_name(), args.seconds)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live.md").write_text(report)
    (args.out / "live.json").write_text(json.dumps({"cpu": cpu_name(), "seconds": args.seconds, "scenarios": rows},
                                                   indent=2) + "\n")
    return 0 if all(r["recognized"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
