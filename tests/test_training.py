"""Train an LSTM head on real clips cut into 64-frame segments, then recognise whole videos with it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import DATA
from models.recognition.heads import HeadMismatchError, LstmHead, build_lstm_head, save_head
from models.recognition.recognizer import ActionRecognizer, ClipSettings
from models.training.datasets import DatasetError, Sample, load_samples, write_csv
from models.training.features import augmentation_views, cache_key, extract_all
from models.training.trainer import TrainConfig, evaluate, train
from models.video import View, probe, read_frames

pytestmark = [pytest.mark.slow]

# class -> (training source, whole videos to recognise afterwards)
CLASSES = {
    "archery": ("archery__paddlevideo_example.avi", ["archery__paddlevideo_example.avi"]),
    "eye makeup": ("makeup__mmaction2_test_ApplyEyeMakeup.avi", ["makeup__mmaction2_test_ApplyEyeMakeup.avi"]),
    # the second yoga video is never seen in training
    "yoga": ("yoga__askanything_yoga.mp4", ["yoga__askanything_yoga.mp4", "yoga__uniformer_Tw2yXa6CzWE.mp4"]),
}


def cut_segments(source, out_dir, *, length: int = 64) -> list:
    """Write the source's consecutive `length`-frame segments as MJPG AVIs; a shorter tail is dropped."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    frames, paths = [], []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
        if len(frames) == length:
            path = out_dir / f"{source.stem}_seg{len(paths):02d}.avi"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
            for f in frames:
                writer.write(f)
            writer.release()
            paths.append(path)
            frames = []
    capture.release()
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory, extractor):
    root = tmp_path_factory.mktemp("training")
    samples = []
    for label, (source, _) in CLASSES.items():
        folder = root / "data" / label
        folder.mkdir(parents=True)
        samples += [Sample(p, label, f"{label}/{p.stem}") for p in cut_segments(DATA / source, folder)]
    write_csv(samples, root / "train.csv")
    (root / "broken").mkdir()
    broken = root / "broken" / "not_a_video.mp4"
    broken.write_bytes(b"garbage")
    head_dir = root / "head"
    results = train(
        load_samples(root / "train.csv") + [Sample(broken, "yoga", "yoga/broken")],
        head_dir, extractor, val_samples=samples, cache_dir=root / "cache",
        config=TrainConfig(epochs=80, patience=20, seed=1), progress=False,
    )
    return {"root": root, "head": head_dir, "results": results, "samples": samples, "broken": broken}


def test_training_writes_the_head_and_its_record(trained):
    head = trained["head"]
    for name in ("head.weights.h5", "labels.json", "config.json", "history.json", "results.json",
                 "training_curves.png", "confusion_matrix.png"):
        assert (head / name).is_file(), name
    assert (head / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((head / "config.json").read_text())
    assert config["extractor_id"] == "i3d-kinetics400-rgb" and config["feature_dim"] == 1024
    assert (config["clip_len"], config["stride"]) == (64, 32)
    assert config["training"]["train_videos"] == len(trained["samples"])
    assert str(trained["broken"]) in config["training"]["skipped_videos"]  # unreadable: skipped and listed
    assert json.loads((head / "labels.json").read_text()) == sorted(CLASSES)
    results = trained["results"]
    assert results["top1"] == 1.0 and config["metrics"]["top1"] == 1.0
    assert set(results["per_class"]) == set(CLASSES)
    assert len(json.loads((head / "history.json").read_text())["loss"]) == config["training"]["epochs_run"]
    assert config["training"]["augment"] and config["training"]["view_ids"] == ["plain", "flip", "start", "end,flip"]


def test_views_see_other_frames_and_have_their_own_cache_keys(tmp_path):
    """A mirrored view is the plain frames mirrored, to the pixel; crops at either end differ from the centre's;
    1.25x plays the video in 1/1.25 the frames, 0.8x in 1/0.8; a shift starts that many frames in. Through
    the enlarging path (a 240-line video) and the shrinking one (its 720-line copy)."""
    import subprocess

    import imageio_ffmpeg

    small = DATA / "basketball__mmaction2_shooting_drill.mp4"  # 426x240 at 29.97 fps: 251 model frames
    large = tmp_path / "large.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(small), "-vf", "scale=1280:720",
                    "-c:v", "libx264", "-preset", "ultrafast", str(large)], check=True)
    for video in (small, large):
        plain = read_frames(video)
        assert np.array_equal(read_frames(video, view=View(flip=True)), plain[:, :, ::-1])
        for crop in ("start", "end"):
            other = read_frames(video, max_frames=8, view=View(crop=crop))
            assert np.abs(other.astype(int) - plain[:8]).mean() > 10, crop
        assert len(read_frames(video, view=View(speed=1.25))) == pytest.approx(len(plain) / 1.25, abs=2)
        assert len(read_frames(video, view=View(speed=0.8))) == pytest.approx(len(plain) / 0.8, abs=2)
        assert np.array_equal(read_frames(video, max_frames=4, view=View(offset=16)), plain[16:20])
    keys = {cache_key(small, extractor_id="x", clips=ClipSettings(view=view)) for view in augmentation_views(36)}
    assert len(keys) == 36  # every view its own features
    assert cache_key(small, extractor_id="x", clips=ClipSettings()) == \
        cache_key(small, extractor_id="x", clips=ClipSettings(view=View()))  # plain keys as they always were
    with pytest.raises(ValueError, match="speed is 0.8 to 1.25"):
        View(speed=2)


def test_test_time_views_average_the_six_views_window_by_window(trained, extractor, recognizer):
    """TTA: each window's logits and features are the mean over the three crops, mirrored and not; the windows
    are the plain run's; the action stays; a head evaluated with them too."""
    import dataclasses

    from models.recognition.recognizer import run_video
    from models.video import TEST_TIME_VIEWS

    video = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"
    batcher, clips = recognizer.batcher, recognizer.clips
    told = []
    tta = run_video(batcher, video, dataclasses.replace(clips, tta=True), on_window=lambda *w: told.append(w[2]))
    each = [run_video(batcher, video, dataclasses.replace(clips, view=view)) for view in TEST_TIME_VIEWS]
    assert tta.spans == each[0].spans and len(told) == len(tta.spans)
    assert np.allclose(tta.logits, np.mean([run.logits for run in each], axis=0), atol=1e-4)
    assert np.allclose(tta.features, np.mean([run.features for run in each], axis=0), atol=1e-4)
    assert np.allclose(np.stack(told), tta.logits)
    assert not np.allclose(tta.logits, each[0].logits, atol=1e-3)  # not just the plain view
    ranked = recognizer.result(tta, head=None, top_k_actions=3, filename="c.mp4", total_s=0)
    assert ranked["actions"][0]["label"] == "playing cricket"
    results = evaluate(load_samples(trained["root"] / "train.csv"), trained["head"], extractor,
                       cache_dir=trained["root"] / "cache", progress=False, tta=True)
    assert results["tta"] and results["top1"] == 1.0


def test_every_view_is_extracted_once_and_cached(trained, extractor):
    """The training run cached four views of each video: asked again, none is computed; their features differ
    from the plain view's, and the model still sees the same action in them."""
    paths = [s.path for s in trained["samples"]][:2]
    again = extract_all(paths, extractor, clips=ClipSettings(), cache_dir=trained["root"] / "cache", progress=False,
                        views=augmentation_views(4))
    assert again.computed == 0 and again.reused == 8
    plain, *others = again.views[paths[0]]
    assert np.array_equal(again.features[paths[0]], plain)
    for other in others:
        cosine = float((plain * other).sum() / (np.linalg.norm(plain) * np.linalg.norm(other)))
        assert 0.5 < cosine < 0.9999, cosine  # other frames, the same video


def test_trained_head_recognises_whole_videos(trained, extractor):
    head = LstmHead(trained["head"], extractor_id=extractor.extractor_id, feature_dim=1024, clip_len=64, stride=32)
    recognizer = ActionRecognizer(extractor, head=head)
    for label, (_, videos) in CLASSES.items():
        for video in videos:
            result = recognizer.recognize(DATA / video, top_k_actions=3)
            assert result["head"] == "head" and result["actions"][0]["label"] == label, (video, result["actions"])
            assert result["clips"][0]["actions"][0]["label"] in extractor_kinetics_labels()  # timeline stays Kinetics
            # its moments are the head's own labels, the video's among them
            assert {s["label"] for s in result["segments"]} <= set(head.labels), result["segments"]
            assert label in {s["label"] for s in result["segments"]}, (video, result["segments"])


def extractor_kinetics_labels():
    from models.labels import kinetics_labels

    return kinetics_labels()


def test_feature_cache_is_reused(trained, extractor):
    paths = [s.path for s in trained["samples"]] + [trained["broken"]]
    again = extract_all(paths, extractor, clips=ClipSettings(), cache_dir=trained["root"] / "cache", progress=False)
    assert again.computed == 0 and again.reused == len(trained["samples"])
    assert list(again.failed) == [trained["broken"]]
    other = extract_all(paths[:1], extractor, clips=ClipSettings(stride=16), cache_dir=trained["root"] / "cache",
                        progress=False)
    assert other.computed == 1  # other clip settings, other cache entry


def test_evaluate_uses_the_cache_and_reports(trained, extractor):
    results = evaluate(load_samples(trained["root"] / "train.csv"), trained["head"], extractor,
                       cache_dir=trained["root"] / "cache", progress=False)
    assert results["top1"] == 1.0 and results["top5"] == 1.0
    assert (trained["head"] / "confusion_matrix_eval.png").is_file()


def test_head_round_trip_and_mismatch(tmp_path):
    model = build_lstm_head(num_classes=3, feature_dim=16, units=8, dropout=0.0)
    config = {"name": "tiny", "extractor_id": "x", "feature_dim": 16, "clip_len": 64, "stride": 32, "units": 8,
              "dropout": 0.0}
    save_head(tmp_path / "tiny", model, ["a", "b", "c"], config)
    head = LstmHead(tmp_path / "tiny", extractor_id="x", feature_dim=16, clip_len=64, stride=32)
    features = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    expected = np.asarray(model(features[None], training=False))[0]
    np.testing.assert_allclose(head.video_probabilities(None, features), expected, atol=1e-6)
    windows = head.window_probabilities(None, features)  # each window with two neighbours each side
    assert windows.shape == (5, 3) and np.allclose(windows.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(windows[2], expected, atol=1e-6)  # the middle one sees all five
    first = np.asarray(model(features[None, :3], training=False))[0]
    np.testing.assert_allclose(windows[0], first, atol=1e-6)  # the first sees itself and two after
    assert head.labels == ("a", "b", "c") and head.name == "tiny"
    with pytest.raises(HeadMismatchError, match="extractor_id"):
        LstmHead(tmp_path / "tiny", extractor_id="i3d-kinetics400-rgb", feature_dim=16)
    with pytest.raises(HeadMismatchError, match="feature_dim"):
        LstmHead(tmp_path / "tiny", extractor_id="x", feature_dim=1024)
    with pytest.raises(HeadMismatchError, match="clip_len"):
        LstmHead(tmp_path / "tiny", extractor_id="x", feature_dim=16, clip_len=32)
    with pytest.raises(FileNotFoundError, match="labels.json"):
        (tmp_path / "tiny" / "labels.json").unlink()
        LstmHead(tmp_path / "tiny", extractor_id="x", feature_dim=16)


def test_padding_is_masked():
    model = build_lstm_head(num_classes=2, feature_dim=4, units=4, dropout=0.0)
    sequence = np.random.default_rng(1).uniform(0.1, 1, size=(1, 3, 4)).astype(np.float32)
    padded = np.concatenate([sequence, np.zeros((1, 5, 4), np.float32)], axis=1)
    np.testing.assert_allclose(model(sequence, training=False), model(padded, training=False), atol=1e-6)


def test_training_needs_two_classes(tmp_path, extractor):
    with pytest.raises(DatasetError, match="at least 2 classes"):
        train([Sample(DATA / "archery__paddlevideo_example.avi", "archery", "a")], tmp_path / "h", extractor,
              val_samples=[], cache_dir=tmp_path / "cache", progress=False)


def test_api_serves_the_trained_head(trained, saved_model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from service.settings import Settings

    settings = Settings(model_handle=str(saved_model_dir), head_path=trained["head"], upload_dir=tmp_path, warm_up=False)
    (tmp_path / "left-by-a-crash.upload").write_bytes(b"x")  # swept at start-up
    with TestClient(create_app(settings)) as client:
        model = client.get("/model").json()
        assert model["head"] == "head" and model["heads"] == ["kinetics400", "head"] and model["labels"] == 3
        assert client.get("/labels").json()["labels"] == sorted(CLASSES)
        video = DATA / "yoga__uniformer_Tw2yXa6CzWE.mp4"
        body = client.post("/recognize_action", files={"video": (video.name, video.read_bytes(), "video/mp4")}).json()
        assert body["head"] == "head" and body["actions"][0]["label"] == "yoga"
        cricket = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"
        kinetics = client.post("/recognize_action?head=kinetics400", content=cricket.read_bytes(),
                               headers={"Content-Type": "video/mp4"}).json()
        assert kinetics["head"] == "kinetics400" and kinetics["actions"][0]["label"] == "playing cricket"
        unknown = client.post("/recognize_action?head=nope", content=b"x", headers={"Content-Type": "video/mp4"})
        assert unknown.status_code == 422 and "unknown head 'nope'" in unknown.json()["detail"]
        own = client.post("/recognize_action?sport=fitness", content=b"x", headers={"Content-Type": "video/mp4"})
        assert own.status_code == 422 and "the head 'head' has its own" in own.json()["detail"]
        yoga = client.post("/recognize_action?head=kinetics400&sport=fitness", content=video.read_bytes(),
                           headers={"Content-Type": "video/mp4"}).json()
        assert yoga["sport"] == "fitness" and yoga["actions"][0]["label"] == "yoga"
    assert list(tmp_path.iterdir()) == []


def test_api_refuses_a_mismatched_head(trained, saved_model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from service.settings import Settings

    settings = Settings(model_handle=str(saved_model_dir), head_path=trained["head"], clip_stride=16, warm_up=False)
    with pytest.raises(HeadMismatchError, match="stride=32 but the service uses stride=16"):
        with TestClient(create_app(settings)):
            pass


def test_command_line_train_evaluate_subset(trained, tmp_path):
    import subprocess
    import sys

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "models", *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    cache = str(trained["root"] / "cache")
    out = tmp_path / "sports"
    printed = cli("train", "--data", str(trained["root"] / "train.csv"), "--out", str(out), "--cache", cache,
                  "--epochs", "40", "--patience", "40", "--seed", "2")
    assert "top-1" in printed and f"HEAD_PATH={out}" in printed
    assert json.loads((out / "config.json").read_text())["name"] == "sports"
    results = json.loads(cli("evaluate", "--data", str(trained["root"] / "train.csv"), "--head", str(out),
                             "--cache", cache, "--json"))
    assert results["videos"] == len(trained["samples"]) and results["top1"] >= 0.8
    printed = cli("subset", "--data", str(trained["root"] / "data"), "--out", str(tmp_path / "splits"),
                  "--classes", "2", "--per-class", "2", "--fractions", "0.5", "0.5", "0")
    assert "train.csv: 2 videos, 2 classes" in printed
    assert len(load_samples(tmp_path / "splits" / "val.csv")) == 2


def test_a_head_trained_on_windows_is_refused_under_shared_extraction(trained, saved_model_dir):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from service.settings import Settings

    settings = Settings(model_handle=str(saved_model_dir), head_path=trained["head"], extraction="shared",
                        warm_up=False)
    with pytest.raises(HeadMismatchError, match="extraction='windows' but the service uses extraction='shared'"):
        with TestClient(create_app(settings)):
            pass


def test_the_few_videos_benchmark_holds_out_what_it_never_trains_on(tmp_path):
    """`make bench-train`'s dataset: at least 8 classes; no held-out segment shares a frame with a training one
    of its video, and the second yoga video is only held out."""
    from benchmarks.training import HELD_OUT_WHOLE, SEGMENT_S, build_dataset

    train_samples, held_out = build_dataset(DATA, tmp_path)
    assert len({s.label for s in train_samples}) >= 8 and {s.label for s in held_out} <= {s.label for s in train_samples}

    def stretch(sample):  # (source video, start, end) from "<source>_<start>.mp4"
        source, _, start = sample.path.stem.rpartition("_")
        return source, float(start), float(start) + SEGMENT_S

    trained = [stretch(s) for s in train_samples]
    for sample in held_out:
        source, start, end = stretch(sample)
        assert all(s != source or e <= start or b >= end for s, b, e in trained), sample.path.name
    assert any(stretch(s)[0] == HELD_OUT_WHOLE.removesuffix(".mp4") for s in held_out)
    assert not any(s == HELD_OUT_WHOLE.removesuffix(".mp4") for s, _, _ in trained)
    assert all(abs(probe(s.path).duration_s - SEGMENT_S) < 0.1 for s in held_out[:3])
