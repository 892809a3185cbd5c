import csv

import numpy as np
import pytest

from tracker.core.errors import OutputError
from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet, HandPose, Intrinsics
from tracker.sinks.export import CsvExporter, hand_to_dict, open_exporter, read_jsonl

CAM = Camera("c", Intrinsics(50, 50, 32, 24, 64, 48))


def result(i: int, n_hands: int) -> FrameResult:
    fs = FrameSet.single(Frame(np.zeros((48, 64, 3), np.uint8), i / 30, i, CAM))
    hands = tuple(
        HandPose(
            joints_2d=np.arange(NUM_JOINTS * 2, dtype=float).reshape(NUM_JOINTS, 2) + 100 * k + i,
            confidence=np.full(NUM_JOINTS, 0.9),
            timestamp=i / 30,
            joints_3d=None if k == 1 else np.arange(NUM_JOINTS * 3, dtype=float).reshape(NUM_JOINTS, 3) + 400 + i,
            handedness="left" if k else "right",
            handedness_score=0.8,
            track_id=k,
        )
        for k in range(n_hands)
    )
    return FrameResult(fs, hands)


RESULTS = [result(0, 2), result(1, 0), result(2, 1)]


def test_jsonl_one_object_per_frame(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    with open_exporter(path) as exp:
        for r in RESULTS:
            exp(r)
    frames = read_jsonl(path)
    assert [f["frame_index"] for f in frames] == [0, 1, 2]
    assert [len(f["hands"]) for f in frames] == [2, 0, 1]
    h = frames[0]["hands"][0]
    assert h["id"] == 0 and h["handedness"] == "right"
    np.testing.assert_allclose(h["joints_2d"], RESULTS[0].hands[0].joints_2d)
    np.testing.assert_allclose(h["joints_3d"], RESULTS[0].hands[0].joints_3d)
    assert frames[0]["hands"][1]["joints_3d"] is None
    assert frames[2]["timestamp"] == pytest.approx(2 / 30, abs=1e-6)


def test_npz_arrays(tmp_path):
    path = tmp_path / "out.npz"
    with open_exporter(path) as exp:
        for r in RESULTS:
            exp(r)
    d = np.load(path)
    assert d["frame_index"].tolist() == [0, 1, 2]
    assert d["hand_frame"].tolist() == [0, 0, 2]
    assert d["joints_2d"].shape == (3, NUM_JOINTS, 2) and d["joints_3d"].shape == (3, NUM_JOINTS, 3)
    assert np.isnan(d["joints_3d"][1]).all() and np.isfinite(d["joints_3d"][0]).all()
    assert d["handedness"].tolist() == ["right", "left", "right"]
    assert tuple(d["joint_names"]) == JOINT_NAMES


def test_csv_rows_and_header(tmp_path):
    path = tmp_path / "out.csv"
    with open_exporter(path) as exp:
        for r in RESULTS:
            exp(r)
    rows = list(csv.reader(open(path)))
    assert rows[0] == CsvExporter.HEADER and len(rows) == 1 + 3
    row = dict(zip(rows[0], rows[1]))
    assert float(row["index_tip_u"]) == pytest.approx(RESULTS[0].hands[0].joints_2d[8, 0])
    assert float(row["wrist_z"]) == pytest.approx(RESULTS[0].hands[0].joints_3d[0, 2])
    assert dict(zip(rows[0], rows[2]))["wrist_z"] == ""


def test_unknown_extension_is_a_clear_error(tmp_path):
    with pytest.raises(OutputError, match=r"unknown extension '\.xlsx'; use one of \.jsonl"):
        open_exporter(tmp_path / "out.xlsx")


def test_hand_to_dict_maps_nan_to_null():
    h = RESULTS[0].hands[0].replace(joints_3d=np.full((NUM_JOINTS, 3), np.nan))
    assert hand_to_dict(h)["joints_3d"][0] == [None, None, None]


def test_rig_hands_export_world_joints_and_uncertainty(tmp_path):
    world = np.arange(NUM_JOINTS * 3, dtype=float).reshape(NUM_JOINTS, 3) - 30.0
    unc = np.linspace(1.0, 5.0, NUM_JOINTS)
    unc[4] = np.inf  # a joint that was not triangulated
    rig_hand = RESULTS[0].hands[0].replace(view=-1, joints_world=world, uncertainty_mm=unc)
    r = FrameResult(RESULTS[0].frameset, (rig_hand, RESULTS[0].hands[1]))
    for name in ("out.jsonl", "out.npz"):
        with open_exporter(tmp_path / name) as exp:
            exp(r)
    h0, h1 = read_jsonl(tmp_path / "out.jsonl")[0]["hands"]
    np.testing.assert_allclose(h0["joints_world"], world)
    assert h0["uncertainty_mm"][4] is None and h0["uncertainty_mm"][0] == pytest.approx(1.0)
    assert "joints_world" not in h1 and "uncertainty_mm" not in h1
    d = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(d["joints_world"][0], world)
    assert np.isnan(d["joints_world"][1]).all() and np.isnan(d["uncertainty_mm"][1]).all()
    assert d["uncertainty_mm"][0, 0] == pytest.approx(1.0)


def test_grip_and_gesture_in_jsonl_and_npz_only_when_the_stages_ran(tmp_path):
    from tracker.core.structures import GestureEvent, Grip

    event = GestureEvent("pinch", 0.91234, 3, 20, 0.1, 0.6666666)
    with_grip = [FrameResult(r.frameset, tuple(h.replace(grip=Grip(k == 0, 20.0 + k, False, 0.1)) for k, h in
                                               enumerate(r.hands))) for r in RESULTS]  # fmt: skip
    with_grip[2] = FrameResult(with_grip[2].frameset, (with_grip[2].hands[0].replace(gesture=event),))
    for suffix in ("jsonl", "npz"):
        with open_exporter(tmp_path / f"g.{suffix}") as exp:
            for r in with_grip:
                exp(r)
    frames = read_jsonl(tmp_path / "g.jsonl")
    assert frames[0]["hands"][0]["grip"] == {"pinch": True, "pinch_distance_mm": 20.0, "grab": False,
                                             "grab_strength": 0.1}  # fmt: skip
    assert "gesture" not in frames[0]["hands"][0]
    assert frames[2]["hands"][0]["gesture"] == {"label": "pinch", "score": 0.9123, "start_frame": 3, "end_frame": 20,
                                                "start_time": 0.1, "end_time": 0.666667}  # fmt: skip
    d = np.load(tmp_path / "g.npz")
    assert d["pinch"].tolist() == [True, False, True] and d["gesture"].tolist() == ["", "", "pinch"]
    assert d["gesture_start_frame"].tolist() == [-1, -1, 3] and np.isnan(d["gesture_score"][:2]).all()
    with open_exporter(tmp_path / "plain.npz") as exp:  # without the stages: no such arrays
        for r in RESULTS:
            exp(r)
    assert "pinch" not in np.load(tmp_path / "plain.npz").files
    assert "grip" not in hand_to_dict(RESULTS[0].hands[0])
