"""One queued job, or one part of a game, as a worker runs it: the same recognition and result dict as the
API process gives.

Expected failures (not a video, over a limit, too slow) come back as the result `{"error": {status_code,
detail}}`, exactly the error object of an in-process job; anything else fails the task (read as 500).
The upload is deleted once the job has run, whatever the outcome; a worker killed mid-job leaves it for
the worker that runs the job again.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from models.recognition.parts import run_part as run_video_part
from models.recognition.recognizer import ActionRecognizer, UnknownHeadError, window_entry
from models.recognition.segments import SegmentSettings
from models.recognition.windows import Deadline, ProcessingTimeout, Stopped
from models.video import Timeline, VideoDecodeError
from service.library.media import Media
from service.library.store import Library, analysis
from service.queue import game
from service.recognition import JOB_HINT, ROUTE_HINT, job_time_limit_s, recognize_shared
from service.refusals import Refused
from service.settings import Settings

log = logging.getLogger("workers.task")


def upload_path(settings: Settings, name: str) -> Path:
    """The upload `name` in the shared folder; a name with a path in it is refused."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"not an upload name: {name!r}")
    return settings.job_upload_dir / name


def run_job(recognizer: ActionRecognizer, settings: Settings, *, job_id: str, upload: str, options: dict, worker: str,
            on_progress, on_window=None, cancel: threading.Event | None = None, library: Library) -> dict:
    """Recognize the upload `upload` with `options` (top_k, head, filename, and time_limit_s for a synchronous
    request; a job's grows with its video), or answer it from the library; returns {"result"} (stored) or
    {"error"}."""
    path = upload_path(settings, upload)
    try:
        if not path.is_file():
            return {"worker": worker, "error": {"status_code": 500, "detail": (
                f"the upload is not in SHARED_UPLOAD_DIR on worker {worker}: the API and every worker must mount "
                "the same folder")}}
        try:
            segments = SegmentSettings(**options.get("segments", {}))
            analysed = analysis(settings, head=options.get("head"), sport=options.get("sport"), top_k=options["top_k"],
                                segments=segments)
            result = library.recognized(path, analysed, lambda: recognize_shared(
                recognizer, path, top_k=options["top_k"], filename=options["filename"], head=options.get("head"),
                on_progress=on_progress, on_window=on_window, cancel=cancel, segments=segments,
                sport=options.get("sport"), timeout_s=options.get("time_limit_s") or job_time_limit_s(settings, path),
                hint=ROUTE_HINT if options.get("time_limit_s") else JOB_HINT), reuse=settings.reuse_results,
                filename=options["filename"])
        except Refused as exc:
            return {"worker": worker, "error": exc.error()}
        except UnknownHeadError as exc:
            return {"worker": worker, "error": {"status_code": 422, "detail": (
                f"unknown head {exc.args[0]!r}; loaded: {', '.join(recognizer.heads)}")}}
        Media.from_settings(settings).keep(result, path, library)  # for playback and highlight reels
        return {"worker": worker, "result": result}
    finally:
        path.unlink(missing_ok=True)


def run_part(recognizer: ActionRecognizer, settings: Settings, *, plan: dict, number: int, on_progress,
             on_window, cancel: threading.Event) -> dict | None:
    """Recognize part `number` of a game (`service.queue.game`) and leave its windows beside the upload;
    returns None when done, else the part's error object. The upload stays: the last part to end deletes it."""
    part = game.part_of(plan, number)
    options, path = plan["options"], upload_path(settings, plan["upload"])
    clips = recognizer.clips
    if (clips.clip_len, clips.stride, clips.sampling.fps) != (options["clip_length"], options["clip_stride"],
                                                              options["sampling"]):
        return {"status_code": 500, "detail": "this worker's CLIP_LENGTH, CLIP_STRIDE or MODEL_FPS differ from the "
                                              "gateway's: every worker must run the gateway's settings"}
    index = game.load_index(path)
    if index is None:
        return {"status_code": 500, "detail": "the upload is not in SHARED_UPLOAD_DIR (or not readable) on this "
                                              "worker: the API and every worker must mount the same folder"}
    every_start = [s for entry in plan["parts"] for s in entry["starts"]]
    order = {s: i for i, s in enumerate(every_start)}
    results, timeline = {}, Timeline()

    def on_result(start: int, result) -> None:
        results[start] = result
        on_progress(len(results), len(part.starts))
        on_window(window_entry(order[start], (start, start + clips.clip_len), result.logits, timeline,
                               recognizer.logits_labels))

    seconds = (part.end - part.first) / (clips.sampling.fps or index.fps)
    limit = Deadline(time.monotonic() + settings.job_time_limit_s(seconds), cancel)
    try:
        decode_s = run_video_part(recognizer.batcher, path, index, clips, part, limit=limit, on_result=on_result,
                                  timeline=timeline)
    except (Stopped, VideoDecodeError) as exc:
        recognizer.batcher.give_up(len(part.starts) - len(results))
        if isinstance(exc, VideoDecodeError):
            return {"status_code": 422, "detail": f"not a readable video: {exc}"}
        if isinstance(exc, ProcessingTimeout):
            return {"status_code": 503, "detail": f"{exc}; {JOB_HINT}"}
        return {"status_code": 499, "detail": "cancelled (DELETE /jobs/{id})"}
    game.save_part(path, part, results, timeline, decode_s)
    return None
