"""The synthetic data engine: random hands, motions and cameras, rendered with ground truth.

A :class:`Scene` is drawn from a seed: one or two hands (handedness, shape, skin tone, a
:class:`models.motion.Motion`), and one camera (single-view RGB-D) or N cameras in a rig layout
(``desk``: an arc in front of and above the hands; ``ring``: a circle around them). Any frame of
any view can then be rendered on demand (:func:`render_view`, :func:`render_frameset`), with
sensor noise drawn from a generator seeded by ``(seed, frame, view)``, so frames can be produced
in any order, in parallel, and bit-identically again.

Frames and units: the **scene/world frame** is OpenCV-like (x right, y down = gravity, z
forward), millimetres. Single-view scenes use the camera frame as the world frame (identity
extrinsics). Rig scenes put the hands around the world origin. Cameras are
:class:`tracker.core.structures.Camera` (extrinsics world -> camera).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import torch

from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, GroundTruth, Intrinsics

from models.hand_model import SHAPE_DIM, SHAPE_LIMITS, SHAPE_PRIOR_SIGMA, forward_kinematics, matrix_to_rotvec
from models.motion import ACTIONS, Motion, MotionConfig, sample_motion
from models.render import RenderConfig, Rendered, RenderHand, make_background, render

__all__ = [
    "Layout",
    "SKIN_TONES",
    "SceneConfig",
    "HandTrack",
    "Scene",
    "look_at",
    "rig_cameras",
    "sample_scene",
    "render_view",
    "render_frame",
    "render_frameset",
    "frame_rng",
    "SENSOR_LIKE",
]

Layout = Literal["single", "desk", "ring"]

#: Skin albedos (linear RGB in [0, 1]) from light to dark; a hand's tone is drawn between two
#: neighbours.
SKIN_TONES: Final[tuple[tuple[float, float, float], ...]] = (
    (0.92, 0.72, 0.62), (0.89, 0.65, 0.55), (0.80, 0.57, 0.45), (0.66, 0.45, 0.33), (0.48, 0.32, 0.23),
)  # fmt: skip

#: Render settings of a structured-light / stereo depth camera like a RealSense D4xx at arm's
#: length: depth noise 1 mm + 2 mm per m^2 of range, dropouts at depth edges and a few random
#: holes, a wall 0.9-1.5 m away is NOT added (set ``background_depth_mm``), mild optics blur and
#: RGB sensor noise.
SENSOR_LIKE: Final = RenderConfig(depth_noise_a_mm=1.0, depth_noise_b_per_m2=2.0, edge_dropout=0.35,
                                  hole_prob=0.004, blur_sigma=0.5, rgb_noise=2.0)

#: Hand-local point the single-view placement centres in the image (mid-palm of the average hand).
_HAND_CENTRE_LOCAL: Final = np.array([0.0, 65.0, 0.0])
#: Hand-local -> camera rotation of a hand held up, palm towards the camera, fingers up.
_PALM_TO_CAMERA: Final = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class SceneConfig:
    """What :func:`sample_scene` draws.

    Attributes:
        num_frames: frames in the sequence.
        layout: ``single`` (one RGB-D camera), ``desk`` or ``ring`` (a rig of ``num_views``).
        num_views: cameras of a rig layout (ignored for ``single``).
        width, height: image size in pixels.
        hfov_deg: range of the horizontal field of view drawn per camera (deg).
        distance_mm: single view: range of the camera -> mid-palm distance; rigs: camera radius.
        num_hands: 1 or 2 (the second hand has the other handedness).
        left_probability: chance that the (first) hand is a left hand.
        actions: actions to draw from.
        back_probability: single view: chance the back of the hand faces the camera.
        motion: motion settings (frame rate included).
    """

    num_frames: int = 60
    layout: Layout = "single"
    num_views: int = 4
    width: int = 640
    height: int = 480
    hfov_deg: tuple[float, float] = (55.0, 75.0)
    distance_mm: tuple[float, float] = (350.0, 700.0)
    num_hands: int = 1
    left_probability: float = 0.5
    actions: tuple[str, ...] = ACTIONS
    back_probability: float = 0.3
    motion: MotionConfig = field(default_factory=MotionConfig)

    def __post_init__(self) -> None:
        if self.layout not in ("single", "desk", "ring"):
            raise ValueError(f"layout must be 'single', 'desk' or 'ring', got {self.layout!r}")
        if self.num_hands not in (1, 2):
            raise ValueError(f"num_hands must be 1 or 2, got {self.num_hands}")
        if self.layout != "single" and self.num_views < 2:
            raise ValueError(f"a {self.layout} rig needs num_views >= 2, got {self.num_views}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        unknown = set(self.actions) - set(ACTIONS)
        if unknown or not self.actions:
            raise ValueError(f"actions must be a non-empty subset of {ACTIONS}, got {self.actions}")


@dataclass(frozen=True)
class HandTrack:
    """One hand through a scene.

    Attributes:
        left: True for a left hand.
        shape: ``(SHAPE_DIM,)`` hand-model shape factors.
        motion: its motion (scene frame).
        skin: ``(3,)`` skin albedo, linear RGB in [0, 1].
        joints: ``(T, 21, 3)`` mm, scene frame.
    """

    left: bool
    shape: np.ndarray
    motion: Motion
    skin: np.ndarray
    joints: np.ndarray

    @property
    def handedness(self) -> Literal["left", "right"]:
        return "left" if self.left else "right"


@dataclass(frozen=True)
class Scene:
    """A drawn scene: cameras and hands over ``num_frames`` frames (see the module docstring).

    Attributes:
        seed: the seed it was drawn from.
        config: the settings it was drawn with.
        cameras: the views.
        hands: the hands.
    """

    seed: int
    config: SceneConfig
    cameras: tuple[Camera, ...]
    hands: tuple[HandTrack, ...]

    def __len__(self) -> int:
        return self.config.num_frames

    @property
    def fps(self) -> float:
        return self.config.motion.fps

    def joints_world(self, t: int) -> np.ndarray:
        """``(K, 21, 3)`` mm, all hands' joints at frame ``t`` in the scene frame."""
        return np.stack([h.joints[t] for h in self.hands])


def look_at(eye: Sequence[float], target: Sequence[float], down: Sequence[float] = (0.0, 1.0, 0.0)) -> Extrinsics:
    """Extrinsics of an OpenCV camera at ``eye`` looking at ``target`` (world mm) with its image
    y axis as close to the world direction ``down`` as possible.

    Raises:
        ValueError: ``eye == target`` or the view direction parallel to ``down``.
    """
    eye_a, tgt = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    z = tgt - eye_a
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("camera eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(down, np.float64), z)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("camera looks along the 'down' direction; pick another down vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    return Extrinsics(R=rot, t=-rot @ eye_a)


def _intrinsics(rng: np.random.Generator, cfg: SceneConfig) -> Intrinsics:
    hfov = rng.uniform(*cfg.hfov_deg)
    fx = cfg.width / (2.0 * math.tan(math.radians(hfov) / 2.0))
    return Intrinsics(fx=fx, fy=fx, cx=cfg.width / 2.0, cy=cfg.height / 2.0, width=cfg.width, height=cfg.height)


def rig_cameras(rng: np.random.Generator, layout: Layout, num_views: int, cfg: SceneConfig) -> tuple[Camera, ...]:
    """Cameras of a rig around the world origin.

    ``ring``: evenly spaced azimuths (plus jitter) on a circle of radius ``distance_mm`` at
    elevations of -10..30 deg; ``desk``: an arc of azimuths within +-75 deg of the front (-z side),
    elevations 15..60 deg above the hands. Each camera looks at a point near the origin.
    """
    cams = []
    offset = rng.uniform(0.0, 2.0 * math.pi)
    for v in range(num_views):
        radius = rng.uniform(max(cfg.distance_mm[0], 350.0), max(cfg.distance_mm[1], 450.0))
        if layout == "ring":
            az = offset + 2.0 * math.pi * v / num_views + rng.uniform(-0.15, 0.15)
            el = math.radians(rng.uniform(-10.0, 30.0))
        else:
            az = math.pi + math.radians(-75.0 + 150.0 * (v + 0.5) / num_views + rng.uniform(-8.0, 8.0))
            el = math.radians(rng.uniform(15.0, 60.0))
        eye = radius * np.array([math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az)])
        target = rng.uniform(-30.0, 30.0, 3)
        cams.append(Camera(f"cam{v}", _intrinsics(rng, cfg), look_at(eye, target)))
    return tuple(cams)


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """``Rz(roll) Ry(yaw) Rx(pitch)`` (radians) as a 3x3 matrix."""
    cx, sx, cy, sy, cz, sz = (f(a) for a in (pitch, yaw, roll) for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _sample_shape(rng: np.random.Generator) -> np.ndarray:
    sigma = np.array(SHAPE_PRIOR_SIGMA)
    lim = np.array(SHAPE_LIMITS)
    shape = 1.0 + np.clip(rng.standard_normal(SHAPE_DIM), -2.0, 2.0) * sigma
    return np.clip(shape, lim[:, 0], lim[:, 1])


def _sample_skin(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(len(SKIN_TONES) - 1))
    s = rng.uniform()
    return (1.0 - s) * np.array(SKIN_TONES[k]) + s * np.array(SKIN_TONES[k + 1])


def _placement(rng: np.random.Generator, cfg: SceneConfig, cam: Camera, shape: np.ndarray, lateral_mm: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Base rotation vector and wrist position (scene mm) of a hand in front of ``cam``."""
    if cfg.layout == "single":
        yaw = rng.uniform(-70.0, 70.0) + (180.0 if rng.uniform() < cfg.back_probability else 0.0)
        rot = _rotation(math.radians(rng.uniform(-40.0, 40.0)), math.radians(yaw),
                        math.radians(rng.uniform(-60.0, 60.0))) @ _PALM_TO_CAMERA
        dist = rng.uniform(*cfg.distance_mm)
        intr = cam.intrinsics
        # mid-palm somewhere in the central part of the image
        u = intr.cx + rng.uniform(-0.15, 0.15) * intr.width
        v = intr.cy + rng.uniform(-0.12, 0.12) * intr.height
        ray = intr.unproject(np.array([u, v]), 1.0)
        centre = dist * ray / np.linalg.norm(ray) + np.array([lateral_mm, 0.0, 0.0])
    else:
        rot = _rotation(math.radians(rng.uniform(-50.0, 50.0)), rng.uniform(0.0, 2 * math.pi),
                        math.radians(rng.uniform(-60.0, 60.0))) @ _PALM_TO_CAMERA
        centre = rng.uniform(-40.0, 40.0, 3) + np.array([lateral_mm, 0.0, 0.0])
    wrist = centre - rot @ (_HAND_CENTRE_LOCAL * shape[0])
    return matrix_to_rotvec(torch.as_tensor(rot)).numpy(), wrist


def sample_scene(seed: int, config: SceneConfig = SceneConfig()) -> Scene:
    """Draw a scene from ``seed`` (the same seed and config give the same scene, bit for bit).

    Args:
        seed: non-negative integer seed.
        config: what to draw.

    Returns:
        The :class:`Scene` with every hand's joints already computed.
    """
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    if config.layout == "single":
        cameras: tuple[Camera, ...] = (Camera("cam0", _intrinsics(rng, config)),)
    else:
        cameras = rig_cameras(rng, config.layout, config.num_views, config)
    first_left = bool(rng.uniform() < config.left_probability)
    spacing = rng.uniform(220.0, 300.0)
    hands = []
    for k in range(config.num_hands):
        left = first_left if k == 0 else not first_left
        lateral = 0.0 if config.num_hands == 1 else (spacing / 2.0) * (1.0 if (k == 0) == left else -1.0)
        # a left hand sits on the image's right when seen palm-first; spread the pair sideways
        shape = _sample_shape(rng)
        rotvec, wrist = _placement(rng, config, cameras[0], shape, lateral)
        action = config.actions[int(rng.integers(len(config.actions)))]
        motion = sample_motion(rng, action, config.num_frames, rotvec, wrist, config.motion)
        pose = torch.as_tensor(motion.pose_vectors(), dtype=torch.float64)
        shp = torch.as_tensor(np.broadcast_to(shape, (len(motion), SHAPE_DIM)).copy(), dtype=torch.float64)
        joints = forward_kinematics(pose, shp, left).numpy()
        hands.append(HandTrack(left, shape, motion, _sample_skin(rng), joints))
    return Scene(int(seed), config, cameras, tuple(hands))


def frame_rng(seed: int, t: int, view: int) -> np.random.Generator:
    """The generator for sensor noise and background of frame ``t`` of view ``view``."""
    return np.random.default_rng([int(seed), int(t), int(view), 0xD3F7])


@functools.lru_cache(maxsize=32)
def _view_background(seed: int, view: int, width: int, height: int) -> np.ndarray:
    """The (read-only) wall behind view ``view`` of scene ``seed``: the same for every frame, so it
    is drawn once (about 30 ms) rather than per rendered frame."""
    background = make_background(width, height, np.random.default_rng([seed, view, 0xB6]))
    background.setflags(write=False)
    return background


def render_view(scene: Scene, t: int, view: int, config: RenderConfig = RenderConfig(),
                background: np.ndarray | None = None) -> Rendered:
    """Render frame ``t`` of camera ``view`` (RGB, depth, mask, labels; see :mod:`models.render`).

    Args:
        scene: the scene.
        t: frame index in ``[0, len(scene))``.
        view: camera index.
        config: renderer settings (noise, supersampling, ...).
        background: RGB uint8 ``(H, W, 3)`` behind the hands; default a seeded random wall.
    """
    if not 0 <= t < len(scene):
        raise IndexError(f"frame {t} outside the scene's {len(scene)} frames")
    cam = scene.cameras[view]
    rng = frame_rng(scene.seed, t, view)
    if background is None:
        background = _view_background(scene.seed, view, cam.intrinsics.width, cam.intrinsics.height)
    hands = [RenderHand(h.joints[t], h.handedness, skin_albedo=h.skin) for h in scene.hands]
    return render(cam, hands, config, rng, background)


def render_frame(scene: Scene, t: int, view: int, config: RenderConfig = RenderConfig(), with_depth: bool = True,
                 timestamp: float | None = None, index: int | None = None) -> Frame:
    """Frame ``t`` of camera ``view`` as a :class:`Frame` with its :class:`GroundTruth`.

    The same frame, bit for bit, as view ``view`` of :func:`render_frameset`. ``timestamp`` (s) and
    ``index`` default to ``t / fps`` and ``t``; ``with_depth=False`` leaves out the depth image.
    """
    stamp = t / scene.fps if timestamp is None else timestamp
    index = t if index is None else index
    r = render_view(scene, t, view, config)
    gt = GroundTruth(
        joints_3d=r.joints_cam, joints_2d=r.joints_2d, visible=r.visible,
        handedness=tuple(h.handedness for h in scene.hands),
        actions=tuple(str(h.motion.actions[t]) for h in scene.hands),
        joints_world=scene.joints_world(t), mask=r.mask)  # fmt: skip
    return Frame(r.rgb, stamp, index, scene.cameras[view], r.depth if with_depth else None, gt)


def render_frameset(scene: Scene, t: int, config: RenderConfig = RenderConfig(), with_depth: bool = True,
                    timestamp: float | None = None, index: int | None = None) -> FrameSet:
    """All views of frame ``t`` as a :class:`FrameSet` with :class:`GroundTruth` on every frame
    (:func:`render_frame` per view).

    ``timestamp`` (s) and ``index`` default to ``t / fps`` and ``t``."""
    stamp = t / scene.fps if timestamp is None else timestamp
    index = t if index is None else index
    frames = tuple(render_frame(scene, t, v, config, with_depth, stamp, index) for v in range(len(scene.cameras)))
    return FrameSet(frames, stamp, index)
