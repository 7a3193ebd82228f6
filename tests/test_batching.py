"""The shared inference thread: batches across callers, padding, cancelling, errors, idle unload, and the
decode-ahead pipeline. Short clips (16 frames) of real videos keep the real I3D cheap here.

The batcher's behaviour does not depend on precision, so every test here runs I3D in float32, whatever
this CPU would choose, and compares numbers with float32 tolerances."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import ARCHERY_AVI, CRICKET_MP4, DATA
from models.recognition.batching import ClipBatcher
from models.recognition.recognizer import (
    ActionRecognizer, Cancelled, ClipSettings, ProcessingTimeout, run_clips, run_video,
)
from models.video import clip_starts, probe, read_frames

MAKEUP_AVI = DATA / "makeup__mmaction2_test_ApplyEyeMakeup.avi"


@pytest.fixture(scope="module")
def short_clips():
    return [read_frames(path, max_frames=16) for path in (CRICKET_MP4, ARCHERY_AVI, MAKEUP_AVI)]


def test_clips_of_concurrent_callers_share_padded_batches(float32_extractor, short_clips):
    extractor = float32_extractor
    with ClipBatcher(extractor, batch_size=2, max_wait_s=2.0) as batcher:
        futures = [None] * 3
        callers = [threading.Thread(target=lambda i=i: futures.__setitem__(i, batcher.submit(short_clips[i])))
                   for i in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        results = [future.result(timeout=120) for future in futures]
        assert (batcher.stats.batches, batcher.stats.clips, batcher.stats.padded) == (2, 3, 1)
    for clip, result in zip(short_clips, results):
        alone = extractor(clip[None])
        np.testing.assert_allclose(result.logits, alone.logits[0], atol=1e-3)
        np.testing.assert_allclose(result.features, alone.features[0], atol=1e-4)
        assert result.infer_s > 0


def test_cancelled_clips_are_skipped_and_errors_reach_their_caller(float32_extractor, short_clips):
    with ClipBatcher(float32_extractor, batch_size=1) as batcher:
        running = batcher.submit(short_clips[0])
        skipped = batcher.submit(short_clips[1])
        assert skipped.cancel()
        broken = batcher.submit(np.zeros((16, 100, 100, 3), np.uint8))  # not 224x224
        after = batcher.submit(short_clips[2])
        assert running.result(timeout=120).logits.shape == (400,)
        with pytest.raises(Exception):
            broken.result(timeout=120)
        assert after.result(timeout=120).features.shape == (1024,)  # the worker kept serving
        assert batcher.stats.clips == 2
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(short_clips[0])


@pytest.mark.parametrize("runtime", ["tensorflow", "openvino"])
def test_idle_unload_gives_the_model_back_and_the_next_clip_reloads_it(saved_model_dir, short_clips, runtime):
    from models.runtimes.factory import open_extractor

    extractor = open_extractor(str(saved_model_dir), runtime=runtime, precision="float32")
    with ClipBatcher(extractor, idle_unload_s=0.5) as batcher:
        first = batcher.submit(short_clips[0]).result(timeout=120)
        deadline = time.monotonic() + 30
        while batcher.stats.unloads == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not extractor.loaded and batcher.stats.unloads == 1
        again = batcher.submit(short_clips[0]).result(timeout=120)
        assert extractor.loaded
    np.testing.assert_allclose(again.logits, first.logits, atol=1e-5)


class InFlightSpy:
    """A batcher stand-in that counts clips submitted and not yet done."""

    def __init__(self, batcher: ClipBatcher):
        self.batcher, self.batch_size = batcher, batcher.batch_size
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()

    def submit(self, frames):
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        future = self.batcher.submit(frames)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future) -> None:
        with self._lock:
            self.in_flight -= 1


def test_decoding_runs_ahead_of_inference_by_at_most_two_batches(float32_extractor):
    clips = ClipSettings(clip_len=16, stride=16)
    with ClipBatcher(float32_extractor, batch_size=1) as batcher:
        spy = InFlightSpy(batcher)
        run = run_clips(spy, CRICKET_MP4, clips)  # 79 frames: 5 clips
    assert len(run.spans) == 5 and run.logits.shape == (5, 400)
    assert spy.peak == 2  # the next clip was decoded while one was in I3D, and no more were held


def test_a_stopped_recognition_counts_every_window_it_did_not_finish(float32_extractor):
    """Given up (client gone) after the first window, or out of time before any: the windows not done are counted,
    whether they were never decoded, skipped in the queue or running, and no more clips reach the model."""
    clips = ClipSettings(clip_len=16, stride=16)  # 5 windows of the cricket clip
    with ClipBatcher(float32_extractor, batch_size=1) as batcher:
        cancel = threading.Event()
        with pytest.raises(Cancelled):
            run_clips(batcher, CRICKET_MP4, clips, lambda done, total: cancel.set(), cancel=cancel)
        assert batcher.stats.cancelled == 4
        time.sleep(0.5)
        assert batcher.stats.clips <= 1 + 2  # the one done and at most the two decoded ahead

        for extraction in ("windows", "shared"):
            before, settings = batcher.stats.cancelled, ClipSettings(extraction=extraction)
            with pytest.raises(ProcessingTimeout):
                run_video(batcher, CRICKET_MP4, settings, deadline=time.monotonic())
            expected = len(clip_starts(probe(CRICKET_MP4).frames, settings.clip_len, settings.stride))  # 25 fps: all
            assert batcher.stats.cancelled - before == expected >= 2, extraction


def test_concurrent_recognitions_give_the_results_of_sequential_ones(float32_extractor):
    clips = ClipSettings(clip_len=16, stride=32, batch_size=2)
    recognizer = ActionRecognizer(float32_extractor, clips=clips, batch_wait_s=0.5)
    try:
        videos = [CRICKET_MP4, ARCHERY_AVI]
        sequential = [recognizer.recognize(video) for video in videos]
        together: list[dict | None] = [None, None]
        threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, recognizer.recognize(videos[i])))
                   for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        recognizer.close()
    for alone, shared in zip(sequential, together):
        assert shared is not None
        assert [a["label"] for a in shared["actions"]] == [a["label"] for a in alone["actions"]]
        for a, b in zip(alone["clips"], shared["clips"]):
            assert a["actions"][0]["label"] == b["actions"][0]["label"]
            assert abs(a["actions"][0]["confidence"] - b["actions"][0]["confidence"]) < 1e-3


def test_xla_path_compiles_once_for_padded_batches(saved_model_dir, float32_extractor, short_clips):
    """XLA (on by default on a GPU, forced here) sees one input shape: padding a partial batch causes no retrace.
    Both sides are float32; XLA's kernels differ from TensorFlow's, hence 1e-3 on logits of about 10."""
    from models.runtimes.factory import open_extractor

    compiled = open_extractor(str(saved_model_dir), runtime="tensorflow", precision="float32", xla="on")
    with ClipBatcher(compiled, batch_size=2, max_wait_s=2.0) as batcher:
        futures = [batcher.submit(clip) for clip in short_clips]  # a full batch, then one padded
        results = [future.result(timeout=600) for future in futures]
        assert batcher.stats.padded == 1
    assert compiled.load().experimental_get_tracing_count() == 1
    for clip, result in zip(short_clips, results):
        np.testing.assert_allclose(result.logits, float32_extractor(clip[None]).logits[0], atol=1e-3)
    compiled.close()


def test_urgent_clips_go_before_the_clips_already_waiting(float32_extractor, short_clips):
    """A live window (urgent) waits for the batch on the model, never for the upload clips queued before it."""
    order = []
    with ClipBatcher(float32_extractor, batch_size=1) as batcher:
        futures = [batcher.submit(short_clips[i % 3]) for i in range(4)]
        urgent = batcher.submit(short_clips[0], urgent=True)
        for i, future in enumerate([*futures, urgent]):
            future.add_done_callback(lambda _, i=i: order.append(i))
        np.testing.assert_allclose(urgent.result(timeout=120).logits, futures[0].result(timeout=120).logits, atol=1e-3)
        for future in futures:
            future.result(timeout=120)
    assert order.index(4) <= 1, order  # after at most the clip that was on the model when it came
    assert order[order.index(4) + 1:] == [i for i in range(4) if i not in order[: order.index(4)]]
