"""Training and evaluation data for the learned multi-view fusion (:mod:`models.hamuco`).

Rig sequences are drawn by the synthetic engine (:mod:`models.synthetic`, ``ring`` / ``desk``
layouts, one hand), rendered view by view and run through the REAL MediaPipe detector
(:class:`tracker.stages.landmarks.MediaPipeHands`, tracking mode, one detector per view as a live
rig runs it), so the network's inputs carry a real detector's errors: misses, jitter, left/right
swaps, and MediaPipe's own joint conventions. Optionally some views get an **occluder**: a
skin-coloured or textured ellipse or bar pasted over part of the hand (fixed in the image for the
whole sequence), recorded per view together with the joints it covers.

One sequence is stored as an ``.npz`` of arrays (T frames, V views, 21 joints):

* detections: ``uv`` (T, V, 21, 2) px (NaN where MediaPipe found no hand), ``conf`` (T, V, 21),
  ``score`` (T, V), ``left_prob`` (T, V) probability that the detected hand is a left hand,
  ``local`` (T, V, 21, 3) mm MediaPipe world landmarks (root-relative metric 3D, camera axes),
  ``detected`` (T, V) bool, ``patches`` (T, V, 21, P, P, 3) uint8 RGB image patches around each
  detected joint (:func:`joint_patches`; zeros where missing) — the network's image features;
* cameras: ``K`` (V, 3, 3), ``R`` (V, 3, 3), ``t`` (V, 3) world -> camera, mm; ``size`` (2,) W, H;
* occlusion: ``occluded`` (V,) bool, ``covered`` (T, V, 21) bool (joint's true 2D under the occluder);
* labels: ``joints_world`` (T, 21, 3) mm, ``pose`` (T, 26) hand-model pose in the world frame,
  ``shape`` (18,), ``left`` () bool, ``visible`` (T, V, 21), ``joints_2d`` (T, V, 21, 2) px;
* ``seed`` (), ``layout`` () str.

Seeds: training sequences use seeds < 1,000,000; evaluation sequences seeds >= 3,000,000 (see
:data:`EVAL_SEED_BASE`). Generated data lives under ``checkpoints/`` (never committed).

:class:`RigDataset` loads a folder of sequences and samples padded batches of random view subsets
(2..8 views), the training input of :class:`models.hamuco.HaMuCo`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import torch

from tracker.core.joints import NUM_JOINTS

__all__ = [
    "TRAIN_SEED_MAX",
    "EVAL_SEED_BASE",
    "MAX_VIEWS",
    "Occluder",
    "sample_occluder",
    "apply_occluder",
    "GenerationConfig",
    "Detector",
    "generate_sequence",
    "detections_from_hands",
    "joint_patches",
    "PATCH_SIZE",
    "RigBatch",
    "RigDataset",
    "view_subset",
]

log = logging.getLogger(__name__)

#: Training seeds must stay below this (the committed evaluation set starts at 1,000,000).
TRAIN_SEED_MAX: Final = 1_000_000
#: Seeds of this module's held-out evaluation sequences start here.
EVAL_SEED_BASE: Final = 3_000_000
#: Most views a batch holds.
MAX_VIEWS: Final = 8


class Detector(Protocol):
    """A per-view 2D hand detector in tracking mode (e.g. :class:`tracker.stages.landmarks.MediaPipeHands`)."""

    def detect(self, rgb: np.ndarray, timestamp_s: float) -> list: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Occluder:
    """Something in front of the hand in one view, fixed in the image (pixels).

    Attributes:
        kind: ``ellipse`` or ``bar``.
        centre: ``(2,)`` px.
        half_size: ``(2,)`` px half axes (ellipse) / half length and half width (bar).
        angle: rotation in radians.
        colour: ``(3,)`` RGB uint8 base colour.
        textured: True adds a random stripe/noise texture (an object), False a flat skin-like tone.
        seed: texture seed.
    """

    kind: str
    centre: tuple[float, float]
    half_size: tuple[float, float]
    angle: float
    colour: tuple[int, int, int]
    textured: bool
    seed: int

    def mask(self, width: int, height: int) -> np.ndarray:
        """``(H, W)`` bool, the pixels it covers."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xs - self.centre[0], ys - self.centre[1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        a = (c * dx + s * dy) / max(self.half_size[0], 1.0)
        b = (-s * dx + c * dy) / max(self.half_size[1], 1.0)
        if self.kind == "ellipse":
            return a * a + b * b <= 1.0
        return (np.abs(a) <= 1.0) & (np.abs(b) <= 1.0)


def sample_occluder(rng: np.random.Generator, joints_2d: np.ndarray) -> Occluder:
    """An occluder over part of a hand whose 2D joints (px, ``(21, 2)``) are given: centred near a
    random joint, about 25-55 % of the hand's 2D extent, skin-toned (another hand, an arm) or a
    textured object."""
    from models.synthetic import SKIN_TONES

    lo, hi = np.nanmin(joints_2d, axis=0), np.nanmax(joints_2d, axis=0)
    extent = float(max(np.linalg.norm(hi - lo), 20.0))
    centre = joints_2d[int(rng.integers(NUM_JOINTS))] + rng.normal(0.0, 0.08 * extent, 2)
    kind = "ellipse" if rng.uniform() < 0.5 else "bar"
    if kind == "ellipse":
        half = rng.uniform(0.12, 0.28, 2) * extent
    else:
        half = np.array([rng.uniform(0.35, 0.8), rng.uniform(0.07, 0.15)]) * extent
    textured = bool(rng.uniform() < 0.5)
    if textured:
        colour = rng.integers(30, 230, 3)
    else:
        tone = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])
        colour = np.clip(255.0 * tone ** (1 / 2.2) * rng.uniform(0.8, 1.05), 0, 255)
    return Occluder(kind, (float(centre[0]), float(centre[1])), (float(half[0]), float(half[1])),
                    float(rng.uniform(0, math.pi)), tuple(int(c) for c in colour), textured,  # type: ignore[arg-type]
                    int(rng.integers(1 << 30)))


def apply_occluder(image: np.ndarray, occ: Occluder) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``occ`` over an RGB uint8 ``(H, W, 3)`` image.

    Returns:
        ``(image, mask)``: a new image and the ``(H, W)`` bool mask of covered pixels.
    """
    h, w = image.shape[:2]
    mask = occ.mask(w, h)
    out = image.copy()
    if not mask.any():
        return out, mask
    ys, xs = np.nonzero(mask)
    col = np.asarray(occ.colour, np.float32)[None, :].repeat(len(ys), 0)
    # soft shading along the short axis so the blob reads as a 3D object, not a flat sticker
    c, s = math.cos(occ.angle), math.sin(occ.angle)
    b = (-s * (xs - occ.centre[0]) + c * (ys - occ.centre[1])) / max(occ.half_size[1], 1.0)
    col *= (1.0 - 0.25 * np.clip(b, -1, 1) ** 2)[:, None]
    if occ.textured:
        rng = np.random.default_rng(occ.seed)
        period = rng.uniform(4.0, 14.0)
        stripes = 0.5 + 0.5 * np.sin((c * xs + s * ys) * 2 * math.pi / period)
        col *= (0.7 + 0.3 * stripes)[:, None]
        col += rng.normal(0.0, 6.0, col.shape)
    out[ys, xs] = np.clip(col, 0, 255).astype(np.uint8)
    return out, mask


#: Edge of an image patch around a joint, pixels after resampling.
PATCH_SIZE: Final = 16


def joint_patches(image: np.ndarray, uv: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """Square RGB patches around the 2D joints of one hand in one image (the fusion network's image
    features).

    Each patch covers a quarter of the hand's 2D extent (the larger side of the joints' bounding
    box, at least 12 px and at most 96 px), centred on the joint with sub-pixel accuracy
    (:func:`cv2.getRectSubPix`, border replicated off the image), resampled to ``size`` x ``size``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, the image the joints were detected in (distorted pixels).
        uv: ``(21, 2)`` px; a hand with any non-finite joint gives all-zero patches.
        size: output patch edge, px.

    Returns:
        ``(21, size, size, 3)`` uint8.
    """
    import cv2

    out = np.zeros((NUM_JOINTS, size, size, 3), np.uint8)
    uv = np.asarray(uv, np.float64)
    if uv.shape != (NUM_JOINTS, 2) or not np.isfinite(uv).all():
        return out
    extent = float(np.max(uv.max(0) - uv.min(0)))
    side = int(np.clip(round(0.25 * extent), 12, 96))
    img = np.ascontiguousarray(image)
    for j in range(NUM_JOINTS):
        patch = cv2.getRectSubPix(img, (side, side), (float(uv[j, 0]), float(uv[j, 1])))
        out[j] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


@dataclass(frozen=True)
class GenerationConfig:
    """What :func:`generate_sequence` draws.

    Attributes:
        num_frames: frames per sequence (MediaPipe tracks through them per view).
        num_views: cameras of the rig (training samples view subsets of it).
        occluder_probability: chance that a view gets an occluder (0: none).
        model_complexity: MediaPipe landmark model (0 lite, 1 full).
    """

    num_frames: int = 8
    num_views: int = 8
    occluder_probability: float = 0.0
    model_complexity: int = 1


def detections_from_hands(hands: Sequence, num_views: int) -> dict[str, np.ndarray]:
    """Per-view arrays from per-view detections of ONE hand (the highest-score hand of each view).

    Args:
        hands: :class:`tracker.core.structures.HandPose` with ``view`` set (other views: missing).
        num_views: V.

    Returns:
        ``uv`` (V, 21, 2) px (NaN when missing), ``conf`` (V, 21), ``score`` (V,), ``left_prob`` (V,),
        ``local`` (V, 21, 3) mm, ``detected`` (V,) bool.
    """
    uv = np.full((num_views, NUM_JOINTS, 2), np.nan, np.float32)
    conf = np.zeros((num_views, NUM_JOINTS), np.float32)
    score = np.zeros(num_views, np.float32)
    left = np.full(num_views, 0.5, np.float32)
    local = np.zeros((num_views, NUM_JOINTS, 3), np.float32)
    det = np.zeros(num_views, bool)
    for h in hands:
        v = int(h.view)
        if not 0 <= v < num_views or (det[v] and h.score <= score[v]):
            continue
        uv[v], conf[v], score[v], det[v] = h.joints_2d, h.confidence, h.score, True
        hs = float(h.handedness_score)
        left[v] = hs if h.handedness == "left" else (1.0 - hs if h.handedness == "right" else 0.5)
        if h.joints_local is not None:
            local[v] = h.joints_local
    return {"uv": uv, "conf": conf, "score": score, "left_prob": left, "local": local, "detected": det}


def generate_sequence(seed: int, layout: str, make_detector: Callable[[int], Detector],
                      config: GenerationConfig = GenerationConfig(),
                      occlusion_variants: Iterable[bool] = (False,)) -> list[dict[str, np.ndarray]]:
    """Render one rig sequence and run a 2D detector (MediaPipe) on every view (see the module docstring).

    Args:
        seed: scene seed (< 1,000,000 for training, >= :data:`EVAL_SEED_BASE` for evaluation).
        layout: ``ring`` or ``desk``.
        make_detector: ``make_detector(view)`` -> a fresh detector in tracking mode for that view
            (``detect(rgb, timestamp_s) -> list[HandPose]`` and ``close()``), e.g.
            ``lambda v: MediaPipeHands(MediaPipeConfig(max_hands=1), view=v)`` from
            :mod:`tracker.stages.landmarks`; one per view and occlusion variant.
        config: sequence settings.
        occlusion_variants: one output per entry; False = clean views, True = views occluded with
            ``config.occluder_probability`` (at least one view). The frames are rendered once and
            shared by the variants.

    Returns:
        One dict of arrays per variant (the ``.npz`` layout of the module docstring).
    """
    from models.synthetic import SENSOR_LIKE, SceneConfig, render_view, sample_scene

    cfg = SceneConfig(num_frames=config.num_frames, layout=layout, num_views=config.num_views,  # type: ignore[arg-type]
                      num_hands=1)
    scene = sample_scene(seed, cfg)
    hand = scene.hands[0]
    t_count, v_count = len(scene), len(scene.cameras)
    rendered = [[render_view(scene, t, v, SENSOR_LIKE) for v in range(v_count)] for t in range(t_count)]
    w, h = cfg.width, cfg.height
    common = {
        "K": np.stack([c.intrinsics.K for c in scene.cameras]).astype(np.float64),
        "R": np.stack([c.extrinsics.R for c in scene.cameras]).astype(np.float64),
        "t": np.stack([c.extrinsics.t for c in scene.cameras]).astype(np.float64),
        "size": np.array([w, h], np.int32),
        "joints_world": hand.joints.astype(np.float32),
        "pose": hand.motion.pose_vectors().astype(np.float32),
        "shape": hand.shape.astype(np.float32),
        "left": np.array(hand.left),
        "visible": np.stack([[r.visible[0] for r in row] for row in rendered]),
        "joints_2d": np.stack([[r.joints_2d[0] for r in row] for row in rendered]).astype(np.float32),
        "seed": np.array(seed, np.int64),
        "layout": np.array(layout),
    }
    outs = []
    for occluded_variant in occlusion_variants:
        rng = np.random.default_rng([seed, 0x0CC1, int(occluded_variant)])
        occluders: list[Occluder | None] = [None] * v_count
        if occluded_variant and config.occluder_probability > 0:
            pick = rng.uniform(size=v_count) < config.occluder_probability
            if not pick.any():
                pick[int(rng.integers(v_count))] = True
            for v in np.nonzero(pick)[0]:
                occluders[v] = sample_occluder(rng, common["joints_2d"][0, v])
        masks = [None if o is None else o.mask(w, h) for o in occluders]
        detectors = [make_detector(v) for v in range(v_count)]
        cols: dict[str, list] = {k: [] for k in ("uv", "conf", "score", "left_prob", "local", "detected", "covered",
                                                 "patches")}  # fmt: skip
        try:
            for t in range(t_count):
                hands = []
                images = []
                covered = np.zeros((v_count, NUM_JOINTS), bool)
                for v in range(v_count):
                    img = rendered[t][v].rgb
                    if occluders[v] is not None:
                        img, _ = apply_occluder(img, occluders[v])  # type: ignore[arg-type]
                        px = np.round(common["joints_2d"][t, v]).astype(int)
                        ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
                        covered[v, ok] = masks[v][px[ok, 1], px[ok, 0]]  # type: ignore[index]
                    images.append(img)
                    hands += detectors[v].detect(img, t / scene.fps)
                d = detections_from_hands(hands, v_count)
                for k in d:
                    cols[k].append(d[k])
                cols["covered"].append(covered)
                cols["patches"].append(np.stack([joint_patches(images[v], d["uv"][v]) for v in range(v_count)]))
        finally:
            for det in detectors:
                det.close()
        out = dict(common)
        out.update({k: np.stack(v) for k, v in cols.items()})
        out["occluded"] = np.array([o is not None for o in occluders])
        outs.append(out)
    return outs


def _complete(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fill the optional keys of a sequence dict (unknown labels are NaN / right hand)."""
    t, v = d["uv"].shape[:2]
    d.setdefault("detected", np.isfinite(d["uv"]).all(axis=(-1, -2)))
    d.setdefault("local", np.zeros((t, v, NUM_JOINTS, 3), np.float32))
    d.setdefault("left_prob", np.full((t, v), 0.5, np.float32))
    d.setdefault("joints_world", np.full((t, NUM_JOINTS, 3), np.nan, np.float32))
    d.setdefault("left", np.array(False))
    return d


def view_subset(num_views: int, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of ``k`` of a rig's ``num_views`` cameras spread evenly around it (random start if
    ``rng`` is given, else view 0), so a 2-camera subset of a ring is a 2-camera ring."""
    start = 0.0 if rng is None else float(rng.uniform(0, num_views))
    idx = np.floor(start + np.arange(k) * num_views / k).astype(int) % num_views
    return np.unique(idx) if len(np.unique(idx)) == k else np.arange(k)


@dataclass(frozen=True)
class RigBatch:
    """A padded batch of rig frames (B frames, V <= 8 view slots, 21 joints); torch tensors.

    Attributes:
        uv: ``(B, V, 21, 2)`` px (0 where missing).
        conf: ``(B, V, 21)`` detector confidence in [0, 1] (0 where missing).
        local: ``(B, V, 21, 3)`` mm, MediaPipe root-relative metric 3D (camera axes).
        left_prob: ``(B, V)``.
        view_mask: ``(B, V)`` bool, a view slot holds a detection.
        K, R, t: ``(B, V, 3, 3)``, ``(B, V, 3, 3)``, ``(B, V, 3)``; world -> camera, mm.
        joints_world: ``(B, 21, 3)`` mm ground truth (NaN when unknown).
        left: ``(B,)`` bool ground-truth side.
        patches: ``(B, V, 21, P, P, 3)`` uint8 image patches, or None when a sequence has none.
    """

    uv: torch.Tensor
    conf: torch.Tensor
    local: torch.Tensor
    left_prob: torch.Tensor
    view_mask: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    joints_world: torch.Tensor
    left: torch.Tensor
    patches: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "RigBatch":
        return RigBatch(**{k: (None if getattr(self, k) is None else getattr(self, k).to(device))
                           for k in self.__dataclass_fields__})  # fmt: skip

    def inputs(self) -> dict[str, torch.Tensor | None]:
        """Keyword arguments of :meth:`models.hamuco.HaMuCo.forward`."""
        return {"uv": self.uv, "conf": self.conf, "local": self.local, "left_prob": self.left_prob,
                "view_mask": self.view_mask, "K": self.K, "R": self.R, "t": self.t, "patches": self.patches}


class RigDataset:
    """Frames of rig sequences: dicts in the ``.npz`` layout of :func:`generate_sequence` (labels
    optional: without ``joints_world`` the frames are for self-supervised training only).

    Args:
        seqs: sequences; each needs ``uv``, ``conf``, ``detected``, ``K``, ``R``, ``t`` and may have
            ``local``, ``left_prob``, ``joints_world``, ``left``.

    Raises:
        FileNotFoundError: no sequences; generate data first with
            ``python -m scripts.train_hamuco --generate``.
    """

    def __init__(self, seqs: Sequence[Mapping[str, np.ndarray]]) -> None:
        if not seqs:
            raise FileNotFoundError("no rig sequences given: generate them with python -m scripts.train_hamuco --generate")
        self.seqs = [_complete(dict(d)) for d in seqs]
        # (sequence, frame) of every frame with a hand detected in >= 1 view
        self.index = [(s, t) for s, d in enumerate(self.seqs) for t in range(d["uv"].shape[0])
                      if d["detected"][t].any()]
        if not self.index:
            raise ValueError("no frame of the given sequences has a detection in any view")

    @classmethod
    def from_files(cls, files: Sequence[Path | str]) -> "RigDataset":
        return cls([dict(np.load(f, allow_pickle=False)) for f in files])

    @classmethod
    def from_folder(cls, folder: Path | str, pattern: str = "*.npz") -> "RigDataset":
        files = sorted(Path(folder).glob(pattern))
        if not files:
            raise FileNotFoundError(f"no {pattern} sequences in {folder}: generate them with "
                                    "python -m scripts.train_hamuco --generate")
        return cls.from_files(files)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, items: Sequence[tuple[int, int, np.ndarray]]) -> RigBatch:
        """A batch from ``(sequence, frame, view indices)`` items (view indices: a subset of the rig's)."""
        b = len(items)
        out = {"uv": np.zeros((b, MAX_VIEWS, NUM_JOINTS, 2), np.float32),
               "conf": np.zeros((b, MAX_VIEWS, NUM_JOINTS), np.float32),
               "local": np.zeros((b, MAX_VIEWS, NUM_JOINTS, 3), np.float32),
               "left_prob": np.full((b, MAX_VIEWS), 0.5, np.float32),
               "view_mask": np.zeros((b, MAX_VIEWS), bool),
               "K": np.tile(np.eye(3, dtype=np.float32), (b, MAX_VIEWS, 1, 1)),
               "R": np.tile(np.eye(3, dtype=np.float32), (b, MAX_VIEWS, 1, 1)),
               "t": np.zeros((b, MAX_VIEWS, 3), np.float32),
               "joints_world": np.zeros((b, NUM_JOINTS, 3), np.float32),
               "left": np.zeros(b, bool)}
        with_patches = all("patches" in self.seqs[s] for s, _, _ in items)
        if with_patches:
            p = self.seqs[items[0][0]]["patches"].shape[-2]
            out["patches"] = np.zeros((b, MAX_VIEWS, NUM_JOINTS, p, p, 3), np.uint8)
        for i, (s, t, views) in enumerate(items):
            d = self.seqs[s]
            n = len(views)
            det = d["detected"][t, views]
            out["uv"][i, :n] = np.nan_to_num(d["uv"][t, views])
            out["conf"][i, :n] = d["conf"][t, views] * det[:, None]
            out["local"][i, :n] = d["local"][t, views]
            out["left_prob"][i, :n] = d["left_prob"][t, views]
            out["view_mask"][i, :n] = det
            out["K"][i, :n], out["R"][i, :n], out["t"][i, :n] = d["K"][views], d["R"][views], d["t"][views]
            out["joints_world"][i] = d["joints_world"][t]
            out["left"][i] = bool(d["left"])
            if with_patches:
                out["patches"][i, :n] = d["patches"][t, views] * det[:, None, None, None, None]
        return RigBatch(**{k: torch.from_numpy(v) for k, v in out.items()})

    def sample(self, rng: np.random.Generator, batch_size: int, views: tuple[int, int] = (2, MAX_VIEWS)) -> RigBatch:
        """A random batch: random frames, each with a random number of views in ``views`` (inclusive)
        picked evenly around its rig; only frames with >= 1 detected view among the picked ones."""
        items = []
        while len(items) < batch_size:
            s, t = self.index[int(rng.integers(len(self.index)))]
            nv = self.seqs[s]["uv"].shape[1]
            k = int(rng.integers(views[0], min(views[1], nv) + 1))
            idx = view_subset(nv, k, rng)
            if self.seqs[s]["detected"][t, idx].any():
                items.append((s, t, idx))
        return self.batch(items)
