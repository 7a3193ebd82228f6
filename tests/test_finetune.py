"""Fine-tuning the top of I3D (`python -m models finetune`) on real clips: the new extractor converts and verifies,
gets its int8 verdict, loads, ranks its own labels, serves through the API with a head trained on it, and heads are
refused by the extractor they were not trained on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, Service, _free_port
from models.hardware import cpu_kind
from models.i3d.accuracy import compare
from models.i3d.convert import EXTRACTOR_ID
from models.labels import logits_vocabulary
from models.recognition.heads import HeadMismatchError, LstmHead
from models.recognition.recognizer import ActionRecognizer
from models.sports import UnknownSportError
from models.training.datasets import Sample, load_samples, write_csv
from models.training.trainer import TrainConfig, train
from test_training import cut_segments

pytestmark = [pytest.mark.slow]

CLASSES = {"basketball": "basketball__mmaction2_shooting_drill.mp4", "weightlifting": "weightlifting__stgcn_clean_and_jerk.mp4",
           "yoga": "yoga__askanything_yoga.mp4"}
NAME = "i3d-sports"


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "models", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """Two 64-frame segments of each clip to train on, the next one to validate on; fine-tuned by the command line."""
    root = tmp_path_factory.mktemp("finetune")
    train_samples, val_samples = [], []
    for label, source in CLASSES.items():
        folder = root / "data" / label
        folder.mkdir(parents=True)
        segments = cut_segments(DATA / source, folder)[:3]
        train_samples += [Sample(p, label, p.stem) for p in segments[:2]]
        val_samples += [Sample(p, label, p.stem) for p in segments[2:]]
    write_csv(train_samples, root / "train.csv")
    write_csv(val_samples, root / "val.csv")
    out, cache = root / NAME, root / "cache"
    printed = cli("finetune", "--data", str(root / "train.csv"), "--val", str(root / "val.csv"), "--out", str(out),
                  "--cache", str(cache), "--epochs", "2", "--views", "2", "--calibration-windows", "16")
    return {"root": root, "out": out, "cache": cache, "printed": printed, "train": train_samples, "val": val_samples}


def test_finetune_writes_a_verified_extractor_with_its_record(finetuned):
    out = finetuned["out"]
    record = json.loads((out / "finetune.json").read_text())
    assert record["extractor_id"].startswith(f"{EXTRACTOR_ID}+finetuned:{NAME}:")
    assert record["labels"] == sorted(CLASSES) and record["training"]["view_ids"] == ["plain", "flip"]
    assert record["training"]["train_videos"] == 6 and record["training"]["val_videos"] == 3
    assert record["training"]["epochs_run"] == 2 and record["training"]["probe_epochs_run"] >= 1
    assert f"MODEL_HANDLE={out}" in finetuned["printed"] and record["extractor_id"] in finetuned["printed"]
    # the SavedModel and its variants, converted and verified like the base one
    conversion = json.loads((out / "conversion.json").read_text())
    assert conversion["extractor_id"] == record["extractor_id"] and conversion["blocks"] == "top"
    assert conversion["verify_max_abs_diff"] < 1e-3 and conversion["trunk_max_abs_diff"] < 1e-3
    assert all(ir["verify_max_abs_diff"] < 1e-3 for ir in conversion["openvino"].values())
    for variant in ("bfloat16", "float16", "space_to_depth"):
        assert (out / "variants" / variant / "saved_model.pb").is_file()
    assert logits_vocabulary(out) == (NAME, tuple(sorted(CLASSES)))
    # int8: calibrated on the training videos, judged on the validation ones for this kind of CPU
    verdict = json.loads((out / "openvino" / "openvino.json").read_text())["validated"][cpu_kind()]["int8"]
    assert verdict["videos"] == 3 and verdict["ir"] == record["int8"]["ir"]
    assert (out / "openvino" / f"{verdict['ir']}.xml").is_file()
    for name in ("history.json", "results.json", "training_curves.png", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and np.isfinite(history["val_loss"]).all() and history["probe"]["loss"]
    # set-up on another kind of CPU (`make run` runs `quantize --if-needed`) judges it on its own videos again
    irs = out / "openvino" / "openvino.json"
    irs.write_text(json.dumps({**json.loads(irs.read_text()), "validated": {}}))
    printed = cli("quantize", "--model", str(out), "--if-needed")
    assert "judging on its 3 validation videos" in printed and ("passes" in printed or "fails" in printed)
    assert json.loads(irs.read_text())["validated"][cpu_kind()]["int8"]["videos"] == 3
    # the activations were cached once per video and view: 6 training videos x 2 views, 3 validation videos
    assert len(list(finetuned["cache"].glob("*.top_input.npy"))) == 6 * 2 + 3


def test_the_finetuned_extractor_ranks_its_own_labels(finetuned, float32_extractor):
    from models.runtimes.factory import open_extractor

    out = finetuned["out"]
    record = json.loads((out / "finetune.json").read_text())
    served = open_extractor(str(out))  # as the service opens it: int8 only where it passed on this kind of CPU
    reference = open_extractor(str(out), runtime="tensorflow", precision="float32")
    recognizer = ActionRecognizer(served)
    try:
        assert served.extractor_id == reference.extractor_id == record["extractor_id"]
        assert (served.precision == "int8") == record["int8"]["passes"]
        segment = finetuned["val"][0].path  # basketball, never trained on
        result = recognizer.recognize(segment)
        assert result["head"] == NAME and {a["label"] for a in result["actions"]} == set(CLASSES)
        assert {a["label"] for clip in result["clips"] for a in clip["actions"]} <= set(CLASSES)
        assert result["actions"][0]["label"] == "basketball"
        clip = np.stack([c for c in _frames(segment)])[None]
        assert served(clip).logits.shape == (1, 3) and served(clip).features.shape == (1, 1024)
        assert served(clip).logits.argmax() == reference(clip).logits.argmax()
        # below the top the network is the base one, to the bit; the trained blocks give other features
        np.testing.assert_array_equal(reference.top_input(clip), float32_extractor.top_input(clip))
        assert np.abs(reference(clip).features - float32_extractor(clip).features).max() > 1e-4
        with pytest.raises(UnknownSportError, match="serve the base I3D for sports"):
            recognizer.ranking_head(None, "basketball")
    finally:
        recognizer.close()
        served.close()
        reference.close()
    results = json.loads(cli("evaluate", "--model", str(out), "--data", str(finetuned["root"] / "val.csv"),
                             "--cache", str(finetuned["cache"]), "--json"))
    assert results["labels"] == sorted(CLASSES) and results["videos"] == 3 and results["top1"] >= 2 / 3


def _frames(path):
    from models.video import iter_clips

    return next(iter_clips(path)).frames


@pytest.fixture(scope="module")
def heads(finetuned, extractor):
    """An LSTM head trained on the fine-tuned extractor's features, and one on the base's."""
    from models.runtimes.factory import open_extractor

    samples = load_samples(finetuned["root"] / "train.csv")
    tuned = open_extractor(str(finetuned["out"]))
    try:
        config = TrainConfig(epochs=5, patience=5, augment=False)
        train(samples, finetuned["root"] / "tuned-head", tuned, val_samples=finetuned["val"], config=config,
              cache_dir=finetuned["cache"], progress=False)
        train(samples, finetuned["root"] / "base-head", extractor, val_samples=finetuned["val"], config=config,
              cache_dir=finetuned["cache"], progress=False)
        return {"tuned": finetuned["root"] / "tuned-head", "base": finetuned["root"] / "base-head",
                "tuned_id": tuned.extractor_id}
    finally:
        tuned.close()


def test_heads_are_refused_by_an_extractor_they_were_not_trained_on(heads):
    assert json.loads((heads["tuned"] / "config.json").read_text())["extractor_id"] == heads["tuned_id"]
    LstmHead(heads["tuned"], extractor_id=heads["tuned_id"], feature_dim=1024)
    with pytest.raises(HeadMismatchError, match="extractor_id"):
        LstmHead(heads["tuned"], extractor_id=EXTRACTOR_ID, feature_dim=1024)
    with pytest.raises(HeadMismatchError, match="extractor_id"):
        LstmHead(heads["base"], extractor_id=heads["tuned_id"], feature_dim=1024)


def test_the_api_serves_the_finetuned_extractor_with_a_head_trained_on_it(finetuned, heads, tmp_path):
    import os

    import httpx

    env = {**os.environ, "MODEL_HANDLE": str(finetuned["out"]), "HEAD_PATH": str(heads["tuned"]),
           "UPLOAD_DIR": str(tmp_path / "uploads"), "PYTHONUNBUFFERED": "1", "WARM_UP": "false"}
    api = Service.api(_free_port(), env, tmp_path / "api.log")
    try:
        api.start()
        model = httpx.get(f"{api.url}/model", timeout=10).json()
        assert model["extractor"] == heads["tuned_id"] and model["heads"] == [NAME, "tuned-head"]
        segment = finetuned["val"][2].path  # yoga
        with open(segment, "rb") as video:
            body = httpx.post(f"{api.url}/recognize_action", files={"video": (segment.name, video, "video/x-msvideo")},
                              timeout=300).json()
        assert body["head"] == "tuned-head" and body["actions"][0]["label"] in CLASSES
        own = httpx.post(f"{api.url}/recognize_action?head={NAME}", content=segment.read_bytes(),
                         headers={"Content-Type": "video/x-msvideo"}, timeout=300).json()
        assert own["head"] == NAME and own["actions"][0]["label"] == "yoga"
        sport = httpx.post(f"{api.url}/recognize_action?head={NAME}&sport=basketball", content=b"x",
                           headers={"Content-Type": "video/mp4"}, timeout=30)
        assert sport.status_code == 422 and "serve the base I3D for sports" in sport.json()["detail"]
    finally:
        api.stop()
    refused = Service.api(_free_port(), {**env, "HEAD_PATH": str(heads["base"])}, tmp_path / "refused.log")
    refused.start(wait=False)
    assert refused.wait_exit(180) != 0
    assert "extractor_id" in refused.log.read_text()


def test_every_block_fine_tunes_on_the_frames(finetuned, float32_extractor, tmp_path):
    """`--blocks all` (a GPU's job) on two cores: one epoch of the whole network on the frames, without int8."""
    from models.runtimes.factory import open_extractor

    out, cache = tmp_path / "i3d-every-block", tmp_path / "cache"
    write_csv(finetuned["train"][::2], tmp_path / "train.csv")  # one segment of each class: the whole network is slow
    cli("finetune", "--blocks", "all", "--data", str(tmp_path / "train.csv"), "--val", str(finetuned["root"] / "val.csv"),
        "--out", str(out), "--cache", str(cache), "--epochs", "1", "--views", "1", "--batch-size", "3", "--no-int8")
    record = json.loads((out / "finetune.json").read_text())
    assert record["training"]["blocks"] == "all" and record["int8"] is None and record["training"]["epochs_run"] == 1
    assert len(list(cache.glob("*.frames.npy"))) == 3 + 3 and not list(cache.glob("*.top_input.npy"))
    assert json.loads((out / "conversion.json").read_text())["verify_max_abs_diff"] < 1e-3
    tuned = open_extractor(str(out), runtime="tensorflow", precision="float32")
    try:
        clip = _frames(finetuned["val"][0].path)[None]
        assert np.abs(tuned.top_input(clip) - float32_extractor.top_input(clip)).max() > 0  # the lower blocks moved
    finally:
        tuned.close()


def test_a_finetuned_extractor_is_its_own_analysis_in_the_library(finetuned, saved_model_dir):
    from models.recognition.segments import SegmentSettings
    from service.library.store import analysis
    from service.settings import Settings

    def asked(handle):
        return analysis(Settings(model_handle=str(handle)), head=None, sport=None, top_k=5, segments=SegmentSettings())

    tuned = json.loads((finetuned["out"] / "finetune.json").read_text())["extractor_id"]
    assert asked(finetuned["out"])["extractor"] == tuned  # fine-tuned again into the same folder: another analysis
    assert "extractor" not in asked(saved_model_dir)  # the base model's keys stay as they were


def test_the_accuracy_rule_with_fewer_than_five_labels():
    rng = np.random.default_rng(0)
    reference = {"a": rng.normal(size=(4, 3)).astype(np.float32)}
    assert compare(reference, {"a": reference["a"] + 0.01}).passes
    flipped = {"a": -reference["a"]}
    report = compare(reference, flipped)
    assert report.videos[0].top_k == 3 and not report.passes
