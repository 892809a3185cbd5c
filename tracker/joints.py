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
    "FINGERS",
    "WRIST",
    "TIPS",
    "PALM",
    "FREIHAND_TO_MP",
    "INTERHAND_TO_MP",
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
