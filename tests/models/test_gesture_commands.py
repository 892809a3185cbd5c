"""The gesture commands (``python -m models.gestures``) and recognisers with the shipped networks, on
small generated sequences: custom gestures told apart, streams without gestures giving no event,
SHREC'17-layout prediction, background examples, temporal refinement, and misuse."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from models.gestures.__main__ import EXIT_INPUT, EXIT_MODEL, EXIT_OK, main
from models.gestures.data import BACKGROUND, Example, background_sequence
from models.gestures.denoise import refine_last
from models.gestures.online import detect_sequence
from models.gestures.recognizer import load_recognizer
from models.gestures.sequences import GestureSequence, save_sequence
from models.synthetic import SceneConfig, sample_scene
from tracker.core.joints import NUM_JOINTS


def generated(action: str, seed: int, frames: int = 60) -> GestureSequence:
    joints = sample_scene(seed, SceneConfig(num_frames=frames, actions=(action,))).hands[0].joints
    return GestureSequence(joints, np.arange(frames) / 30.0, label=action)


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
    """``<dir>/pinch/*.npz`` and ``<dir>/wave/*.npz``: 5 generated examples each."""
    root = tmp_path_factory.mktemp("gestures")
    for k, action in enumerate(("pinch", "wave")):
        (root / action).mkdir()
        for i in range(5):
            save_sequence(generated(action, 500 + 10 * k + i), root / action / f"{i}.npz")
    return root


@pytest.fixture(scope="module")
def gesture_set(examples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("set") / "set.npz"
    assert main(["--device", "cpu", "enrol", "--examples", str(examples_dir), "--output", str(out)]) == EXIT_OK
    return out


def _csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_enrolled_pinch_and_wave_are_told_apart(gesture_set, tmp_path):
    files = []
    for k, action in enumerate(("pinch", "wave")):
        for i in range(4):
            f = tmp_path / f"{action}_{i}.npz"
            save_sequence(generated(action, 900 + 10 * k + i), f)
            files.append(f)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--gesture-set", str(gesture_set), "--input", *map(str, files), "--output", str(out)]) == 0
    rows = _csv(out)
    assert list(rows[0]) == ["file", "label", "score"] and len(rows) == 8
    right = [r["label"] == r["file"].rsplit("/", 1)[-1].split("_")[0] for r in rows]
    assert sum(right) >= 7, rows
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)


def test_an_idle_stream_gives_no_event(gesture_set, tmp_path):
    rng = np.random.default_rng(3)
    pose = generated("wave", 1).joints[0]
    idle = GestureSequence(pose[None] + rng.normal(0, 1.5, (240, NUM_JOINTS, 3)), np.arange(240) / 30.0)
    for spec in ("shrec14", str(gesture_set)):
        assert detect_sequence(load_recognizer(spec), idle) == []
    f = tmp_path / "idle.npz"
    save_sequence(idle, f)
    out = tmp_path / "events.csv"
    assert main(["detect", "--gesture-set", str(gesture_set), "--input", str(f), "--output", str(out)]) == EXIT_OK
    assert out.read_text().splitlines() == ["label,start_frame,end_frame,score"]


def test_detect_finds_an_enrolled_gesture_between_idle_stretches(gesture_set, tmp_path):
    rng = np.random.default_rng(4)
    pinch = generated("pinch", 950).joints
    j = np.concatenate([np.repeat(pinch[:1], 60, 0), pinch, np.repeat(pinch[-1:], 60, 0)])
    f = tmp_path / "stream.npz"
    save_sequence(GestureSequence(j + rng.normal(0, 1.0, j.shape), np.arange(len(j)) / 30.0), f)
    out = tmp_path / "events.csv"
    assert main(["detect", "--gesture-set", str(gesture_set), "--input", str(f), "--output", str(out)]) == EXIT_OK
    rows = _csv(out)
    assert [r["label"] for r in rows] == ["pinch"], rows
    assert int(rows[0]["start_frame"]) <= 119 and int(rows[0]["end_frame"]) >= 60


def test_predict_shrec17_layout_writes_one_row_per_list_line(tmp_path):
    """A tiny folder in SHREC'17's layout (generated hands written as SHREC skeletons: metres, y up,
    22 joints with the palm centre) -> PRED.csv ``line,label,score`` in list order."""
    lines = []
    for n, (g, f, s, e) in enumerate([(7, 1, 2, 1), (8, 2, 3, 2), (1, 1, 2, 3)]):
        joints = generated("random", 600 + n).joints / 1000.0 * np.array([1.0, -1.0, 1.0])
        palm = joints[:, [0, 5, 9, 13, 17]].mean(axis=1, keepdims=True)
        shrec = np.concatenate([joints[:, :1], palm, joints[:, 1:]], axis=1).reshape(len(joints), -1)
        d = tmp_path / f"gesture_{g}" / f"finger_{f}" / f"subject_{s}" / f"essai_{e}"
        d.mkdir(parents=True)
        with gzip.open(d / "skeletons_world.txt.gz", "wt") as fh:
            np.savetxt(fh, shrec)
        lines.append(f"{g} {f} {s} {e} {g} {2 * (g - 1) + f} {len(joints)}")
    (tmp_path / "test_gestures.txt").write_text("\n".join(lines) + "\n")
    for classes in (14, 28):
        out = tmp_path / f"pred{classes}.csv"
        code = main(["predict", "--dataset", "shrec17", "--data", str(tmp_path), "--list",
                     str(tmp_path / "test_gestures.txt"), "--classes", str(classes), "--output", str(out)])  # fmt: skip
        assert code == EXIT_OK
        rows = _csv(out)
        assert list(rows[0]) == ["line", "label", "score"]
        assert [int(r["line"]) for r in rows] == [1, 2, 3]
        assert all(1 <= int(r["label"]) <= classes and 0 < float(r["score"]) <= 1 for r in rows)


def test_shipped_networks_have_a_background_class_left_out_of_their_names():
    for name, classes in (("shrec14", 14), ("shrec28", 28)):
        rec = load_recognizer(name)
        assert rec.num_classes == classes and rec.background and BACKGROUND not in rec.names
        clip = [(generated("wave", 2).joints[:32], 1.0)]
        p, scores = rec.probabilities(clip), rec.window_scores(clip)
        assert p.shape == scores.shape == (1, classes)
        assert p.sum() == pytest.approx(1.0) and scores.sum() <= 1.0 + 1e-6


def test_background_examples_are_real_hands_without_a_gesture():
    ex = [Example(generated(a, 40 + i), 0, 1) for i, a in enumerate(("wave", "pinch", "point"))]
    rng = np.random.default_rng(0)
    for _ in range(40):
        seq = background_sequence(ex, rng)
        assert seq.label == BACKGROUND and seq.num_frames >= 2
        assert np.isfinite(seq.joints).all() and seq.joints.shape[1:] == (NUM_JOINTS, 3)


def test_temporal_refinement_keeps_the_hand_in_place_and_is_finite():
    rec = load_recognizer("shrec14")
    clean = generated("open_close", 8, 32).joints
    noisy = clean + np.random.default_rng(0).normal(0, 4.0, clean.shape)
    out = refine_last(rec.model, [(noisy, 32 / 30.0), (noisy[:10], 10 / 30.0)])
    assert out.shape == (2, NUM_JOINTS, 3) and np.isfinite(out).all()
    root = clean[-1, [0, 5, 9, 13, 17]].mean(0)
    assert np.linalg.norm(out[0].mean(0) - root) < 60.0  # still the same hand, where it was


@pytest.mark.parametrize("content, code", [
    ("missing", EXIT_INPUT), ("empty", EXIT_INPUT), ("shape", EXIT_INPUT), ("nan", EXIT_INPUT),
])  # fmt: skip
def test_predict_misuse_is_one_line_and_an_exit_code(gesture_set, tmp_path, capsys, content, code):
    f = tmp_path / "in.npz"
    if content == "empty":
        np.savez(f, joints=np.zeros((0, NUM_JOINTS, 3)), timestamps=np.zeros(0))
    elif content == "shape":
        np.savez(f, joints=np.zeros((10, 22, 3)), timestamps=np.arange(10) / 30.0)
    elif content == "nan":
        np.savez(f, joints=np.full((10, NUM_JOINTS, 3), np.nan), timestamps=np.arange(10) / 30.0)
    rc = main(["predict", "--gesture-set", str(gesture_set), "--input", str(f), "--output", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == code and err.startswith("error: ") and "Traceback" not in err and str(f) in err


def test_bad_model_files_exit_9(tmp_path, capsys, examples_dir):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    f = tmp_path / "x.npz"
    save_sequence(generated("wave", 3), f)
    assert main(["predict", "--gesture-set", str(bad), "--input", str(f), "--output", str(tmp_path / "p.csv")]) == EXIT_MODEL
    assert main(["detect", "--gesture-set", str(tmp_path / "none.npz"), "--input", str(f),
                 "--output", str(tmp_path / "e.csv")]) == EXIT_MODEL  # fmt: skip
    pt = tmp_path / "bad.pt"
    pt.write_bytes(b"\x00" * 100)
    assert main(["enrol", "--examples", str(examples_dir), "--base", str(pt), "--output", str(tmp_path / "s.npz")]) == EXIT_MODEL
    assert "Traceback" not in capsys.readouterr().err
