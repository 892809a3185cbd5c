"""Render hands from their joints: registered depth, a skin-shaded RGB image, masks and joint labels.

The renderer takes only the 21 joints of each hand (world mm, :mod:`tracker.core.joints` order), builds
the skin around them (:func:`models.hand_surface.build_surface`, directly in the camera frame) and
ray-casts it with the Numba kernels of :mod:`kernels.render` from any pinhole camera:

* ``depth``: uint16 mm (0 = no reading), exact Z of the pixel-centre ray, optionally with
  sensor-like noise (``sigma_mm = a + b * (Z / 1 m)^2``), dropouts at depth edges and random holes,
  and a flat background wall;
* ``rgb``: Lambert + ambient + Blinn specular over per-part skin albedo (a pinker palm, nails, skin
  creases), contact shadows, antialiased edges, over a background image;
* ``mask``: 0 background, ``k + 1`` where hand ``k`` is seen; ``part``: the part id seen;
* ``joints_2d`` / ``joints_cam`` / ``visible``: labels, with per-joint visibility from ray casts (a
  joint is visible when the first surface on its camera ray belongs to its own hand and lies no
  more than the joint's local skin radius plus ``visibility_tol_mm`` in front of it; see
  :func:`kernels.render.joint_visibility`).

Lens distortion is not rendered: images follow the ideal pinhole of the intrinsics.

Speed: a 640x480 frame of one hand about 450 mm away takes about 5 ms on two cores (Numba kernels
compiled and cached on first use). Intermediate buffers (z-buffer, normals, creases) are kept per
thread and reused, because fresh multi-megabyte arrays cost more in page faults than the drawing;
every array returned is new, and ``render`` is safe to call from several threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

from kernels.render import (
    P_AMBIENT,
    P_COLS,
    P_CREASE,
    P_DIFFUSE,
    P_DORSAL,
    P_HALF,
    P_LIGHT,
    P_NAIL,
    P_SHADOW,
    P_SHADOW_MM,
    P_SHININESS,
    P_SPEC_CUT,
    P_SPECULAR,
    crease_map,
    depth_edges,
    finish,
    joint_visibility,
    noisy_depth,
    screen_bounds,
    shade,
    zbuffer,
)
from models.hand_surface import SLEEVE_ALBEDO, PackedPrimitives, build_surface, pack
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera

__all__ = ["RenderHand", "RenderConfig", "Rendered", "render", "make_background"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderHand:
    """One hand to draw.

    Attributes:
        joints_world: ``(21, 3)`` joint centres, world mm, MediaPipe order.
        handedness: "left" or "right" (anatomical).
        skin_albedo: RGB albedo in [0, 1] of the back of the hand; None = a default light skin.
        radius_scale: multiplies all skin radii (1 = average hand of this size).
        forearm_mm: forearm length drawn proximally of the wrist (0 = none).
        sleeve_albedo: RGB of a sleeve from 85 mm proximal of the wrist; None = bare forearm.
    """

    joints_world: np.ndarray
    handedness: Literal["left", "right"]
    skin_albedo: np.ndarray | None = None
    radius_scale: float = 1.0
    forearm_mm: float = 250.0
    sleeve_albedo: tuple[float, float, float] | None = SLEEVE_ALBEDO


@dataclass(frozen=True)
class RenderConfig:
    """How to render.

    Attributes:
        supersample: 1 renders one ray per pixel and antialiases edge pixels with
            ``edge_samples x edge_samples`` sub-pixel rays (fast); ``s > 1`` shades an ``s`` times
            larger image and averages it down (slower, smoother). Depth, mask and labels always come
            from the pixel-centre rays.
        edge_samples: sub-pixel rays per axis on edge pixels when ``supersample == 1`` (<= 1: off).
        light_dir: direction towards the light, camera frame (normalised here).
        ambient, diffuse, specular, shininess: the shading model (``shininess``: integer Blinn
            exponent).
        dorsal_tint: albedo multiplier on the back of the hand (the palm side is paler).
        nail_albedo: RGB of the nails.
        crease_strength: darkening in the middle of skin creases (0 = none).
        contact_shadow: strength of contact shadows where a part meets a nearer one (0 = none).
        shadow_jump_mm: a neighbour this much nearer casts a contact shadow.
        blur_sigma: Gaussian blur (px) of the RGB image around the hands, like a camera's optics.
        rgb_noise: standard deviation of Gaussian RGB noise in 8-bit levels (needs ``rng``).
        depth_noise_a_mm, depth_noise_b_per_m2: depth noise ``sigma_mm = a + b * (Z / 1000 mm)^2``.
        edge_dropout: probability that a pixel near a depth jump reads 0.
        edge_jump_mm: a jump larger than this between neighbours is a depth edge.
        edge_radius_px: pixels within this distance of a depth edge may drop out.
        hole_prob: probability that any pixel reads 0.
        background_depth_mm: depth of a wall behind the hands (mm), or None for no reading there.
        depth_range_mm: readings outside ``[near, far]`` mm become 0.
        visibility_tol_mm: how much further than the joint's local skin radius
            (:attr:`models.hand_surface.Primitives.joint_radius`) in front of it the first surface on
            its camera ray may be before the joint counts as hidden.
    """

    supersample: int = 1
    edge_samples: int = 2
    light_dir: tuple[float, float, float] = (-0.35, -0.55, -1.0)
    ambient: float = 0.42
    diffuse: float = 0.62
    specular: float = 0.07
    shininess: int = 24
    dorsal_tint: tuple[float, float, float] = (0.93, 0.85, 0.8)
    nail_albedo: tuple[float, float, float] = (0.9, 0.72, 0.68)
    crease_strength: float = 0.28
    contact_shadow: float = 1.0
    shadow_jump_mm: float = 3.0
    blur_sigma: float = 0.0
    rgb_noise: float = 0.0
    depth_noise_a_mm: float = 0.0
    depth_noise_b_per_m2: float = 0.0
    edge_dropout: float = 0.0
    edge_jump_mm: float = 15.0
    edge_radius_px: int = 1
    hole_prob: float = 0.0
    background_depth_mm: float | None = None
    depth_range_mm: tuple[float, float] = (0.0, 65535.0)
    visibility_tol_mm: float = 5.0

    def __post_init__(self) -> None:
        if int(self.supersample) != self.supersample or self.supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {self.supersample}")
        for name in ("edge_dropout", "hole_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if np.linalg.norm(self.light_dir) == 0:
            raise ValueError("light_dir must be non-zero")
        if int(self.shininess) != self.shininess or self.shininess < 1:
            raise ValueError(f"shininess must be a positive integer, got {self.shininess}")

    @property
    def noisy(self) -> bool:
        """True when rendering draws random numbers (and so needs an ``rng``)."""
        return (self.depth_noise_a_mm > 0 or self.depth_noise_b_per_m2 > 0 or self.edge_dropout > 0
                or self.hole_prob > 0 or self.rgb_noise > 0)


@dataclass(frozen=True)
class Rendered:
    """What :func:`render` draws, for a camera image of ``H x W`` pixels and ``K`` hands.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` uint16 mm registered to ``rgb``; 0 = no reading.
        mask: ``(H, W)`` uint8, 0 = background, ``k + 1`` = hand ``k``.
        part: ``(H, W)`` int16 part id seen (:mod:`models.hand_surface`), -1 = background.
        joints_2d: ``(K, 21, 2)`` float64 px (``u = fx X / Z + cx``); NaN for joints behind the camera.
        joints_cam: ``(K, 21, 3)`` float64 mm, camera frame.
        visible: ``(K, 21)`` bool, the joint's own skin is what the camera sees at its pixel.
    """

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    part: np.ndarray
    joints_2d: np.ndarray
    joints_cam: np.ndarray
    visible: np.ndarray


def _shading_params(cfg: RenderConfig) -> np.ndarray:
    p = np.zeros(P_COLS)
    light = np.asarray(cfg.light_dir, dtype=np.float64)
    p[P_LIGHT:P_LIGHT + 3] = light / np.linalg.norm(light)
    p[P_AMBIENT], p[P_DIFFUSE] = cfg.ambient, cfg.diffuse
    p[P_SPECULAR], p[P_SHININESS] = cfg.specular, cfg.shininess
    p[P_DORSAL:P_DORSAL + 3] = cfg.dorsal_tint
    p[P_NAIL:P_NAIL + 3] = cfg.nail_albedo
    p[P_CREASE] = cfg.crease_strength
    p[P_SHADOW] = cfg.contact_shadow
    p[P_SHADOW_MM] = cfg.shadow_jump_mm
    p[P_SPEC_CUT] = 1e-3 ** (1.0 / cfg.shininess)  # drop specular terms below 1e-3
    half = p[P_LIGHT:P_LIGHT + 3] + np.array([0.0, 0.0, -1.0])
    p[P_HALF:P_HALF + 3] = half / max(float(np.linalg.norm(half)), 1e-12)
    return p


_scratch = threading.local()


def _buffers(w: int, h: int) -> tuple[np.ndarray, ...]:
    """Per-thread scratch ``(depth, prim, normal, span, crease)`` for an image of ``w x h``.

    Reused from call to call: fresh multi-megabyte arrays cost more in page faults than the
    rendering itself. Only intermediates live here; every returned array is new.
    """
    key = (w, h)
    cache = getattr(_scratch, "buffers", None)
    if cache is None:
        cache = _scratch.buffers = {}
    if key not in cache:
        if len(cache) >= 4:
            cache.clear()
        cache[key] = (np.empty((h, w), np.float32), np.empty((h, w), np.int32), np.empty((h, w, 3), np.float32),
                      np.empty((h, 2), np.int32), np.empty((h, w), np.float32))
    return cache[key]


def _raycast(pk: PackedPrimitives, fx: float, fy: float, cx: float, cy: float, w: int, h: int):
    bounds = screen_bounds(pk.bound_a, pk.bound_b, pk.bound_r, fx, fy, cx, cy, w, h)
    depth, prim, normal, span, crease = _buffers(w, h)
    zbuffer(*pk.geometry, bounds, fx, fy, cx, cy, depth, prim, normal, span)
    return depth, prim, normal, span, crease


def _shade(pk: PackedPrimitives, zb, params: np.ndarray, fx: float, fy: float, cx: float, cy: float,
           background: np.ndarray, aa: int, shadow_step: int) -> np.ndarray:
    depth, prim, normal, span, crease = zb
    crease_map(pk.creases, pk.crease_group, depth, prim, span, pk.groups, fx, fy, cx, cy, crease)
    out = background.copy()
    shade(depth, prim, normal, span, crease, *pk.geometry, pk.mat, pk.groups, params, fx, fy, cx, cy,
          background, out, aa, shadow_step)
    return out


def render(camera: Camera, hands: Sequence[RenderHand], config: RenderConfig = RenderConfig(),
           rng: np.random.Generator | None = None, background_rgb: np.ndarray | None = None) -> Rendered:
    """Render ``hands`` as seen by ``camera``.

    Args:
        camera: intrinsics (pinhole; distortion is ignored) and extrinsics (world -> camera,
            ``X_cam = R @ X_world + t``, mm).
        hands: the hands to draw (may be empty).
        config: rendering options.
        rng: random generator for depth / RGB noise; required when ``config.noisy``.
        background_rgb: ``(H, W, 3)`` uint8 image behind the hands (e.g. :func:`make_background`);
            None = plain grey.

    Returns:
        The :class:`Rendered` images and labels. Same inputs and the same ``rng`` state give
        identical outputs.

    Raises:
        ValueError: on bad shapes or a noisy config without ``rng``.
    """
    intr = camera.intrinsics
    w, h = int(intr.width), int(intr.height)
    if config.noisy and rng is None:
        raise ValueError("this RenderConfig adds noise: pass rng=np.random.default_rng(seed)")
    if any(intr.dist):
        log.debug("render: lens distortion %s is ignored (ideal pinhole)", intr.dist)
    if background_rgb is None:
        background = np.full((h, w, 3), 150, np.uint8)
    else:
        background = np.ascontiguousarray(background_rgb)
        if background.shape != (h, w, 3) or background.dtype != np.uint8:
            raise ValueError(f"background_rgb must be uint8 ({h}, {w}, 3), "
                             f"got {background.dtype} {background.shape}")

    k = len(hands)
    joints_cam = np.zeros((k, NUM_JOINTS, 3))
    surfaces = []
    for n, hand in enumerate(hands):
        jw = np.asarray(hand.joints_world, dtype=np.float64)
        if jw.shape != (NUM_JOINTS, 3):
            raise ValueError(f"hand {n}: joints_world must be ({NUM_JOINTS}, 3), got {jw.shape}")
        joints_cam[n] = camera.world_to_camera(jw)
        surfaces.append(build_surface(joints_cam[n], hand.handedness, hand.radius_scale,
                                      skin_albedo=hand.skin_albedo, forearm_mm=hand.forearm_mm,
                                      sleeve_albedo=hand.sleeve_albedo))
    pk = pack(surfaces)
    fx, fy, cx, cy = float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy)

    zb = _raycast(pk, fx, fy, cx, cy, w, h)
    zf, prim = zb[0], zb[1]
    near, far = config.depth_range_mm
    bg_mm = np.nan if config.background_depth_mm is None else float(config.background_depth_mm)
    depth, mask, part = finish(zf, prim, pk.hand, pk.part, bg_mm, float(near), float(far))
    seen = mask > 0

    # ---- RGB ----------------------------------------------------------------------------------
    params = _shading_params(config)
    ss = int(config.supersample)
    if ss == 1:
        rgb = _shade(pk, zb, params, fx, fy, cx, cy, background, int(config.edge_samples), 1)
    else:
        zbs = _raycast(pk, fx * ss, fy * ss, cx * ss, cy * ss, w * ss, h * ss)
        big = np.repeat(np.repeat(background, ss, axis=0), ss, axis=1)
        out = _shade(pk, zbs, params, fx * ss, fy * ss, cx * ss, cy * ss, big, 1, ss)
        rgb = (out.reshape(h, ss, w, ss, 3).astype(np.float32).mean(axis=(1, 3)) + 0.5).astype(np.uint8)
    if config.blur_sigma > 0 and seen.any():
        rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
        m = int(np.ceil(4 * config.blur_sigma)) + 2
        box = (slice(max(rows[0] - m, 0), rows[-1] + m + 1), slice(max(cols[0] - m, 0), cols[-1] + m + 1))
        rgb[box] = cv2.GaussianBlur(rgb[box], (0, 0), config.blur_sigma)
    if config.rgb_noise > 0:
        noise = rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(config.rgb_noise)
        rgb = np.clip(rgb.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)

    # ---- depth noise ----------------------------------------------------------------------------
    if config.depth_noise_a_mm > 0 or config.depth_noise_b_per_m2 > 0 or config.edge_dropout > 0 \
            or config.hole_prob > 0:
        none = np.zeros((0, 0), np.float32)
        normal01 = none
        if config.depth_noise_a_mm > 0 or config.depth_noise_b_per_m2 > 0:
            normal01 = rng.standard_normal((h, w), dtype=np.float32)
        edges, edge_u = np.zeros((0, 0), bool), none
        if config.edge_dropout > 0:
            wall = np.float32(np.inf if config.background_depth_mm is None else config.background_depth_mm)
            edges = depth_edges(np.where(seen, zf, wall), float(config.edge_jump_mm), int(config.edge_radius_px))
            edge_u = rng.random((h, w), dtype=np.float32)
        hole_u = rng.random((h, w), dtype=np.float32) if config.hole_prob > 0 else none
        depth = noisy_depth(zf, prim, bg_mm, float(config.depth_noise_a_mm), float(config.depth_noise_b_per_m2),
                            normal01, edges, edge_u, float(config.edge_dropout), hole_u, float(config.hole_prob),
                            float(near), float(far))

    # ---- labels -------------------------------------------------------------------------------
    radius = np.array([sf.joint_radius for sf in surfaces]).reshape(k, NUM_JOINTS)
    joints_2d, visible = joint_visibility(*pk.geometry, pk.hand, joints_cam, radius, mask, fx, fy, cx, cy,
                                          float(config.visibility_tol_mm))
    return Rendered(rgb=rgb, depth=depth, mask=mask, part=part, joints_2d=joints_2d, joints_cam=joints_cam,
                    visible=visible)


def make_background(width: int, height: int, rng: np.random.Generator, clutter: int = 3) -> np.ndarray:
    """A plausible, softly textured backdrop: a two-colour gradient in a random direction, a few
    soft-edged blocks (furniture, doors, posters) and low-frequency noise.

    Args:
        width, height: image size in pixels.
        rng: random generator (the image is a function of its state).
        clutter: how many soft blocks at most.

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    def colour() -> np.ndarray:
        hue = rng.uniform(0.0, 2.0 * np.pi)
        lum = rng.uniform(0.3, 0.85)
        sat = rng.uniform(0.0, 0.12)
        return np.clip(lum + sat * np.cos(hue + np.array([0.0, 2.094, 4.189])), 0.0, 1.0)

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ang = rng.uniform(0.0, 2.0 * np.pi)
    g = (np.cos(ang) * xx / width + np.sin(ang) * yy / height)
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    c0, c1 = colour(), colour()
    img = c0 + (c1 - c0) * g[..., None]
    for _ in range(int(rng.integers(0, clutter + 1))):
        x0, x1 = np.sort(rng.uniform(-0.2, 1.2, 2)) * width
        y0, y1 = np.sort(rng.uniform(-0.2, 1.2, 2)) * height
        soft = rng.uniform(2.0, 12.0)
        a = (np.clip((xx - x0) / soft, 0, 1) * np.clip((x1 - xx) / soft, 0, 1)
             * np.clip((yy - y0) / soft, 0, 1) * np.clip((y1 - yy) / soft, 0, 1))
        img = img + (colour() - img) * (rng.uniform(0.3, 0.9) * a)[..., None]
    coarse = cv2.resize(rng.standard_normal((12, 16)).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.standard_normal((60, 80)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    img = img + (rng.uniform(0.01, 0.04) * coarse + 0.008 * fine)[..., None]
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
