"""A hand's skin as simple primitives around its 21 joints: tapered capsules, ellipsoids and a slab.

:func:`build_surface` takes only the 21 joint positions (MediaPipe order, :mod:`tracker.core.joints`) and
the handedness, so it works for joints from any source: the kinematic hand model, a data set's
labels, a tracker's output. Every local frame is derived from the joints:

* the **palm frame**: origin at the wrist joint, ``Y`` distal (wrist -> middle MCP), ``X`` radial
  (pinky MCP -> index MCP, orthogonalised against ``Y``), ``Z`` volar (out of the palm):
  ``Z = X x Y`` for a right hand and ``-(X x Y)`` for a left hand, so that the left hand built from
  mirrored joints is exactly the mirror image of the right one;
* per finger bone: ``across`` = the palm's radial axis orthogonalised against the bone (robust when
  a finger flexes 90 deg), ``volar`` = the pad side, perpendicular to both; for the thumb the pad
  reference is ``0.8 Z - 0.6 X`` (volar and ulnar) orthogonalised against each bone.

The palm is a rounded slab (a rectangle swept by a flattened ball, sheared so that its distal edge
follows the MCP row) with metacarpals, thenar and hypothenar eminences and a thumb web around it;
each finger bone is a tapered capsule with a slightly flattened cross-section.

Sizes follow an average adult hand (:data:`RADII`, the demo renderer's) scaled by the hand's size
``|middle_mcp - wrist| / 90 mm`` times ``radius_scale``. Fingertip joints are where MediaPipe puts
its tip landmark: the skin ends ``(1 - TIP_INSET) * r`` (about 5 mm) beyond them.

Primitives are in the frame of the joints given (mm). Build from camera-frame joints to render
directly (what :func:`models.render.render` does), or build once and move the surface with
:func:`transform`. :func:`pack` turns one or more surfaces into the arrays the kernels of
:mod:`kernels.render` take. Skin creases (palm lines, flexion creases, knuckle wrinkles) are placed
on the built surface by casting rays at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from kernels.render import KIND_CONE, KIND_SLAB, MAT_COLS, cast_rays
from tracker.core.joints import FINGERS, NUM_JOINTS
from tracker.core.structures import Extrinsics

__all__ = [
    "RADII",
    "TIP_INSET",
    "REFERENCE_PALM_MM",
    "DEFAULT_SKIN",
    "SLEEVE_ALBEDO",
    "PART_PALM",
    "PART_FOREARM",
    "PART_SLEEVE",
    "PART_THENAR",
    "PART_HYPOTHENAR",
    "PART_WEB",
    "finger_part",
    "shadow_group",
    "crease_group",
    "palm_frame",
    "Primitives",
    "PackedPrimitives",
    "build_surface",
    "transform",
    "pack",
]

#: Skin radii (mm) at the four joints of each chain, root to tip (thumb: CMC, MCP, IP, tip) of a
#: hand whose wrist -> middle MCP distance is :data:`REFERENCE_PALM_MM`.
RADII: dict[str, tuple[float, float, float, float]] = {
    "thumb": (12.5, 10.5, 9.5, 8.0),
    "index": (10.0, 9.0, 8.0, 7.2),
    "middle": (10.2, 9.3, 8.2, 7.4),
    "ring": (9.6, 8.7, 7.8, 7.0),
    "pinky": (8.6, 7.6, 6.9, 6.2),
}
REFERENCE_PALM_MM = 90.0
#: The fingertip's end cap is centred this fraction of the tip radius short of the tip joint.
TIP_INSET = 0.3
#: The distal bone swells into the finger pad: PAD_SWELL times its larger end radius, PAD_AT of the
#: way from the distal joint to the end cap.
PAD_SWELL = 1.06
PAD_AT = 0.55
#: Cross-section depth / width of finger bones.
FINGER_FLATTEN = 0.9
#: Nail: from this fraction of the way from the distal joint to the end cap to almost the end.
NAIL_START = 0.45
NAIL_END = 0.95

DEFAULT_SKIN = (0.87, 0.66, 0.54)
SLEEVE_ALBEDO = (0.16, 0.22, 0.36)
#: Albedo of parts relative to the skin albedo (the palm side is a little pinker).
_PALM_TINT = np.array([0.89 / 0.87, 0.65 / 0.66, 0.55 / 0.54])
_PAD_TINT = np.array([0.89 / 0.87, 0.64 / 0.66, 0.55 / 0.54])

PART_PALM, PART_FOREARM, PART_SLEEVE, PART_THENAR, PART_HYPOTHENAR, PART_WEB = 0, 1, 2, 3, 4, 5
_FINGER_NAMES = tuple(FINGERS)
_CHAINS = np.array([FINGERS[name] for name in _FINGER_NAMES])  # (5, 4)


def finger_part(finger: int, bone: int) -> int:
    """Part id of bone ``bone`` (0 = root) of finger ``finger`` (0 = thumb ... 4 = pinky)."""
    return 10 + 3 * finger + bone


def shadow_group(part: int) -> int:
    """Contact-shadow group of a part: parts of one group never shade each other."""
    if part >= 10:
        return 10 + (part - 10) // 3
    return 0 if part in (PART_PALM, PART_WEB) else part


def crease_group(part: int) -> int:
    """Crease group of a part (creases are drawn on the parts of their group); -1 = none."""
    if part >= 10:
        return 10 + (part - 10) // 3
    return 0 if part in (PART_PALM, PART_THENAR, PART_HYPOTHENAR, PART_WEB) else -1


#: Palm lines (heart, head, life) in the palm frame (x radial, y distal) of the reference hand, mm.
PALM_LINES: tuple[tuple[tuple[float, float], ...], ...] = (
    ((-43.0, 62.0), (-28.0, 67.0), (-10.0, 71.0), (6.0, 74.0), (16.0, 79.0)),
    ((29.0, 58.0), (14.0, 55.0), (-4.0, 50.0), (-22.0, 44.0), (-32.0, 38.0)),
    ((30.0, 58.0), (20.0, 48.0), (14.0, 35.0), (12.0, 20.0), (14.0, 6.0)),
)
CREASE_HALF_WIDTH_MM = 0.8


@dataclass(frozen=True)
class Primitives:
    """The skin of one hand (mm, in the frame of the joints it was built from).

    Capsules (``M``): tapered capsules (convex hull of two spheres) whose cross-section is an
    ellipse, ``flatten`` times as deep along ``volar`` as it is wide.

    Attributes:
        cap_a, cap_b: ``(M, 3)`` end centres.
        cap_ra, cap_rb: ``(M,)`` radii at ``a`` and ``b``.
        cap_volar: ``(M, 3)`` unit axis perpendicular to ``b - a``: the flattened direction and the
            volar side (finger pads, palm).
        cap_flatten: ``(M,)`` depth / width of the cross-section (1 = round).
        cap_part: ``(M,)`` int part id (``PART_*``, :func:`finger_part`).
        cap_albedo: ``(M, 3)`` RGB albedo in [0, 1].
        cap_nail: ``(M, 2)`` range ``[s0, s1]`` of the nail along ``a -> b`` (dorsal side); ``s0 >= s1``
            for none.
        ell_centre: ``(E, 3)`` ellipsoid centres.
        ell_axes: ``(E, 3, 3)`` semi-axis vectors as columns, mutually orthogonal.
        ell_volar: ``(E, 3)`` unit volar axis.
        ell_part, ell_albedo: as for capsules.
        slab_centre: ``(S, 3)`` centres of rounded slabs.
        slab_axes: ``(S, 3, 3)`` images (mm) of the local unit axes x, y, z as columns (any
            invertible matrix: shear and flattening allowed).
        slab_half: ``(S, 2)`` local half sizes ``(hx, hy)`` of the rectangle the ball sweeps.
        slab_radius: ``(S,)`` local radius of the swept ball (the slab is ``2 r`` thick locally).
        slab_volar, slab_part, slab_albedo: as for ellipsoids.
        crease_p0, crease_p1: ``(C, 3)`` skin crease segments lying on the surface.
        crease_width: ``(C,)`` half width of the crease line (mm).
        crease_group: ``(C,)`` int, drawn on primitives whose part has this :func:`crease_group`.
        joints: ``(21, 3)`` the joints the surface was built from.
        joint_radius: ``(21,)`` how deep (mm) each joint lies under its own skin at most: the
            bone's radius for finger joints, the palm's or the knuckle's for the finger roots, the
            thenar's for the thumb's base, the wrist's for the wrist (for visibility tests).
        handedness: "left" or "right".
    """

    cap_a: np.ndarray
    cap_b: np.ndarray
    cap_ra: np.ndarray
    cap_rb: np.ndarray
    cap_volar: np.ndarray
    cap_flatten: np.ndarray
    cap_part: np.ndarray
    cap_albedo: np.ndarray
    cap_nail: np.ndarray
    ell_centre: np.ndarray
    ell_axes: np.ndarray
    ell_volar: np.ndarray
    ell_part: np.ndarray
    ell_albedo: np.ndarray
    slab_centre: np.ndarray
    slab_axes: np.ndarray
    slab_half: np.ndarray
    slab_radius: np.ndarray
    slab_volar: np.ndarray
    slab_part: np.ndarray
    slab_albedo: np.ndarray
    crease_p0: np.ndarray
    crease_p1: np.ndarray
    crease_width: np.ndarray
    crease_group: np.ndarray
    joints: np.ndarray
    joint_radius: np.ndarray
    handedness: Literal["left", "right"]

    @property
    def num_primitives(self) -> int:
        return int(self.cap_a.shape[0] + self.ell_centre.shape[0] + self.slab_centre.shape[0])


@dataclass(frozen=True)
class PackedPrimitives:
    """Primitives of one or more hands as the arrays of :mod:`kernels.render` (``N`` = capsules,
    ellipsoids, slabs of hand 0, then of hand 1, ...).

    Attributes:
        minv, org, la, lb, ra, rb, kind: affine images of round cones and slabs
            (:mod:`kernels.render`).
        bound_a, bound_b, bound_r: a bounding capsule of each primitive (mm).
        mat: ``(N, MAT_COLS)`` material table.
        groups: ``(N, 2)`` int32 (shadow group, crease group), unique per hand; -1 = none.
        hand: ``(N,)`` int32 index of the hand each primitive belongs to.
        part: ``(N,)`` int32 part id.
        creases: ``(C, 7)`` float64 ``(p0, p1, half width)``; crease_group: ``(C,)`` int32.
    """

    minv: np.ndarray
    org: np.ndarray
    la: np.ndarray
    lb: np.ndarray
    ra: np.ndarray
    rb: np.ndarray
    kind: np.ndarray
    bound_a: np.ndarray
    bound_b: np.ndarray
    bound_r: np.ndarray
    mat: np.ndarray
    groups: np.ndarray
    hand: np.ndarray
    part: np.ndarray
    creases: np.ndarray
    crease_group: np.ndarray

    @property
    def geometry(self) -> tuple[np.ndarray, ...]:
        """``(minv, org, la, lb, ra, rb, kind)``, the first arguments of the kernels."""
        return self.minv, self.org, self.la, self.lb, self.ra, self.rb, self.kind


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis, kept (cheaper than ``np.linalg.norm`` on tiny arrays)."""
    return np.sqrt((v * v).sum(axis=-1, keepdims=True))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (cheaper than ``np.cross`` on tiny arrays)."""
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape)
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = _norm(v)
    return v / np.where(n > 0.0, n, 1.0)


def _orth(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``v`` minus its component along the unit ``d`` (broadcasting over leading axes)."""
    return v - np.sum(v * d, axis=-1, keepdims=True) * d


def _orth_unit(v: np.ndarray, d: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit ``v`` orthogonalised against unit ``d``; where that degenerates, ``fallback`` is used."""
    o = _orth(v, d)
    n = _norm(o)
    of = _unit(_orth(np.broadcast_to(fallback, o.shape), d))
    return np.where(n > 1e-3, o / np.where(n > 0.0, n, 1.0), of)


def palm_frame(joints: np.ndarray, handedness: str) -> tuple[np.ndarray, float]:
    """The palm frame of a hand (module docstring).

    Args:
        joints: ``(21, 3)`` mm.
        handedness: "left" or "right".

    Returns:
        axes: ``(3, 3)`` columns ``X`` radial, ``Y`` distal, ``Z`` volar (left-handed for a left hand).
        scale: ``|middle_mcp - wrist| / REFERENCE_PALM_MM``.

    Raises:
        ValueError: on a degenerate palm (wrist, index, middle and pinky MCP nearly collinear).
    """
    j = np.asarray(joints, dtype=np.float64)
    dist = j[9] - j[0]
    length = float(np.linalg.norm(dist))
    if length < 1e-3:
        raise ValueError("degenerate hand: the middle MCP coincides with the wrist; check the joint order")
    y = dist / length
    x = _orth(j[5] - j[17], y)
    if np.linalg.norm(x) < 1e-3 * length:
        raise ValueError("degenerate hand: index and pinky MCP do not span the palm; check the joint order")
    x = x / np.linalg.norm(x)
    z = _cross(x, y) * (1.0 if handedness == "right" else -1.0)
    return np.stack([x, y, z], axis=1), length / REFERENCE_PALM_MM


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------

#: Metacarpal bases: this fraction of the way from the wrist to each MCP, shifted radially (mm).
_METACARPAL_BASE_AT = 0.27
_METACARPAL_BASE_DX = np.array([8.0, 3.0, -3.0, -7.0])
#: Palm slab (reference mm): distal edge this far beyond the MCP row, heel edge at this y, in-plane
#: rounding radius of its rim, half thickness.
_PALM_BEYOND_MCP = 3.0
_PALM_HEEL_Y = -10.0
_PALM_ROUNDING = 18.0
_PALM_HALF_THICKNESS = 12.0
#: Knuckles: spheres of the finger's MCP radius this far (reference mm) dorsal of the MCP joints.
_KNUCKLE_DORSAL = 3.0
#: Webs between the fingers join their proximal phalanges this fraction of the way to the PIP.
_WEB_AT = 0.3


def build_surface(joints: np.ndarray, handedness: Literal["left", "right"], radius_scale: float = 1.0, *,
                  skin_albedo: Sequence[float] | np.ndarray | None = None, forearm_mm: float = 250.0,
                  sleeve_albedo: Sequence[float] | np.ndarray | None = SLEEVE_ALBEDO) -> Primitives:
    """The skin surface of a hand with the given joints.

    Args:
        joints: ``(21, 3)`` joint centres in mm, any frame, MediaPipe order.
        handedness: "left" or "right" (the person's anatomical hand).
        radius_scale: multiplies every skin radius and the palm's thickness (1 = average).
        skin_albedo: RGB albedo in [0, 1] of the back of the hand; default :data:`DEFAULT_SKIN`.
        forearm_mm: length of the forearm drawn proximally of the wrist (0 = none).
        sleeve_albedo: RGB albedo of a sleeve over the forearm from 85 mm proximal of the wrist on;
            None = bare forearm.

    Returns:
        The primitives, in the frame of ``joints``.

    Raises:
        ValueError: on a wrong shape, non-finite joints, an unknown handedness or a degenerate palm.
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.shape != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be ({NUM_JOINTS}, 3) mm, got {j.shape}")
    if not np.isfinite(j).all():
        raise ValueError("joints must be finite")
    if handedness not in ("left", "right"):
        raise ValueError(f"handedness must be 'left' or 'right', got {handedness!r}")
    if not radius_scale > 0:
        raise ValueError(f"radius_scale must be positive, got {radius_scale}")
    skin = np.asarray(DEFAULT_SKIN if skin_albedo is None else skin_albedo, dtype=np.float64)
    if skin.shape != (3,):
        raise ValueError(f"skin_albedo must be RGB (3,), got {skin.shape}")
    sign = 1.0 if handedness == "right" else -1.0
    axes, s = palm_frame(j, handedness)
    X, Y, Z = axes[:, 0], axes[:, 1], axes[:, 2]
    w = j[0]
    sr = s * radius_scale
    palm_albedo = np.clip(skin * _PALM_TINT, 0.0, 1.0)
    pad_albedo = np.clip(skin * _PAD_TINT, 0.0, 1.0)

    # ---- fingers: 4 capsules per chain (two bones, the distal bone as two swelling into the pad)
    J = j[_CHAINS]  # (5, 4, 3)
    bone = J[:, 1:] - J[:, :-1]
    blen = _norm(bone)
    d = np.where(blen > 1e-6, bone / np.where(blen > 0, blen, 1.0), Y)  # (5, 3, 3)
    across = _orth_unit(X, d, Y)
    volar = sign * _cross(across, d)
    volar[0] = _orth_unit(_unit(0.8 * Z - 0.6 * X), d[0], Z)  # thumb: the pad faces ulnar-volar
    across[0] = sign * _cross(d[0], volar[0])
    radii = np.array([RADII[name] for name in _FINGER_NAMES]) * sr  # (5, 4)
    end = J[:, 3] - (TIP_INSET * radii[:, 3])[:, None] * d[:, 2]
    pad = J[:, 2] + PAD_AT * (end - J[:, 2])
    r_pad = PAD_SWELL * np.maximum(radii[:, 2], radii[:, 3])
    f_a = np.stack([J[:, 0], J[:, 1], J[:, 2], pad], axis=1).reshape(-1, 3)
    f_b = np.stack([J[:, 1], J[:, 2], pad, end], axis=1).reshape(-1, 3)
    f_ra = np.stack([radii[:, 0], radii[:, 1], radii[:, 2], r_pad], axis=1).ravel()
    f_rb = np.stack([radii[:, 1], radii[:, 2], r_pad, radii[:, 3]], axis=1).ravel()
    f_volar = np.stack([volar[:, 0], volar[:, 1], volar[:, 2], volar[:, 2]], axis=1).reshape(-1, 3)
    f_part = (10 + 3 * np.arange(5)[:, None] + np.array([0, 1, 2, 2])[None]).ravel()
    f_albedo = np.tile(np.stack([palm_albedo, palm_albedo, pad_albedo, pad_albedo]), (5, 1))
    f_nail = np.tile(np.array([[0.0, 0.0], [0.0, 0.0], [NAIL_START / PAD_AT, 5.0],
                               [-5.0, (NAIL_END - PAD_AT) / (1.0 - PAD_AT)]]), (5, 1))

    # ---- palm, thenar / hypothenar, web, forearm, sleeve (palm-frame offsets in reference mm)
    mcp = j[[5, 9, 13, 17]]
    cmc, tmcp = j[1], j[2]
    S = s * axes  # reference-mm palm-frame offset -> mm

    def at(x: float, y: float, z: float) -> np.ndarray:
        return w + S @ np.array([x, y, z])

    rows: list[tuple] = []  # (a, b, ra, rb, volar reference, flatten, part, albedo)
    base = w + _METACARPAL_BASE_AT * (mcp - w) + (s * _METACARPAL_BASE_DX)[:, None] * X
    heads = mcp - _KNUCKLE_DORSAL * s * Z
    for k in range(4):  # metacarpals inside the slab, their heads (the knuckles) dorsal of the MCPs
        rows.append((base[k], base[k] + 0.85 * (heads[k] - base[k]), 7.0 * sr, 8.0 * sr, Z, 1.0, PART_PALM,
                     palm_albedo))
        rows.append((heads[k], heads[k], radii[k + 1, 0], radii[k + 1, 0], Z, 1.0, PART_PALM, palm_albedo))
    for k in range(1, 4):  # webs between the fingers, across their proximal phalanges
        pa = J[k, 0] + _WEB_AT * (J[k, 1] - J[k, 0]) + 0.35 * radii[k, 0] * volar[k, 0]
        pb = J[k + 1, 0] + _WEB_AT * (J[k + 1, 1] - J[k + 1, 0]) + 0.35 * radii[k + 1, 0] * volar[k + 1, 0]
        rows.append((pa, pb, 0.5 * radii[k, 0], 0.5 * radii[k + 1, 0], volar[k, 0] + volar[k + 1, 0], 0.8,
                     PART_WEB, palm_albedo))
    rows.append((at(14.0, 6.0, 3.0), cmc + 0.55 * (tmcp - cmc) + S @ np.array([-5.0, 0.0, -3.0]),
                 15.0 * sr, 11.0 * sr, Z, 0.75, PART_THENAR, palm_albedo))
    rows.append((at(-26.0, 2.0, 2.0), mcp[3] + S @ np.array([-1.0, -14.0, 0.0]), 13.0 * sr, 10.5 * sr, Z,
                 0.75, PART_HYPOTHENAR, palm_albedo))
    web_a = cmc + 0.75 * (tmcp - cmc)
    web_b = w + 0.62 * (mcp[0] - w)
    web_n = sign * _cross(web_a - w, web_b - w)
    web_n = web_n if web_n @ Z >= 0 else -web_n
    rows.append((web_a, web_b, 8.0 * sr, 9.0 * sr, web_n, 0.55, PART_WEB, palm_albedo))
    if forearm_mm > 0:
        far = -25.0 - forearm_mm / s
        rows.append((at(2.0, -25.0, -3.0), at(2.0, far, -6.0), 25.0 * sr, 31.0 * sr, Z, 0.62, PART_FOREARM,
                     skin))
        if sleeve_albedo is not None and forearm_mm > 90.0:
            rows.append((at(2.0, -95.0, -4.0), at(2.0, far - 60.0, -6.0), 32.0 * sr, 36.0 * sr, Z, 0.72,
                         PART_SLEEVE, np.asarray(sleeve_albedo, dtype=np.float64)))
    cols = list(zip(*rows))
    n_other = len(rows)
    cap_a = np.concatenate([f_a, np.array(cols[0])])
    cap_b = np.concatenate([f_b, np.array(cols[1])])
    axis = _unit(cap_b - cap_a)
    ref = np.concatenate([f_volar, np.array(cols[4])])
    cap_volar = _orth_unit(ref, axis, np.where(np.abs(axis @ Y)[:, None] < 0.9, Y, X))

    # ---- the palm: a rounded slab from the heel to just past the MCP row, sheared along the row
    mcp_l = (mcp - w) @ axes / s  # palm-frame coordinates of the MCPs in reference mm
    ulnar, radial = mcp_l[3, 0] - 9.0, mcp_l[0, 0] + 10.0
    shear = (mcp_l[0, 1] - mcp_l[3, 1]) / max(mcp_l[0, 0] - mcp_l[3, 0], 1e-6)
    xc = 0.5 * (ulnar + radial)
    top = mcp_l[3, 1] + shear * (xc - mcp_l[3, 0]) + _PALM_BEYOND_MCP
    yc = 0.5 * (top + _PALM_HEEL_Y)
    zc = 0.3 * mcp_l[:, 2].mean()
    r_in = _PALM_ROUNDING
    slab_half = np.maximum([[0.5 * (radial - ulnar) - r_in, 0.5 * (top - _PALM_HEEL_Y) - r_in]], 1.0)
    slab_axes = (s * np.stack([X + shear * Y, Y, (_PALM_HALF_THICKNESS * radius_scale / r_in) * Z], axis=1))[None]

    prims = Primitives(
        cap_a=cap_a, cap_b=cap_b,
        cap_ra=np.concatenate([f_ra, np.array(cols[2], dtype=np.float64)]),
        cap_rb=np.concatenate([f_rb, np.array(cols[3], dtype=np.float64)]),
        cap_volar=cap_volar,
        cap_flatten=np.concatenate([np.full(20, FINGER_FLATTEN), np.array(cols[5], dtype=np.float64)]),
        cap_part=np.concatenate([f_part, np.array(cols[6])]).astype(np.int32),
        cap_albedo=np.concatenate([f_albedo, np.array(cols[7], dtype=np.float64)]),
        cap_nail=np.concatenate([f_nail, np.zeros((n_other, 2))]),
        ell_centre=np.zeros((0, 3)), ell_axes=np.zeros((0, 3, 3)), ell_volar=np.zeros((0, 3)),
        ell_part=np.zeros(0, np.int32), ell_albedo=np.zeros((0, 3)),
        slab_centre=at(xc, yc, zc)[None], slab_axes=slab_axes, slab_half=slab_half,
        slab_radius=np.array([r_in]), slab_volar=Z[None].copy(), slab_part=np.array([PART_PALM], np.int32),
        slab_albedo=palm_albedo[None].copy(),
        crease_p0=np.zeros((0, 3)), crease_p1=np.zeros((0, 3)), crease_width=np.zeros(0),
        crease_group=np.zeros(0, np.int32), joints=j.copy(), joint_radius=_joint_radius(radii, r_pad, s, sr),
        handedness=handedness,
    )
    return _with_creases(prims, J, volar, across, axes, s)


def _joint_radius(radii: np.ndarray, r_pad: np.ndarray, s: float, sr: float) -> np.ndarray:
    """``(21,)`` local skin radius of each joint (see :attr:`Primitives.joint_radius`)."""
    out = np.empty(NUM_JOINTS)
    out[0] = 20.0 * sr  # the wrist, under the forearm's and the palm's skin
    for f, chain in enumerate(_CHAINS):
        out[chain[1:]] = radii[f, 1:]
        out[chain[2]] = max(radii[f, 2], r_pad[f])
        out[chain[3]] = r_pad[f] + TIP_INSET * radii[f, 3]  # the tip joint sits in the end cap
        if f == 0:
            out[chain[0]] = 18.0 * sr  # thumb CMC: under the thenar
        else:  # MCP: under the palm (volar) or the knuckle (dorsal)
            out[chain[0]] = max(_PALM_HALF_THICKNESS * sr, radii[f, 0] + _KNUCKLE_DORSAL * s)
    return out


#: Finger flexion creases: angles (rad) around the joint from the volar direction towards ``across``.
_CREASE_THETA = np.linspace(-1.15, 1.15, 7)
#: Knuckle wrinkles over the dorsal side of the same joints.
_WRINKLE_THETA = np.linspace(-0.8, 0.8, 5)


def _dense_palm_lines() -> list[np.ndarray]:
    out = []
    for line in PALM_LINES:
        pts = np.array(line)
        u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        t = np.linspace(0.0, u[-1], int(u[-1] // 4) + 2)
        out.append(np.stack([np.interp(t, u, pts[:, 0]), np.interp(t, u, pts[:, 1])], axis=1))
    return out


_PALM_LINES_DENSE = _dense_palm_lines()


def _with_creases(prims: Primitives, J: np.ndarray, volar: np.ndarray, across: np.ndarray,
                  axes: np.ndarray, s: float) -> Primitives:
    """Add skin creases, placed on the skin by casting rays at the surface itself: the palm lines,
    a flexion crease over the volar side of each chain's two distal joints and two knuckle wrinkles
    over their dorsal side. Each arc or line is a polyline of segments."""
    geom = _geometry(prims)[:7]
    part = np.concatenate([prims.cap_part, prims.ell_part, prims.slab_part])
    prim_group = _CREASE_GROUP[part]
    v = _unit(volar[:, :2] + volar[:, 1:])  # (5, 2, 3) at joints 1, 2
    a = _unit(_orth(across[:, :2] + across[:, 1:], v))
    d = _unit(J[:, 2:] - J[:, :2])  # a direction along the finger at joints 1, 2
    group = np.broadcast_to((10 + np.arange(5))[:, None], (5, 2))
    # arcs: (centres (A, 3), around-axis (A, 3), across (A, 3), angles (T,), group (A,), half width)
    arcs = [(J[:, 1:3], v, a, _CREASE_THETA, group, CREASE_HALF_WIDTH_MM)]
    for off in (-1.8, 1.8):
        arcs.append((J[:, 1:3] + off * s * d, -v, a, _WRINKLE_THETA, group, 0.7 * CREASE_HALF_WIDTH_MM))
    origins, dirs, groups, starts, widths = [], [], [], [], []
    for centre, up, side, theta, grp, hw in arcs:
        c3, u3, s3 = centre.reshape(-1, 3), up.reshape(-1, 3), side.reshape(-1, 3)
        dd = np.cos(theta)[None, :, None] * u3[:, None] + np.sin(theta)[None, :, None] * s3[:, None]
        origins.append((c3[:, None] + 60.0 * s * dd).reshape(-1, 3))
        dirs.append(-dd.reshape(-1, 3))
        groups.append(np.repeat(np.ravel(grp), len(theta)))
        st = np.zeros((len(c3), len(theta)), bool)
        st[:, 0] = True
        starts.append(st.ravel())
        widths.append(np.full(st.size, hw))
    # palm lines, cast along -Z onto the palm
    X, Y, Z = axes[:, 0], axes[:, 1], axes[:, 2]
    for line in _PALM_LINES_DENSE:
        origins.append(prims.joints[0] + s * (line[:, :1] * X + line[:, 1:] * Y + 60.0 * Z))
        dirs.append(np.broadcast_to(-Z, (len(line), 3)))
        groups.append(np.zeros(len(line), np.int64))
        st = np.zeros(len(line), bool)
        st[0] = True
        starts.append(st)
        widths.append(np.full(len(line), CREASE_HALF_WIDTH_MM))
    origins_a = np.concatenate(origins)
    dirs_a = np.ascontiguousarray(np.concatenate(dirs))
    ray_group = np.concatenate(groups).astype(np.int32)
    starts_a = np.concatenate(starts)
    t, _ = cast_rays(*geom, origins_a, dirs_a, prim_group, ray_group, 0.0)
    ok = np.isfinite(t)
    pts = origins_a + np.where(ok, t, 0.0)[:, None] * dirs_a
    seg = ok[1:] & ok[:-1] & ~starts_a[1:]
    return Primitives(**{**prims.__dict__,
                         "crease_p0": pts[:-1][seg], "crease_p1": pts[1:][seg],
                         "crease_width": np.concatenate(widths)[1:][seg] * s,
                         "crease_group": ray_group[1:][seg]})


# --------------------------------------------------------------------------------------------------
# Moving and packing
# --------------------------------------------------------------------------------------------------


def transform(prims: Primitives, R: np.ndarray, t: np.ndarray) -> Primitives:
    """The surface moved rigidly: ``X' = R @ X + t`` (e.g. world -> camera extrinsics).

    Raises:
        ValueError: when ``R`` is not a rotation (a reflection would turn a right hand into a left one).
    """
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if R.shape != (3, 3) or t.shape != (3,):
        raise ValueError(f"need R (3, 3) and t (3,), got {R.shape} and {t.shape}")
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-6) and np.linalg.det(R) > 0):
        raise ValueError("R must be a rotation matrix (orthonormal, det +1)")

    p = Extrinsics(R, t).to_camera  # points move

    def v(x: np.ndarray) -> np.ndarray:  # directions only turn
        return x @ R.T

    return Primitives(
        cap_a=p(prims.cap_a), cap_b=p(prims.cap_b), cap_ra=prims.cap_ra, cap_rb=prims.cap_rb,
        cap_volar=v(prims.cap_volar), cap_flatten=prims.cap_flatten, cap_part=prims.cap_part,
        cap_albedo=prims.cap_albedo, cap_nail=prims.cap_nail,
        ell_centre=p(prims.ell_centre), ell_axes=np.einsum("ij,njk->nik", R, prims.ell_axes),
        ell_volar=v(prims.ell_volar), ell_part=prims.ell_part, ell_albedo=prims.ell_albedo,
        slab_centre=p(prims.slab_centre), slab_axes=np.einsum("ij,njk->nik", R, prims.slab_axes),
        slab_half=prims.slab_half, slab_radius=prims.slab_radius, slab_volar=v(prims.slab_volar),
        slab_part=prims.slab_part, slab_albedo=prims.slab_albedo,
        crease_p0=p(prims.crease_p0), crease_p1=p(prims.crease_p1), crease_width=prims.crease_width,
        crease_group=prims.crease_group, joints=p(prims.joints), joint_radius=prims.joint_radius,
        handedness=prims.handedness,
    )


_SHADOW_GROUP = np.array([shadow_group(p) for p in range(25)], np.int32)
_CREASE_GROUP = np.array([crease_group(p) for p in range(25)], np.int32)


def _geometry(sf: Primitives) -> tuple[np.ndarray, ...]:
    """``(minv, org, la, lb, ra, rb, kind, bound_a, bound_b, bound_r, volar)`` of one surface
    (capsules, then ellipsoids, then slabs)."""
    # capsules: org = a, M = I + (f - 1) v v^T, local round cone from 0 to b - a
    a, b = sf.cap_a, sf.cap_b
    axis = b - a
    length = _norm(axis)[:, 0]
    v = _unit(_orth(sf.cap_volar, axis / np.where(length > 0, length, 1.0)[:, None]))
    f = sf.cap_flatten
    m = len(a)
    mi_c = np.eye(3)[None] + ((1.0 / f - 1.0)[:, None, None] * v[:, :, None] * v[:, None, :])
    la_c = np.zeros((m, 3))
    lb_c = axis.copy()
    ra_c, rb_c = sf.cap_ra.astype(np.float64), sf.cap_rb.astype(np.float64)
    nested = length <= np.abs(ra_c - rb_c)  # one sphere holds the other: keep the larger
    if nested.any():
        ra_c, rb_c = ra_c.copy(), rb_c.copy()
        big_b = rb_c > ra_c
        la_c[nested & big_b] = axis[nested & big_b]
        lb_c[nested & ~big_b] = 0.0
        r = np.maximum(ra_c, rb_c)
        ra_c[nested], rb_c[nested] = r[nested], r[nested]
    # ellipsoids: unit sphere under M = U (orthogonal columns) -> minv = diag(1/|u|^2) U^T; bounded
    # by the capsule along the longest axis with the middle semi-axis as radius
    e = len(sf.ell_centre)
    u = sf.ell_axes
    lens = np.sqrt((u * u).sum(axis=1))  # (E, 3) semi-axis lengths
    mi_e = np.transpose(u, (0, 2, 1)) / (lens**2)[:, :, None]
    order = np.argsort(-lens, axis=1)
    longest = np.take_along_axis(lens, order[:, :1], 1)[:, 0]
    middle = np.take_along_axis(lens, order[:, 1:2], 1)[:, 0]
    ulong = np.take_along_axis(u, order[:, None, :1], 2)[:, :, 0] / longest[:, None]
    half = (longest - middle)[:, None] * ulong
    # slabs: M = slab_axes; bounded by the capsule along the longer local axis, radius
    # (shorter half size + r) times the largest stretch of M
    n_s = len(sf.slab_centre)
    A = sf.slab_axes
    mi_s = np.linalg.inv(A) if n_s else np.zeros((0, 3, 3))
    hx, hy = sf.slab_half[:, 0], sf.slab_half[:, 1]
    stretch = np.linalg.norm(A, ord=2, axis=(1, 2)) if n_s else np.zeros(0)
    along = np.where((hx >= hy)[:, None], A[:, :, 0] * hx[:, None], A[:, :, 1] * hy[:, None])
    s_r = (np.minimum(hx, hy) + sf.slab_radius) * stretch
    la_s = np.stack([hx, hy, np.zeros(n_s)], axis=1)
    return (np.concatenate([mi_c, mi_e, mi_s]), np.concatenate([a, sf.ell_centre, sf.slab_centre]),
            np.concatenate([la_c, np.zeros((e, 3)), la_s]),
            np.concatenate([lb_c, np.zeros((e, 3)), np.zeros((n_s, 3))]),
            np.concatenate([ra_c, np.ones(e), sf.slab_radius]), np.concatenate([rb_c, np.ones(e), sf.slab_radius]),
            np.concatenate([np.full(m + e, KIND_CONE, np.int8), np.full(n_s, KIND_SLAB, np.int8)]),
            np.concatenate([a, sf.ell_centre - half, sf.slab_centre - along]),
            np.concatenate([b, sf.ell_centre + half, sf.slab_centre + along]),
            np.concatenate([np.maximum(sf.cap_ra, sf.cap_rb) * np.maximum(f, 1.0), middle, s_r]),
            np.concatenate([v, sf.ell_volar, sf.slab_volar]))


def pack(surfaces: Sequence[Primitives]) -> PackedPrimitives:
    """Concatenate the primitives of hands ``0..K-1`` into the kernels' arrays.

    Shadow and crease groups are made unique per hand (``group + 100 * hand``), so different hands
    always shade each other.
    """
    cols: list[list[np.ndarray]] = [[] for _ in range(10)]
    mat, groups, hand, part, creases, cgroup = [], [], [], [], [], []
    for k, sf in enumerate(surfaces):
        *geom, v = _geometry(sf)
        for c, g in zip(cols, geom):
            c.append(g)
        m = len(sf.cap_a)
        n = sf.num_primitives
        parts = np.concatenate([sf.cap_part, sf.ell_part, sf.slab_part]).astype(np.int32)
        mt = np.zeros((n, MAT_COLS))
        mt[:, 0:3] = np.concatenate([sf.cap_albedo, sf.ell_albedo, sf.slab_albedo])
        mt[:, 3] = parts != PART_SLEEVE
        mt[:, 4:7] = v
        mt[:, 7:10] = np.concatenate([sf.cap_a, sf.ell_centre, sf.slab_centre])
        mt[:, 10:13] = np.concatenate([sf.cap_b, sf.ell_centre, sf.slab_centre])
        mt[:m, 13:15] = sf.cap_nail
        mat.append(mt)
        cg = _CREASE_GROUP[parts]
        groups.append(np.stack([_SHADOW_GROUP[parts] + 100 * k, np.where(cg >= 0, cg + 100 * k, -1)], axis=1))
        hand.append(np.full(n, k, np.int32))
        part.append(parts)
        creases.append(np.concatenate([sf.crease_p0, sf.crease_p1, sf.crease_width[:, None]], axis=1))
        cgroup.append(sf.crease_group + 100 * k)

    def cat(xs: list[np.ndarray], shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate(xs) if xs else np.zeros((0, *shape)), dtype=dtype)

    shapes = ((3, 3), (3,), (3,), (3,), (), (), (), (3,), (3,), ())
    g = [cat(c, sh) for c, sh in zip(cols, shapes)]
    return PackedPrimitives(
        minv=g[0], org=g[1], la=g[2], lb=g[3], ra=g[4], rb=g[5], kind=g[6].astype(np.int8), bound_a=g[7],
        bound_b=g[8], bound_r=g[9],
        mat=cat(mat, (MAT_COLS,)), groups=cat(groups, (2,), np.int32), hand=cat(hand, (), np.int32),
        part=cat(part, (), np.int32), creases=cat(creases, (7,)), crease_group=cat(cgroup, (), np.int32),
    )
