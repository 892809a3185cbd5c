"""The one joint order of the project: 21 hand joints in MediaPipe order.

Every array of hand joints in handtrack, 2D or 3D, is indexed by this order. Other layouts (data
sets with 14 or 16 joints, tip-first orders) are mapped to it here and nowhere else.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "NUM_JOINTS",
    "JOINT_NAMES",
    "JOINT_INDEX",
    "PARENTS",
    "EDGES",
    "RIGID_BONES",
    "FINGERS",
    "WRIST",
    "TIPS",
    "PALM",
    "KNUCKLES",
    "PALM_ROOT",
    "FREIHAND_TO_MP",
    "INTERHAND_TO_MP",
    "NYU_JOINT_NAMES",
    "NYU36_TO_NYU",
    "MP_TO_NYU",
    "NYU_TO_MP",
    "NYU_WRIST_PAIR",
    "ICVL_JOINT_NAMES",
    "MP_TO_ICVL",
    "ICVL_TO_MP",
    "LAYOUT_JOINT_NAMES",
    "LAYOUT_TO_MP",
    "common_joints",
]

NUM_JOINTS: Final = 21

JOINT_NAMES: Final[tuple[str, ...]] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

JOINT_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(JOINT_NAMES)}

WRIST: Final = 0

#: Joint indices of each finger, root to tip (thumb CMC..tip, then index..pinky MCP..tip).
FINGERS: Final[dict[str, tuple[int, int, int, int]]] = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}

TIPS: Final[tuple[int, ...]] = (4, 8, 12, 16, 20)

#: Joints that move rigidly with the palm (wrist + the five finger roots); used for fitting.
PALM: Final[tuple[int, ...]] = (0, 1, 5, 9, 13, 17)

#: The MCP joints of the four fingers (index, middle, ring, pinky): wrist -> knuckle distances give
#: a hand's size.
KNUCKLES: Final[tuple[int, ...]] = tuple(FINGERS[f][0] for f in ("index", "middle", "ring", "pinky"))

#: Wrist + the four knuckles: their mean is the palm centre that gesture clips, grip measures and
#: the cross-modal model are made relative to.
PALM_ROOT: Final[tuple[int, ...]] = (WRIST, *KNUCKLES)

#: Kinematic parent of each joint (-1 for the wrist): every finger root hangs off the wrist.
PARENTS: Final[tuple[int, ...]] = tuple(
    [-1] + [WRIST if k == 0 else chain[k - 1] for chain in FINGERS.values() for k in range(4)]
)

#: Skeleton bones as (parent, child) pairs, in joint order of the child.
EDGES: Final[tuple[tuple[int, int], ...]] = tuple(
    (PARENTS[j], j) for j in range(1, NUM_JOINTS)
)

#: FreiHAND / Panoptic / OneHand10K / real-world (Ge et al.) order: wrist, thumb1..4 (root to tip),
#: index1..4, middle1..4, ring1..4, pinky1..4. It coincides with MediaPipe's order.
FREIHAND_TO_MP: Final[tuple[int, ...]] = tuple(range(NUM_JOINTS))

#: InterHand2.6M (per hand): thumb4..1 (tip first), index4..1, middle4..1, ring4..1, pinky4..1, wrist.
#: ``mp_joints = ih_joints[INTERHAND_TO_MP]``.
INTERHAND_TO_MP: Final[tuple[int, ...]] = (20,) + tuple(
    f * 4 + (3 - k) for f in range(5) for k in range(4)
)


# --- Depth benchmarks: NYU Hand Pose (14 joints) and ICVL (16 joints) -----------------------------
#
# Convention of every ``A_TO_B`` table in this module (as for INTERHAND_TO_MP): it is indexed by the
# joints of B and holds the index of the same joint in A, so ``b_joints = a_joints[A_TO_B]``.
# The depth benchmarks label fewer joints than MediaPipe, so their tables hold -1 where the other
# layout has no such joint: never gather with them directly; ``common_joints`` gives the pairs.
#
#   MP_TO_NYU[j]  = the MediaPipe joint NYU joint j corresponds to best (-1: none); len 14
#   NYU_TO_MP[m]  = the NYU joint MediaPipe joint m corresponds to (-1: none);       len 21
#
# Bone lengths quoted below are medians over the GT of the development split shipped in
# ../shared/data/nyu_icvl_eval (NYU test frames 1-2440, ICVL test_seq_1), in mm, from the uvd labels
# with the benchmark intrinsics. Typical adult phalanx lengths to compare with (radiographic
# studies, e.g. Buryanov & Kotiuk 2010), proximal / middle / distal, mm: index 40 / 22 / 16,
# middle 45 / 26 / 17, ring 41 / 26 / 17, pinky 33 / 18 / 16; thumb metacarpal ~45, proximal 31,
# distal ~22. A labelled fingertip sits on the skin, a few mm beyond the bone.

#: NYU Hand Pose (Tompson et al. 2014) evaluation joints, in the order of the benchmark label files
#: (names from the awesome-hand-pose-estimation ``compute_error.py``). NYU's own names of the same
#: joints, index 0..13: F4_KNU2_B, F4_KNU3_A, F3_KNU2_B, F3_KNU3_A, F2_KNU2_B, F2_KNU3_A,
#: F1_KNU2_B, F1_KNU3_A, TH_KNU2_B, TH_KNU3_B, TH_KNU3_A, PALM_2, PALM_1, PALM_3 (F1 index .. F4 pinky).
NYU_JOINT_NAMES: Final[tuple[str, ...]] = (
    "Pinky.T", "Pinky.R", "Ring.T", "Ring.R", "Mid.T", "Mid.R", "Index.T", "Index.R",
    "Thumb.T", "Thumb.R2", "Thumb.R1", "Wrist2", "Wrist1", "Palm",
)  # fmt: skip

#: The 14 evaluation joints among NYU's 36 annotated points (``joint_data.mat``,
#: ``test_predictions.mat``): ``nyu14 = nyu36[NYU36_TO_NYU]``.
NYU36_TO_NYU: Final[tuple[int, ...]] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)

#: For each NYU joint, the MediaPipe joint it matches best, or -1 (``nyu_like = mp[MP_TO_NYU]``
#: where no entry is -1). Evidence (medians, mm):
#:
#: * ``.T`` is the fingertip.
#: * finger ``.R`` is the PIP knuckle, not the MCP: T-R is pinky 43.4, ring 50.3, middle 57.0,
#:   index 51.2 -- middle + distal phalanx plus the skin tip (~40-50), against ~75-95 to the MCP.
#: * ``Thumb.R2`` is the IP joint (T-R2 24.6 = distal phalanx) and ``Thumb.R1`` the MCP
#:   (R2-R1 48.8: long for a proximal phalanx, far short of proximal + metacarpal ~75; R1 is 78 and
#:   103 mm from the wrist points, so it is not the CMC). Treat both as approximate.
#: * ``Wrist1`` / ``Wrist2`` are the two sides of the wrist (35.3 apart), ``Palm`` the palm centre
#:   (80.7 from Mid.R): none is a MediaPipe joint. The midpoint of the wrist pair approximates the
#:   MediaPipe wrist (see ``NYU_WRIST_PAIR``) but is not paired here.
MP_TO_NYU: Final[tuple[int, ...]] = (
    20, 18,  # Pinky.T, Pinky.R  -> pinky_tip, pinky_pip
    16, 14,  # Ring.T, Ring.R    -> ring_tip, ring_pip
    12, 10,  # Mid.T, Mid.R      -> middle_tip, middle_pip
    8, 6,    # Index.T, Index.R  -> index_tip, index_pip
    4, 3, 2,  # Thumb.T, Thumb.R2, Thumb.R1 -> thumb_tip, thumb_ip, thumb_mcp
    -1, -1,  # Wrist2, Wrist1
    -1,      # Palm
)  # fmt: skip

#: NYU's two wrist points (Wrist2, Wrist1); their midpoint is the nearest thing to the MediaPipe wrist.
NYU_WRIST_PAIR: Final[tuple[int, int]] = (11, 12)

#: ICVL (Tang et al. 2014) joints, in the order of the benchmark label files.
ICVL_JOINT_NAMES: Final[tuple[str, ...]] = (
    "Palm",
    "Thumb.R", "Thumb.M", "Thumb.T",
    "Index.R", "Index.M", "Index.T",
    "Mid.R", "Mid.M", "Mid.T",
    "Ring.R", "Ring.M", "Ring.T",
    "Pinky.R", "Pinky.M", "Pinky.T",
)  # fmt: skip

#: For each ICVL joint, the MediaPipe joint it matches best, or -1. Evidence (medians, mm):
#:
#: * fingers: R/M/T are PIP/DIP/tip. R-M is index 29.0, middle 33.8, ring 30.7, pinky 23.5 and
#:   M-T 18.9 / 21.7 / 20.7 / 18.4: R-M is the middle phalanx (a proximal phalanx would be 33-45 and
#:   M-T would then have to span two phalanges, ~40), and the ratio R-M / M-T (1.53, 1.56, 1.48,
#:   1.28, lowest for the pinky) follows middle / distal (~1.4, 1.5, 1.5, 1.15), not
#:   proximal / middle (~1.8, 1.7, 1.6, 1.8).
#: * thumb: R/M/T are MCP/IP/tip: R-M 30.6 = proximal phalanx, M-T 25.0 = distal + skin.
#: * ``Palm`` (index 0) is a palm point, not a MediaPipe joint (43-57 from the finger PIPs,
#:   29.9 from the thumb MCP).
MP_TO_ICVL: Final[tuple[int, ...]] = (
    -1,          # Palm
    2, 3, 4,     # thumb  R, M, T -> mcp, ip, tip
    6, 7, 8,     # index  R, M, T -> pip, dip, tip
    10, 11, 12,  # middle
    14, 15, 16,  # ring
    18, 19, 20,  # pinky
)  # fmt: skip


def _gather_to_mp(mp_to_layout: tuple[int, ...]) -> tuple[int, ...]:
    """Invert a per-layout-joint table (layout joint -> MP joint or -1) into MP order."""
    return tuple(mp_to_layout.index(m) if m in mp_to_layout else -1 for m in range(NUM_JOINTS))


#: For each MediaPipe joint, the NYU joint that is it, or -1 (derived from ``MP_TO_NYU``).
NYU_TO_MP: Final[tuple[int, ...]] = _gather_to_mp(MP_TO_NYU)

#: For each MediaPipe joint, the ICVL joint that is it, or -1 (derived from ``MP_TO_ICVL``).
ICVL_TO_MP: Final[tuple[int, ...]] = _gather_to_mp(MP_TO_ICVL)

#: Joint names of every layout handtrack reads, in that layout's order.
LAYOUT_JOINT_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "mediapipe": JOINT_NAMES,
    "freihand": JOINT_NAMES,
    "interhand": tuple(JOINT_NAMES[INTERHAND_TO_MP.index(i)] for i in range(NUM_JOINTS)),
    "nyu": NYU_JOINT_NAMES,
    "icvl": ICVL_JOINT_NAMES,
}

#: Per layout, joint pairs whose distance does not change with the pose (bones of one rigid
#: segment), for bone-length statistics. 21-joint layouts: the skeleton's :data:`EDGES`; NYU: the
#: four finger tip-PIP segments, the thumb's two segments, the two wrist points and each of them to
#: the palm point; ICVL: the two segments of every finger and palm-thumb root.
RIGID_BONES: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "mediapipe": EDGES,
    "freihand": EDGES,
    "nyu": ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (9, 10), (11, 12), (11, 13), (12, 13)),
    "icvl": ((1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9), (10, 11), (11, 12), (13, 14), (14, 15), (0, 1)),
}

#: Every layout's ``X_TO_MP`` table: for each MediaPipe joint, its index in the layout or -1.
LAYOUT_TO_MP: Final[dict[str, tuple[int, ...]]] = {
    "mediapipe": tuple(range(NUM_JOINTS)),
    "freihand": FREIHAND_TO_MP,
    "interhand": INTERHAND_TO_MP,
    "nyu": NYU_TO_MP,
    "icvl": ICVL_TO_MP,
}


def common_joints(layout: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The joints a layout shares with the MediaPipe order, as two aligned index tuples.

    ``layout_joints[idx_layout]`` and ``mp_joints[idx_mp]`` are the same anatomical joints, in
    MediaPipe order; e.g. ``np.linalg.norm(gt_nyu[i] - pred_mp[m], axis=-1)`` for ``i, m =
    common_joints("nyu")`` is the error over the 11 joints NYU and MediaPipe share (some matches are
    approximate: see the ``MP_TO_NYU`` / ``MP_TO_ICVL`` notes).

    Args:
        layout: a key of ``LAYOUT_TO_MP`` ("mediapipe", "freihand", "interhand", "nyu", "icvl").

    Returns:
        ``(idx_layout, idx_mp)``, equal-length tuples of indices.

    Raises:
        ValueError: unknown layout.
    """
    table = LAYOUT_TO_MP.get(layout)
    if table is None:
        raise ValueError(f"unknown joint layout {layout!r}; known: {', '.join(LAYOUT_TO_MP)}")
    pairs = [(j, m) for m, j in enumerate(table) if j >= 0]
    return tuple(j for j, _ in pairs), tuple(m for _, m in pairs)
