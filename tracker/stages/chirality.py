"""Which hand a 3D skeleton is (left / right) from the direction its fingers flex.

Used where no detector says it: depth-only estimates (V2V-PoseNet outputs 21 joints, not a side) and
the evaluation of unlabelled real data. Joints in the order of :mod:`tracker.core.joints`, any frame
with a right-handed (det = +1) axis convention, e.g. the OpenCV camera frame; mm or m alike.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tracker.core.joints import WRIST

__all__ = ["CHIRALITY_MIN", "chirality_side"]

#: |chirality score| below this leaves a skeleton's side undecided (flat hands, e.g. praying).
CHIRALITY_MIN = 0.1


def chirality_side(joints_3d: np.ndarray, min_score: float = CHIRALITY_MIN
                   ) -> tuple[Literal["left", "right", "unknown"], float]:
    """Anatomical side of a 3D hand skeleton ``(21, 3)``.

    For a right hand (radial = index MCP - pinky MCP, distal = middle MCP - wrist) the palm faces
    ``radial x distal``; for a left hand, the opposite. Fingers (and the thumb tip) bend towards the
    palm, so the sign of their mean offset along ``radial x distal`` gives the side. A flat hand gives
    a score near 0 (undecided).

    Returns:
        (side, score) with score the mean offset in units of the wrist-middle-MCP length (> 0: right)
        and side "unknown" when ``|score| < min_score`` or the skeleton has non-finite joints.
    """
    j = np.asarray(joints_3d, dtype=np.float64)
    radial = j[5] - j[17]
    distal = j[9] - j[WRIST]
    n = np.cross(radial, distal)
    n /= max(np.linalg.norm(n), 1e-9)
    offsets = [(j[tip] - j[mcp]) @ n for mcp, tip in ((5, 8), (9, 12), (13, 16), (17, 20))]
    offsets.append((j[4] - j[WRIST]) @ n)
    score = float(np.mean(offsets) / max(np.linalg.norm(distal), 1e-9))
    if not np.isfinite(score) or abs(score) < min_score:
        return "unknown", score
    return ("right" if score > 0 else "left"), score
