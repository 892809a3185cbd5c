"""The joint layouts and their mappings to the MediaPipe order (tracker/joints.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.core.joints import (
    FINGERS,
    FREIHAND_TO_MP,
    ICVL_JOINT_NAMES,
    ICVL_TO_MP,
    INTERHAND_TO_MP,
    JOINT_INDEX,
    JOINT_NAMES,
    LAYOUT_JOINT_NAMES,
    LAYOUT_TO_MP,
    MP_TO_ICVL,
    MP_TO_NYU,
    NUM_JOINTS,
    NYU36_TO_NYU,
    NYU_JOINT_NAMES,
    NYU_TO_MP,
    NYU_WRIST_PAIR,
    TIPS,
    common_joints,
)

#: The correspondences spelled out by name, as a reader would check them against the dataset docs.
NYU_BY_NAME = {
    "Pinky.T": "pinky_tip", "Pinky.R": "pinky_pip", "Ring.T": "ring_tip", "Ring.R": "ring_pip",
    "Mid.T": "middle_tip", "Mid.R": "middle_pip", "Index.T": "index_tip", "Index.R": "index_pip",
    "Thumb.T": "thumb_tip", "Thumb.R2": "thumb_ip", "Thumb.R1": "thumb_mcp",
    "Wrist2": None, "Wrist1": None, "Palm": None,
}  # fmt: skip
ICVL_BY_NAME = {
    "Palm": None, "Thumb.R": "thumb_mcp", "Thumb.M": "thumb_ip", "Thumb.T": "thumb_tip",
    **{f"{icvl}.{part}": f"{mp}_{joint}"
       for icvl, mp in (("Index", "index"), ("Mid", "middle"), ("Ring", "ring"), ("Pinky", "pinky"))
       for part, joint in (("R", "pip"), ("M", "dip"), ("T", "tip"))},
}  # fmt: skip


@pytest.mark.parametrize(
    "names, mp_to_layout, layout_to_mp, by_name",
    [(NYU_JOINT_NAMES, MP_TO_NYU, NYU_TO_MP, NYU_BY_NAME), (ICVL_JOINT_NAMES, MP_TO_ICVL, ICVL_TO_MP, ICVL_BY_NAME)],
    ids=["nyu", "icvl"],
)
def test_partial_layout_tables(names, mp_to_layout, layout_to_mp, by_name) -> None:
    assert len(mp_to_layout) == len(names) and len(layout_to_mp) == NUM_JOINTS
    assert set(names) == set(by_name) and len(set(names)) == len(names)
    expected = tuple(JOINT_INDEX[by_name[n]] if by_name[n] else -1 for n in names)
    assert mp_to_layout == expected
    matched = [m for m in mp_to_layout if m >= 0]
    assert len(set(matched)) == len(matched), "two layout joints claim the same MediaPipe joint"
    # the two tables are inverses where defined, -1 elsewhere
    for j, m in enumerate(mp_to_layout):
        if m >= 0:
            assert layout_to_mp[m] == j
    assert sum(j >= 0 for j in layout_to_mp) == len(matched)
    # every tip is labelled, and every matched joint is on a finger (never the wrist)
    assert all(layout_to_mp[t] >= 0 for t in TIPS)
    assert layout_to_mp[0] == -1


def test_nyu_specifics() -> None:
    assert NYU_JOINT_NAMES[NYU_WRIST_PAIR[0]] == "Wrist2" and NYU_JOINT_NAMES[NYU_WRIST_PAIR[1]] == "Wrist1"
    assert len(NYU36_TO_NYU) == len(NYU_JOINT_NAMES)
    assert list(NYU36_TO_NYU) == sorted(NYU36_TO_NYU) and 0 <= min(NYU36_TO_NYU) and max(NYU36_TO_NYU) < 36


def test_common_joints_pair_the_same_joints() -> None:
    rng = np.random.default_rng(0)
    mp = rng.normal(size=(NUM_JOINTS, 3))
    for layout, mp_to_layout, count in (("nyu", MP_TO_NYU, 11), ("icvl", MP_TO_ICVL, 15)):
        # a layout-ordered array made from the MediaPipe one, NaN where the layout joint has no match
        other = np.array([mp[m] if m >= 0 else np.full(3, np.nan) for m in mp_to_layout])
        idx_layout, idx_mp = common_joints(layout)
        assert len(idx_layout) == len(idx_mp) == count
        np.testing.assert_array_equal(other[list(idx_layout)], mp[list(idx_mp)])
        assert list(idx_mp) == sorted(idx_mp)  # in MediaPipe order


def test_common_joints_full_layouts() -> None:
    assert common_joints("mediapipe") == (tuple(range(NUM_JOINTS)), tuple(range(NUM_JOINTS)))
    assert common_joints("freihand") == (FREIHAND_TO_MP, tuple(range(NUM_JOINTS)))
    idx_ih, idx_mp = common_joints("interhand")
    assert idx_ih == INTERHAND_TO_MP and idx_mp == tuple(range(NUM_JOINTS))
    with pytest.raises(ValueError, match="unknown joint layout 'msra'"):
        common_joints("msra")


def test_layout_names_follow_the_tables() -> None:
    assert set(LAYOUT_JOINT_NAMES) == set(LAYOUT_TO_MP)
    for layout, table in LAYOUT_TO_MP.items():
        names = LAYOUT_JOINT_NAMES[layout]
        assert len(table) == NUM_JOINTS and max(table) < len(names)
    # a full layout gathered with its table gives the MediaPipe names back
    for layout in ("mediapipe", "freihand", "interhand"):
        assert tuple(np.array(LAYOUT_JOINT_NAMES[layout])[list(LAYOUT_TO_MP[layout])]) == JOINT_NAMES
    assert LAYOUT_JOINT_NAMES["interhand"][:4] == ("thumb_tip", "thumb_ip", "thumb_mcp", "thumb_cmc")
    assert LAYOUT_JOINT_NAMES["interhand"][-1] == "wrist"


def test_depth_layouts_keep_finger_order() -> None:
    # along each finger the matched joints keep their order (root to tip or tip to root), never shuffled
    for mp_to_layout in (MP_TO_NYU, MP_TO_ICVL):
        for chain in FINGERS.values():
            order = [mp_to_layout.index(m) for m in chain if m in mp_to_layout]
            assert order == sorted(order) or order == sorted(order, reverse=True)
