"""One game over many queue workers: a job on a video longer than JOB_PART_S is cut into parts (the windows
one pass cuts, dealt out at keyframes: `models.recognition.parts`), each part a task of its own that any
worker runs from the shared upload. Parts leave their windows' logits and features beside the upload; the
worker that finishes the last part puts them together into the one result one process would have given,
stores it as the job's, and deletes the upload and the parts' files, however the parts ended.

Why not Celery's chord: a chord's callback never runs when a part fails or is revoked, and then nothing would
delete the upload. Here each part ends in `finish_part` whatever happens (done, failed, cancelled, revoked),
a Redis set counts them, and a short lock lets one worker merge; a worker killed mid-part leaves its part's
message unacknowledged, so another worker runs that part again (and only that part) after JOBS_REDELIVER_AFTER_S.

The packet index is saved beside the upload (`.index.npz`), so that no part reads every packet again. Redis
keys, under action-recognition:job:<id>: `:plan` (the parts and the job's options), `:done` (parts
ended), `:errors` (part -> its error), `:merge` (the merging worker's lock), `:merged`. They expire with the job.
"""

from __future__ import annotations

import json
import threading
import time
from array import array
from dataclasses import asdict
from pathlib import Path

import numpy as np
import redis

from models.recognition.parts import Part, plan_parts
from models.recognition.parts import run_part as run_video_part
from models.recognition.recognizer import ActionRecognizer, ClipRun, ClipSettings, UnknownHeadError, window_entry
from models.recognition.windows import Deadline, ProcessingTimeout, Stopped
from models.sports import UnknownSportError
from models.video import StreamIndex, Timeline, VideoDecodeError, VideoInfo, index_stream
from service.analysis import Analyses, Asked
from service.jobs import JobState
from service.queue.progress import PREFIX, cancel_requested
from service.recognition import JOB_HINT
from service.refusals import Busy, JobCancelled, Misconfigured, Refused
from service.settings import Settings

MERGE_LOCK_S = 120  # a merging worker that dies frees the merge after this long


def part_task_id(job_id: str, part: int) -> str:
    return f"{job_id}.part{part}"


def _key(job_id: str, name: str) -> str:
    return f"{PREFIX}{job_id}:{name}"


def plan_job(settings: Settings, path: Path) -> tuple[StreamIndex, list[Part]] | None:
    """The parts of a job on the video at `path`, or None to run it whole: a video no longer than JOB_PART_S,
    EXTRACTION=shared (its windows depend on its chunks), TTA (its views are decoded whole), or one that cannot be
    indexed (AVI)."""
    if settings.extraction != "windows" or settings.tta:
        return None
    try:
        index = index_stream(path)
    except VideoDecodeError:  # the worker that runs it whole says what is wrong with it
        return None
    if index is None or index.times[-1] <= settings.job_part_s:
        return None
    clips = ClipSettings(clip_len=settings.clip_length, stride=settings.clip_stride, sampling=settings.sampling)
    parts = plan_parts(index.model_frames(clips.sampling), clips, clips.sampling.fps or index.fps, settings.job_part_s)
    return (index, parts) if len(parts) > 1 else None


def store_plan(client: redis.Redis, job_id: str, *, upload: str, options: dict, index: StreamIndex,
               parts: list[Part], ttl_s: int) -> None:
    rate = 1 / (index.fps if options["sampling"] is None else options["sampling"])
    plan = {"upload": upload, "options": options, "parts": [
        {**asdict(part), "start_s": round(part.first * rate, 3), "end_s": round(part.end * rate, 3)} for part in parts]}
    client.set(_key(job_id, "plan"), json.dumps(plan), ex=ttl_s)


def read_plan(client: redis.Redis, job_id: str) -> dict | None:
    plan = client.get(_key(job_id, "plan"))
    return json.loads(plan) if plan else None


def index_file(upload_path: Path) -> Path:
    return upload_path.with_name(f"{upload_path.name}.index.npz")


def save_index(upload_path: Path, index: StreamIndex) -> None:
    """The packet index beside the upload, so that no part reads the whole file's packets again."""
    target = index_file(upload_path)
    partial = target.with_suffix(".partial.npz")
    with open(partial, "wb") as file:
        np.savez(file, times=np.array(index.times), keyframes=np.array(index.keyframes),
                 geometry=np.array([index.start, index.fps, index.width, index.height]))
    partial.replace(target)


def load_index(upload_path: Path) -> StreamIndex | None:
    """The index the gateway left beside the upload (None when the upload or its index is missing)."""
    if not upload_path.is_file() or not index_file(upload_path).is_file():
        return None
    with np.load(index_file(upload_path)) as saved:
        start, fps, width, height = saved["geometry"].tolist()
        return StreamIndex(times=array("d", saved["times"].tolist()), keyframes=array("d", saved["keyframes"].tolist()),
                           start=start, fps=fps, width=int(width), height=int(height))


def part_of(plan: dict, number: int) -> Part:
    entry = plan["parts"][number]
    return Part(entry["index"], tuple(entry["starts"]), entry["first"], entry["end"])


def parts_file(upload_path: Path, number: int) -> Path:
    return upload_path.with_name(f"{upload_path.name}.part{number}.npz")


def save_part(upload_path: Path, part: Part, results: dict, timeline: Timeline, decode_s: float) -> None:
    """A part's windows (`results`: start -> ClipResult) and the frames it saw, beside the upload."""
    starts = sorted(results)
    target = parts_file(upload_path, part.index)
    partial = target.with_suffix(".partial.npz")
    with open(partial, "wb") as file:
        np.savez(file, starts=np.array(starts), logits=np.stack([results[s].logits for s in starts]),
                 features=np.stack([results[s].features for s in starts]), first=np.array(timeline.first),
                 source_index=np.array(timeline.source_index), time_s=np.array(timeline.time_s),
                 decode_s=np.array(decode_s), infer_s=np.array(sum(results[s].infer_s for s in starts)))
    partial.replace(target)


def finish_part(client: redis.Redis, job_id: str, number: int, parts: int, ttl_s: int, error: dict | None = None
                ) -> bool:
    """Count part `number` as ended (with `error`, if it failed); True when every part has ended and this caller
    holds the merge (a redelivered part whose merger died waits for its lock to lapse)."""
    with client.pipeline() as pipe:
        if error is not None:
            pipe.hset(_key(job_id, "errors"), str(number), json.dumps(error)).expire(_key(job_id, "errors"), ttl_s)
        pipe.sadd(_key(job_id, "done"), number).expire(_key(job_id, "done"), ttl_s).scard(_key(job_id, "done"))
        ended = pipe.execute()[-1]
    if ended < parts:
        return False
    deadline = time.monotonic() + MERGE_LOCK_S + 10
    while not client.set(_key(job_id, "merge"), "1", nx=True, ex=MERGE_LOCK_S):
        if client.exists(_key(job_id, "merged")) or time.monotonic() > deadline:
            return False
        time.sleep(1)
    return not client.exists(_key(job_id, "merged"))


def merge(recognizer: ActionRecognizer, client: redis.Redis, job_id: str, plan: dict, upload_path: Path,
          *, ttl_s: int, analyses: Analyses | None = None) -> dict:
    """The job's result from its parts' windows: what one process would have given, stored by `analyses` (in
    the library, the video in the media folder). Refused as its first failed part was, or cancelled. The
    parts' files are deleted, and the upload too unless the media folder kept it."""
    started = time.perf_counter()
    try:
        errors = {int(k): json.loads(v) for k, v in client.hgetall(_key(job_id, "errors")).items()}
        if cancel_requested(client, job_id):
            raise JobCancelled()
        if errors:
            raise Refused.from_error(errors[min(errors)])
        loaded = [np.load(parts_file(upload_path, number)) for number in range(len(plan["parts"]))]
        options, index = plan["options"], load_index(upload_path)
        model_frames = max(int(part["end"]) for part in plan["parts"])
        timeline = Timeline(1 / (options["sampling"] or index.fps))
        timeline.source_index.extend([0] * model_frames)
        timeline.time_s.extend([0.0] * model_frames)
        for part in loaded:
            first, count = int(part["first"]), len(part["source_index"])
            timeline.source_index[first : first + count] = _as_array(timeline.source_index, part["source_index"])
            timeline.time_s[first : first + count] = _as_array(timeline.time_s, part["time_s"])
        starts = [int(s) for part in loaded for s in part["starts"]]
        info = VideoInfo(index.frames, index.fps, index.width, index.height, model_frames=model_frames,
                         timeline=timeline)
        run = ClipRun(info, [(s, min(s + recognizer.clips.clip_len, model_frames)) for s in starts],
                      np.concatenate([part["logits"] for part in loaded]),
                      np.concatenate([part["features"] for part in loaded]),
                      sum(float(part["decode_s"]) for part in loaded), sum(float(part["infer_s"]) for part in loaded))
        asked = Asked.from_options(options)
        try:
            result = recognizer.result(run, head=asked.head, top_k_actions=asked.top_k, filename=asked.filename,
                                       total_s=time.perf_counter() - started, segments=asked.segments,
                                       sport=asked.sport)
        except UnknownSportError as exc:
            raise Refused(str(exc), status_code=422) from None
        except UnknownHeadError as exc:
            raise Refused(f"unknown head {exc.args[0]!r}; loaded: {', '.join(recognizer.heads)}", status_code=422) from None
        # the library away: the game is not done until it is stored
        return result if analyses is None else analyses.store_new(upload_path, asked, result)
    finally:
        for number in range(len(plan["parts"])):
            parts_file(upload_path, number).unlink(missing_ok=True)
        index_file(upload_path).unlink(missing_ok=True)
        upload_path.unlink(missing_ok=True)
        client.set(_key(job_id, "merged"), "1", ex=ttl_s)


def run_part(recognizer: ActionRecognizer, settings: Settings, upload_path: Path, *, plan: dict, number: int,
             on_progress, on_window, cancel: threading.Event) -> None:
    """Recognize part `number` of a game and leave its windows beside the upload (the last part to end deletes
    it). Refused: 422 not a readable video, 503 past its time limit, 499 cancelled, 500 a worker set up unlike
    the gateway or without the shared folder."""
    part = part_of(plan, number)
    options, clips = plan["options"], recognizer.clips
    if (clips.clip_len, clips.stride, clips.sampling.fps) != (options["clip_length"], options["clip_stride"],
                                                              options["sampling"]):
        raise Misconfigured("this worker's CLIP_LENGTH, CLIP_STRIDE or MODEL_FPS differ from the gateway's: every "
                            "worker must run the gateway's settings")
    index = load_index(upload_path)
    if index is None:
        raise Misconfigured("the upload is not in SHARED_UPLOAD_DIR (or not readable) on this worker: the API and "
                            "every worker must mount the same folder")
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
        decode_s = run_video_part(recognizer.batcher, upload_path, index, clips, part, limit=limit,
                                  on_result=on_result, timeline=timeline)
    except (Stopped, VideoDecodeError) as exc:
        recognizer.batcher.give_up(len(part.starts) - len(results))
        if isinstance(exc, VideoDecodeError):
            raise Refused(f"not a readable video: {exc}", status_code=422) from None
        if isinstance(exc, ProcessingTimeout):
            raise Busy(f"{exc}; {JOB_HINT}") from None
        raise JobCancelled() from None
    save_part(upload_path, part, results, timeline, decode_s)


def _as_array(like: array, values: np.ndarray) -> array:
    return array(like.typecode, values.tolist())


def job_state(job_id: str, plan: dict, part_metas: list[dict], answer: dict | None, cancelled: bool) -> JobState:
    """What `GET /jobs/{id}` tells of a job in parts: the parts' progress added up, and each part."""
    parts, done, started = [], 0, []
    for entry, meta in zip(plan["parts"], part_metas):
        info = meta.get("result") if isinstance(meta.get("result"), dict) else {}
        ended = "done" if "error" not in info else "cancelled" if info["error"]["status_code"] == 499 else "failed"
        state = {"QUEUED": "queued", "PENDING": "queued", "STARTED": "running", "PROGRESS": "running",
                 "SUCCESS": ended, "REVOKED": "cancelled"}.get(meta["status"], "failed")
        done += len(entry["starts"]) if state == "done" else info.get("clips_done", 0)
        if info.get("started"):
            started.append(info["started"])
        parts.append({"start_s": entry["start_s"], "end_s": entry["end_s"], "worker": info.get("worker"),
                      "state": state})
    total = sum(len(entry["starts"]) for entry in plan["parts"])
    common = {"id": job_id, "clips_total": total, "parts": parts, "started": min(started) if started else None}
    if answer is not None and "result" in answer:
        return JobState(status="done", clips_done=total, result=answer["result"], **common)
    if cancelled:
        return JobState(status="cancelled", clips_done=done, error=JobCancelled().error(), **common)
    if answer is not None:
        return JobState(status="failed", clips_done=done, error=answer["error"], **common)
    running = any(part["state"] != "queued" for part in parts)
    return JobState(status="running" if running else "queued", clips_done=done, **common)
