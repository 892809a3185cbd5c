"""Training and evaluation data of V2V-PoseNet from the synthetic engine (:mod:`models.synthetic`).

A training sample is made in two steps:

1. **Crop** (:func:`render_hand_crop`, deterministic by index): draw a single-view scene from
   seed ``base_seed + index`` (seeds below :data:`EVAL_SEED_BASE` only), render one of its frames
   with sensor-like depth noise (:data:`models.synthetic.SENSOR_LIKE`) and, for a share of the
   samples, a wall behind the hand; emulate a hand detector by seeding
   :func:`models.depth_crop.hand_reference_point` with the mean of the 21 joints plus Gaussian jitter;
   keep the depth readings that any augmentation below can bring into the cube, cropped to their
   bounding box (a :class:`HandCrop`, small enough to keep thousands in memory: :class:`CropBank`).
2. **Sample** (:func:`make_sample`, deterministic by its generator): the paper's augmentation on the
   crop's points and joints, about the reference point: rotation about the camera z axis (+-40 deg),
   scaling (0.8-1.2), and a translation of the cube centre (+-8 voxels of the 88^3 grid, 22.7 mm,
   which also trains robustness to a bad reference point); then the occupancy grid
   (:func:`kernels.voxelize_points`) and the Gaussian targets (:func:`kernels.gaussian_heatmaps`,
   sigma 1.7 output voxels).

:class:`SyntheticV2VDataset` serves samples by index (``index -> crop index``, augmentation generator
seeded by ``(seed, index)``), so a training run that resumes at step ``s`` sees exactly the samples
it would have seen. :func:`load_eval_set` reads the held-out set committed in the repository
(``assets/synth_eval/single_view.npz`` of a checkout; evaluation data, not shipped in the package, so
callers pass its path) and its reference points
(:func:`eval_reference_points`: the same detector emulation without jitter).

Numba kernels run in OpenMP threads: DataLoader workers must be *spawned*, not forked, once the
parent process has used them (:data:`WORKER_CONTEXT`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from kernels import depth_to_points, gaussian_heatmaps, voxelize_points
from models.render import RenderConfig
from models.synthetic import SENSOR_LIKE, SceneConfig, render_view, sample_scene

from models.depth_crop import hand_reference_point, intrinsics_of
from tracker.core.structures import Intrinsics

__all__ = [
    "EVAL_SEED_BASE",
    "WORKER_CONTEXT",
    "V2VDataConfig",
    "HandCrop",
    "CropBank",
    "render_hand_crop",
    "render_hand_frame",
    "crop_around",
    "augment",
    "make_sample",
    "make_refpoint_sample",
    "SyntheticV2VDataset",
    "EvalSet",
    "load_eval_set",
    "eval_reference_points",
]

#: Scene seeds from here on belong to evaluation sets; training draws below it.
EVAL_SEED_BASE = 1_000_000
#: multiprocessing context for DataLoader workers (Numba's OpenMP layer does not survive fork()).
WORKER_CONTEXT = "spawn"


@dataclass(frozen=True)
class V2VDataConfig:
    """How samples are drawn.

    Attributes:
        cube_mm: edge of the cube around the reference point, mm.
        in_grid: input voxels per side (88 in the paper); heatmaps have ``in_grid // 2``.
        sigma: Gaussian target standard deviation in output voxels (1.7).
        render: renderer settings (sensor-like noise by default).
        wall_probability: share of samples with a flat wall behind the hand.
        wall_gap_mm: range of the wall's distance behind the farthest joint, mm.
        frames_per_scene: frames of each drawn scene; one of them is rendered.
        base_seed: first scene seed (scene seed = ``base_seed + crop index``).
        detector_jitter_mm: std of the Gaussian error of the emulated detector's seed point, mm.
        com_region_mm: region of the centre of mass (:func:`models.depth_crop.hand_reference_point`).
        com_iterations: centre-of-mass steps of the reference point.
        rotation_deg: augmentation: rotation about the camera z axis, uniform in +-this.
        scale: augmentation: uniform scale range.
        translation_mm: augmentation: uniform shift of the cube centre per axis in +-this (mm);
            8 voxels of the paper's 88^3 grid of a 250 mm cube.
        refpoint_cube_mm, refpoint_grid: the coarse grid of :func:`make_refpoint_sample`.
        refpoint_shift_mm: extra uniform shift of the centre of mass per axis for RefPointNet samples.
    """

    cube_mm: float = 250.0
    in_grid: int = 88
    sigma: float = 1.7
    render: RenderConfig = field(default_factory=lambda: SENSOR_LIKE)
    wall_probability: float = 0.3
    wall_gap_mm: tuple[float, float] = (60.0, 600.0)
    frames_per_scene: int = 30
    base_seed: int = 0
    detector_jitter_mm: float = 10.0
    com_region_mm: float = 130.0
    com_iterations: int = 1
    rotation_deg: float = 40.0
    scale: tuple[float, float] = (0.8, 1.2)
    translation_mm: float = 8.0 * 250.0 / 88.0
    refpoint_cube_mm: float = 300.0
    refpoint_grid: int = 32
    refpoint_shift_mm: float = 15.0

    def __post_init__(self) -> None:
        if self.in_grid % 8 or self.in_grid < 8:
            raise ValueError(f"in_grid must be a positive multiple of 8, got {self.in_grid}")
        if not self.cube_mm > 0:
            raise ValueError(f"cube_mm must be positive, got {self.cube_mm}")
        if not 0.0 <= self.wall_probability <= 1.0:
            raise ValueError(f"wall_probability must be in [0, 1], got {self.wall_probability}")
        if self.scale[0] <= 0 or self.scale[1] < self.scale[0]:
            raise ValueError(f"scale must be a range (lo, hi) with 0 < lo <= hi, got {self.scale}")

    @property
    def out_grid(self) -> int:
        return self.in_grid // 2

    def crop_half_extent(self) -> tuple[float, float]:
        """Half extents ``(xy, z)`` mm around the reference point of the readings any augmentation can
        bring into any cube this config makes (V2V and RefPointNet)."""
        h = max(0.5 * self.cube_mm + self.translation_mm, 0.5 * self.refpoint_cube_mm + self.refpoint_shift_mm)
        inv = 1.0 / self.scale[0]
        return h * math.sqrt(2.0) * inv + 2.0, h * inv + 2.0


@dataclass(frozen=True)
class HandCrop:
    """The depth readings around one rendered hand, with its labels.

    Attributes:
        depth: ``(h, w)`` uint16 mm, the crop's pixels; readings far from the hand are zeroed.
        fx, fy, cx, cy: intrinsics of the crop (principal point shifted by the crop's corner).
        joints: ``(21, 3)`` float64 mm, camera frame.
        ref: ``(3,)`` float64 mm, the reference point (centre of mass around the detector's seed).
        com_count: depth readings in the reference point's region.
        index: the crop index it was drawn from.
    """

    depth: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    joints: np.ndarray
    ref: np.ndarray
    com_count: int
    index: int

    def points(self) -> np.ndarray:
        """``(N, 3)`` float32 mm camera-frame points of the crop's readings."""
        return depth_to_points(self.depth, self.fx, self.fy, self.cx, self.cy)


_GREY_BACKGROUNDS: dict[tuple[int, int], np.ndarray] = {}


def _grey(width: int, height: int) -> np.ndarray:
    """A plain RGB background (the RGB image is not used here; this skips drawing a textured one)."""
    key = (width, height)
    if key not in _GREY_BACKGROUNDS:
        _GREY_BACKGROUNDS[key] = np.full((height, width, 3), 128, np.uint8)
    return _GREY_BACKGROUNDS[key]


def render_hand_crop(index: int, config: V2VDataConfig = V2VDataConfig(),
                     scene_config: SceneConfig | None = None) -> HandCrop:
    """Render training crop ``index`` (deterministic; see the module docstring).

    Args:
        index: crop index >= 0; the scene seed is ``config.base_seed + index``.
        config: data settings.
        scene_config: scene settings (default: one hand, single view, ``frames_per_scene`` frames).

    Returns:
        The :class:`HandCrop`. Its ``ref`` falls back to the seed point when the region is empty
        (a hand hidden by its forearm, for example).

    Raises:
        ValueError: the scene seed reaches the evaluation seeds.
    """
    depth, K, joints, ref, count = render_hand_frame(index, config, scene_config)
    return crop_around(depth, K, joints, ref, count, index, config)


def render_hand_frame(index: int, config: V2VDataConfig = V2VDataConfig(), scene_config: SceneConfig | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The full frame behind :func:`render_hand_crop`: ``(depth (H, W) uint16, K (3, 3), joints (21, 3) mm,
    ref (3,) mm, com_count)``."""
    seed = int(config.base_seed) + int(index)
    if not 0 <= seed < EVAL_SEED_BASE:
        raise ValueError(f"training scene seed {seed} must be in [0, {EVAL_SEED_BASE}) (evaluation seeds above)")
    scfg = scene_config or SceneConfig(num_frames=config.frames_per_scene, layout="single", num_hands=1)
    scene = sample_scene(seed, scfg)
    rng = np.random.default_rng([seed, 0x7C0B])
    t = int(rng.integers(len(scene)))
    joints = scene.hands[0].joints[t]  # single view: the scene frame is the camera frame
    rcfg = config.render
    if rng.uniform() < config.wall_probability:
        wall = float(joints[:, 2].max() + rng.uniform(*config.wall_gap_mm))
        rcfg = dataclasses.replace(rcfg, background_depth_mm=wall)
    intr = scene.cameras[0].intrinsics
    r = render_view(scene, t, 0, rcfg, background=_grey(intr.width, intr.height))
    joints = r.joints_cam[0]
    K = intr.K
    seed_pt = joints.mean(0) + rng.normal(0.0, config.detector_jitter_mm, 3)
    ref, count = hand_reference_point(r.depth, K, seed_pt, config.com_region_mm, config.com_iterations)
    if not np.all(np.isfinite(ref)):
        ref = seed_pt
    return r.depth, K, joints, ref, count


def crop_around(depth: np.ndarray, K: np.ndarray, joints: np.ndarray, ref: np.ndarray, count: int, index: int,
                config: V2VDataConfig) -> HandCrop:
    """The :class:`HandCrop` of a full depth image: readings within reach of the cube around ``ref``."""
    fx, fy, cx, cy = intrinsics_of(K)
    hxy, hz = config.crop_half_extent()
    z = depth.astype(np.float64)
    H, W = depth.shape
    centres = np.stack(np.broadcast_arrays(np.arange(W)[None, :] + 0.5, np.arange(H)[:, None] + 0.5), axis=-1)
    rays = Intrinsics(fx, fy, cx, cy, W, H).unproject(centres, 1.0)  # (H, W, 3): each pixel centre at Z = 1 mm
    keep = (depth > 0) & (np.abs(z - ref[2]) <= hz)
    keep &= np.abs(rays[..., 0] * z - ref[0]) <= hxy
    keep &= np.abs(rays[..., 1] * z - ref[1]) <= hxy
    rr = np.flatnonzero(keep.any(1))
    cc = np.flatnonzero(keep.any(0))
    if rr.size == 0:
        r0 = r1 = c0 = c1 = 0
    else:
        r0, r1, c0, c1 = rr[0], rr[-1] + 1, cc[0], cc[-1] + 1
    crop = np.where(keep[r0:r1, c0:c1], depth[r0:r1, c0:c1], 0).astype(np.uint16)
    return HandCrop(crop, fx, fy, cx - c0, cy - r0, np.asarray(joints, np.float64).copy(),
                    np.asarray(ref, np.float64).copy(), int(count), int(index))  # fmt: skip


class CropBank:
    """Many :class:`HandCrop` in flat arrays (cheap to pickle to spawned workers, to save and load).

    Args:
        crops: the crops.
    """

    def __init__(self, crops: list[HandCrop]) -> None:
        shapes = np.array([c.depth.shape for c in crops], np.int64).reshape(-1, 2)
        sizes = shapes[:, 0] * shapes[:, 1]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.depth = (np.concatenate([c.depth.ravel() for c in crops]) if crops else np.zeros(0)).astype(np.uint16)
        self.shapes = shapes
        self.intr = np.array([[c.fx, c.fy, c.cx, c.cy] for c in crops], np.float64).reshape(-1, 4)
        self.joints = np.array([c.joints for c in crops], np.float64).reshape(-1, 21, 3)
        self.refs = np.array([c.ref for c in crops], np.float64).reshape(-1, 3)
        self.counts = np.array([c.com_count for c in crops], np.int64)
        self.indices = np.array([c.index for c in crops], np.int64)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, i: int) -> HandCrop:
        h, w = self.shapes[i]
        d = self.depth[self.offsets[i]:self.offsets[i + 1]].reshape(h, w)
        fx, fy, cx, cy = self.intr[i]
        return HandCrop(d, fx, fy, cx, cy, self.joints[i], self.refs[i], int(self.counts[i]), int(self.indices[i]))

    def save(self, path: str | Path) -> None:
        """Write the bank to ``path`` (``.npz``)."""
        np.savez(path, depth=self.depth, offsets=self.offsets, shapes=self.shapes, intr=self.intr,
                 joints=self.joints, refs=self.refs, counts=self.counts, indices=self.indices)  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> "CropBank":
        """Read a bank written by :meth:`save`."""
        bank = cls([])
        with np.load(path) as d:
            for k in ("depth", "offsets", "shapes", "intr", "joints", "refs", "counts", "indices"):
                setattr(bank, k, d[k])
        return bank


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def augment(points: np.ndarray, joints: np.ndarray, ref: np.ndarray, config: V2VDataConfig,
            rng: np.random.Generator | None, translation_mm: float | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's augmentation about ``ref``: rotation about z, scale, then a shift of the cube centre.

    Args:
        points: ``(N, 3)`` mm; joints: ``(J, 3)`` mm; ref: ``(3,)`` mm.
        config: the ranges.
        rng: generator; None = no augmentation.
        translation_mm: shift range per axis (default ``config.translation_mm``).

    Returns:
        ``(points, joints, centre)``: transformed ``ref + s R (p - ref)`` (float32 points, float64
        joints) and the cube centre ``ref + t``.
    """
    ref = np.asarray(ref, np.float64)
    if rng is None:
        return points, np.asarray(joints, np.float64), ref.copy()
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    s = rng.uniform(*config.scale)
    tr = config.translation_mm if translation_mm is None else translation_mm
    shift = rng.uniform(-tr, tr, 3)
    A = s * _rotation_z(angle)
    p = ((points.astype(np.float64) - ref) @ A.T + ref).astype(np.float32)
    j = (np.asarray(joints, np.float64) - ref) @ A.T + ref
    return p, j, ref + shift


def make_sample(crop: HandCrop, config: V2VDataConfig, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """One V2V-PoseNet training (``rng`` given) or evaluation (``rng=None``) sample of a crop.

    Returns:
        ``grid`` ``(1, D, D, D)`` float32 occupancy, ``heatmaps`` ``(J, D/2, D/2, D/2)`` float32
        targets, ``joints`` ``(J, 3)`` float32 mm (after augmentation), ``ref`` ``(3,)`` float64 mm
        cube centre, ``cube_mm`` () float32.
    """
    pts, joints, centre = augment(crop.points(), crop.joints, crop.ref, config, rng)
    grid = voxelize_points(pts, centre, config.cube_mm, config.in_grid)
    hm = gaussian_heatmaps(joints, centre, config.cube_mm, config.out_grid, config.sigma)
    return {
        "grid": grid[None].astype(np.float32),
        "heatmaps": hm,
        "joints": joints.astype(np.float32),
        "ref": centre,
        "cube_mm": np.float32(config.cube_mm),
    }


def make_refpoint_sample(crop: HandCrop, config: V2VDataConfig, rng: np.random.Generator | None
                         ) -> dict[str, np.ndarray]:
    """One :class:`models.v2v.RefPointNet` sample: coarse grid around the (shifted) centre of mass and the
    offset (mm) from the grid centre to the hand centre (mean of the joints).

    Returns:
        ``grid`` ``(1, d, d, d)`` float32, ``offset`` ``(3,)`` float32 mm, ``ref`` ``(3,)`` float64 mm.
    """
    pts, joints, centre = augment(crop.points(), crop.joints, crop.ref, config, rng, config.refpoint_shift_mm)
    grid = voxelize_points(pts, centre, config.refpoint_cube_mm, config.refpoint_grid)
    return {"grid": grid[None].astype(np.float32), "offset": (joints.mean(0) - centre).astype(np.float32),
            "ref": centre}  # fmt: skip


class SyntheticV2VDataset(Dataset):
    """Synthetic V2V-PoseNet samples by index (deterministic).

    Sample ``i`` is crop ``i`` (rendered on demand) or, with a ``bank``, crop ``i % len(bank)``,
    augmented with a generator seeded by ``(seed, i)``.

    Args:
        config: data settings.
        length: number of indices (any large number for a stream of fresh scenes).
        seed: augmentation seed.
        bank: pre-rendered crops to cycle through instead of rendering.
        augment: apply the augmentation (False: the crop as drawn, cube at its reference point).
        target: ``"v2v"`` (:func:`make_sample`) or ``"refpoint"`` (:func:`make_refpoint_sample`).
    """

    def __init__(self, config: V2VDataConfig = V2VDataConfig(), length: int = 10**6, seed: int = 0,
                 bank: CropBank | None = None, augment: bool = True, target: str = "v2v") -> None:
        if target not in ("v2v", "refpoint"):
            raise ValueError(f"target must be 'v2v' or 'refpoint', got {target!r}")
        if bank is not None and len(bank) == 0:
            raise ValueError("the crop bank is empty")
        self.config = config
        self.length = int(length)
        self.seed = int(seed)
        self.bank = bank
        self.augment = bool(augment)
        self.target = target

    def __len__(self) -> int:
        return self.length

    def crop(self, index: int) -> HandCrop:
        if self.bank is not None:
            return self.bank[index % len(self.bank)]
        return render_hand_crop(index % (EVAL_SEED_BASE - self.config.base_seed), self.config)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, int(index), 0xA06]) if self.augment else None
        c = self.crop(int(index))
        s = make_sample(c, self.config, rng) if self.target == "v2v" else make_refpoint_sample(c, self.config, rng)
        return {k: torch.as_tensor(v) for k, v in s.items()}


@dataclass(frozen=True)
class EvalSet:
    """The held-out single-view set (see ``scripts/make_synth_eval.py``).

    Attributes:
        depth: ``(N, H, W)`` uint16 mm; joints: ``(N, 21, 3)`` float64 mm camera frame;
        K: ``(N, 3, 3)``; visible: ``(N, 21)`` bool; action: ``(N,)`` str.
    """

    depth: np.ndarray
    joints: np.ndarray
    K: np.ndarray
    visible: np.ndarray
    action: np.ndarray

    def __len__(self) -> int:
        return len(self.depth)

    def subset(self, idx: np.ndarray) -> "EvalSet":
        return EvalSet(self.depth[idx], self.joints[idx], self.K[idx], self.visible[idx], self.action[idx])


def load_eval_set(path: str | Path, limit: int | None = None) -> EvalSet:
    """Read the committed evaluation set (or ``limit`` frames of it, spread evenly).

    Args:
        path: the ``single_view.npz`` of ``scripts/make_synth_eval.py`` (``assets/synth_eval/`` in a checkout).
        limit: keep this many frames, evenly spaced; None keeps all.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation set {path} not found; build it with scripts/make_synth_eval.py")
    with np.load(path) as d:
        es = EvalSet(d["depth"], d["joints_3d"], d["K"], d["visible"], d["action"])
    if limit is not None and limit < len(es):
        es = es.subset(np.linspace(0, len(es) - 1, limit).round().astype(int))
    return es


def eval_reference_points(es: EvalSet, config: V2VDataConfig = V2VDataConfig()) -> np.ndarray:
    """``(N, 3)`` reference points of the eval set: the detector emulation of training without jitter
    (centre of mass around the mean of the ground-truth joints); NaN where the region is empty."""
    out = np.full((len(es), 3), np.nan)
    for n in range(len(es)):
        out[n] = hand_reference_point(es.depth[n], es.K[n], es.joints[n].mean(0), config.com_region_mm,
                                      config.com_iterations)[0]
    return out
