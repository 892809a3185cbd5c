"""Gesture models: the sequence format and its readers, clip features, the HTT network, training."""

import gzip
import json

import numpy as np
import pytest
import torch

from models.gestures.data import Augment, Example, augmented_clip, make_batch, subject_split
from models.gestures.features import CLIP_FRAMES, NUM_FEATURES, clip_features, clip_joints
from models.gestures.sequences import (
    SHREC_TO_MP,
    GestureSequence,
    SequenceError,
    load_sequence,
    read_shrec,
    read_shrec_list,
    resample,
    save_sequence,
    sequences_from_export,
    shrec_path,
)
from models.htt import HTT, HTTConfig, htt_loss
from tracker.core.joints import NUM_JOINTS


def _hand(t: int = 40, seed: int = 0, speed: float = 0.0) -> np.ndarray:
    """(t, 21, 3) mm: a fixed hand-like point set 400 mm in front of the camera, moving along x."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 40.0, (NUM_JOINTS, 3)) + [0.0, 0.0, 400.0]
    base[0] = [0.0, 60.0, 400.0]
    for k, j in enumerate((5, 9, 13, 17)):
        base[j] = [-30.0 + 20.0 * k, -25.0, 400.0]
    return base + np.arange(t)[:, None, None] * np.array([speed, 0.0, 0.0])


# ------------------------------------------------------------------ readers


def _shrec_lines(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(-0.3, 0.5, (n, 66))


def test_shrec_reader_converts_units_axes_and_joints(tmp_path):
    raw = _shrec_lines(12)
    d = tmp_path / "gesture_3" / "finger_2" / "subject_7" / "essai_1"
    d.mkdir(parents=True)
    with gzip.open(d / "skeletons_world.txt.gz", "wt") as f:
        np.savetxt(f, raw)
    (tmp_path / "list.txt").write_text("3 2 7 1 3 6 12\n\n")
    (entry,) = read_shrec_list(tmp_path / "list.txt")
    assert (entry.gesture, entry.finger, entry.subject, entry.label_14, entry.label_28, entry.size) == (3, 2, 7, 3, 6, 12)
    seq = read_shrec(shrec_path(tmp_path, entry))
    assert seq.joints.shape == (12, NUM_JOINTS, 3) and seq.timestamps[1] == pytest.approx(1 / 30)
    src = raw.reshape(12, 22, 3)
    np.testing.assert_allclose(seq.joints[:, 0], src[:, 0] * [1000, -1000, 1000])  # wrist, y flipped, mm
    np.testing.assert_allclose(seq.joints[:, 1], src[:, 2] * [1000, -1000, 1000])  # thumb CMC = SHREC joint 3
    assert list(SHREC_TO_MP[:3]) == [0, 2, 3] and 1 not in SHREC_TO_MP  # the palm centre is dropped


def test_shrec_reader_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(SequenceError, match="66"):
        read_shrec(tmp_path / "bad.txt")
    (tmp_path / "list.txt").write_text("1 1 2 1 1\n")
    with pytest.raises(SequenceError, match=r"list.txt:1: expected 7 integers"):
        read_shrec_list(tmp_path / "list.txt")
    with pytest.raises(SequenceError, match="no such"):
        read_shrec(tmp_path / "missing.txt")


def test_generic_format_round_trip_keeps_nan_and_needs_a_rate_without_timestamps(tmp_path):
    j = _hand(10)
    j[3, 4] = np.nan
    seq = GestureSequence(j, np.arange(10) / 15.0, label="wave")
    back = load_sequence(save_sequence(seq, tmp_path / "a.npz"))
    assert back.label == "wave" and np.isnan(back.joints[3, 4]).all() and not back.valid[3, 4]
    np.testing.assert_allclose(back.joints[~np.isnan(back.joints)], j[~np.isnan(j)], atol=1e-3)
    np.savez(tmp_path / "b.npz", joints=j)
    with pytest.raises(SequenceError, match="--fps"):
        load_sequence(tmp_path / "b.npz")
    assert load_sequence(tmp_path / "b.npz", fps=60).timestamps[1] == pytest.approx(1 / 60)


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    (b"", "not a readable NPZ"),
    ({"joints": np.zeros((5, 20, 3))}, r"\(T, 21, 3\)"),
    ({"joints": np.full((5, 21, 3), np.nan), "timestamps": np.arange(5.0)}, "every joint is missing"),
    ({"joints": np.zeros((0, 21, 3)), "timestamps": np.zeros(0)}, "empty"),
    ({"poses": np.zeros((5, 21, 3))}, "no 'joints'"),
    ({"joints": np.zeros((3, 21, 3)), "timestamps": np.array([0.0, 0.0, 1.0])}, "increasing"),
])  # fmt: skip
def test_generic_format_misuse(tmp_path, content, match):
    path = tmp_path / "x.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.savez(path, **content)
    with pytest.raises(SequenceError, match=match):
        load_sequence(path)


def test_resample_interpolates_by_time_and_keeps_missing_missing():
    j = _hand(4, speed=10.0)
    j[2, 7] = np.nan
    seq = GestureSequence(j, np.array([0.0, 0.1, 0.3, 0.4]))
    out = resample(seq, np.array([0.05, 0.2, 0.35, 1.0]))
    np.testing.assert_allclose(out[0, 0], j[0, 0] + [5.0, 0, 0])  # halfway between frames 0 and 1
    assert np.isnan(out[1, 7]).all() and np.isfinite(out[1, 6]).all()  # a missing neighbour -> missing
    np.testing.assert_allclose(out[3], j[3])  # past the end: the last frame


def test_export_reader_gives_one_sequence_per_track(tmp_path):
    lines = []
    for i in range(6):
        hands = [{"id": 0, "joints_3d": _hand(1, seed=0)[0].tolist()}]
        if 2 <= i < 5:
            hands.append({"id": 3, "joints_3d": _hand(1, seed=1)[0].tolist()})
        if i == 3:
            hands = hands[1:]  # track 0 missing on frame 3
        lines.append(json.dumps({"timestamp": i / 30, "frame_index": i, "hands": hands}))
    (tmp_path / "e.jsonl").write_text("\n".join(lines))
    a, b = sequences_from_export(tmp_path / "e.jsonl")
    assert a.num_frames == 6 and np.isnan(a.joints[3]).all() and a.source.endswith("#0")
    assert b.num_frames == 3 and b.timestamps[0] == pytest.approx(2 / 30)
    (tmp_path / "none.jsonl").write_text(json.dumps({"timestamp": 0.0, "hands": []}))
    with pytest.raises(SequenceError, match="no tracked hand"):
        sequences_from_export(tmp_path / "none.jsonl")


# ------------------------------------------------------------------ features and the network


def test_features_are_scale_invariant_and_mark_missing_joints():
    j = _hand(20, speed=3.0)
    clip, dur = clip_joints(GestureSequence(j, np.arange(20) / 30))
    f1, v1 = clip_features(clip, dur)
    centre = clip.reshape(-1, 3).mean(0)
    f2, _ = clip_features((clip - centre) * 2.0 + centre, dur)
    assert f1.shape == (CLIP_FRAMES, NUM_FEATURES) and v1.all()
    np.testing.assert_allclose(f1, f2, atol=1e-4)
    holed = clip.copy()
    holed[:, 8] = np.nan
    f3, _ = clip_features(holed, dur)
    present = f3[:, 2 * NUM_JOINTS * 3 + 6 : 2 * NUM_JOINTS * 3 + 6 + NUM_JOINTS]
    assert np.isfinite(f3).all() and (present[:, 8] == 0).all() and (present[:, 7] == 1).all()


def _examples(n: int = 12) -> list[Example]:
    out = []
    for i in range(n):
        label = i % 2
        j = _hand(30, seed=i, speed=4.0 if label else -4.0)
        out.append(Example(GestureSequence(j, np.arange(30) / 30), label, subject=i % 4))
    return out


def test_network_shapes_and_finite_outputs_with_missing_frames():
    torch.manual_seed(0)
    model = HTT(HTTConfig(num_classes=5, dim=32, heads=2, ff=64)).eval()
    batch = make_batch(_examples(4), Augment.none(), np.random.default_rng(0))
    x, v = torch.from_numpy(batch["features"]), torch.from_numpy(batch["valid"])
    v[1, 10:20] = False
    v[2] = False  # a clip with no hand at all
    out = model(x, v)
    assert out["logits"].shape == (4, 5) and out["pose"].shape == (4, CLIP_FRAMES, 63)
    assert out["embedding"].shape == (4, 32) and torch.isfinite(out["logits"]).all()
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(4))
    pooled = HTT(HTTConfig(num_classes=5, dim=32, heads=2, ff=64, pose_layers=0, action_token=False)).eval()
    o2 = pooled(x, v)
    assert o2["pose"] is None and o2["logits"].shape == (4, 5)
    with pytest.raises(ValueError, match="max_frames"):
        model(torch.zeros(1, 65, NUM_FEATURES))


def test_one_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = HTT(HTTConfig(num_classes=2, dim=32, heads=2, ff=64, dropout=0.0))
    b = {k: torch.from_numpy(v) for k, v in make_batch(_examples(), Augment.none(), np.random.default_rng(0)).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        return htt_loss(model(b["features"], b["valid"]), b["labels"], b["pose"], b["pose_valid"])[0]

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        assert float(loss()) < float(before)


def test_augmentation_keeps_a_clean_target_and_subject_split_holds_subjects_out():
    ex = _examples()
    rng = np.random.default_rng(0)
    noisy, duration, clean = augmented_clip(ex[0].sequence, Augment(drop_joints_p=1.0), rng)
    assert noisy.shape == clean.shape == (CLIP_FRAMES, NUM_JOINTS, 3) and duration > 0
    assert np.isnan(noisy).any() and np.isfinite(clean).all()
    train, val = subject_split(ex, fold=1, folds=4)
    assert {x.subject for x in val} == {1} and 1 not in {x.subject for x in train}
