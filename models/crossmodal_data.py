"""Paired RGB + depth training data for the cross-modal model (:mod:`models.crossmodal`), with the REAL
MediaPipe hand models run on the rendered RGB.

One sample = one frame of a single-view data-engine scene (:mod:`models.synthetic`: random hand
shape, skin tone, pose and action, viewpoint, background wall; sensor-like depth noise), rendered in
colour and depth. The rendered frames of a short clip (``frames`` frames) go through a detector
(:class:`tracker.stages.litert.LiteRTHands` in tracking mode, as the live pipeline runs it, a new
detector per clip), so the inputs carry a real detector's errors; a frame where it finds no hand is
skipped (and counted). For the detected hand:

* ``image`` ``(crop, crop, 3)`` uint8: the square around MediaPipe's 2D landmarks (1.4x their extent),
  resized;
* ``landmarks`` ``(LANDMARK_FEATURES,)``: MediaPipe's 2D landmarks in that square's [0, 1]
  coordinates, its world landmarks in metres, presence and left-hand probability;
* ``points`` ``(points, 3)``: depth readings of the hand region around the reference point
  (:func:`models.depth_crop.reference_from_joints`, seeded by MediaPipe's 2D landmarks), a 250 mm
  cube, ``(p - ref) / POINT_SCALE_MM``, sampled to a fixed count (with repeats when fewer);
* targets: ``pose`` ``(21, 3)`` true joints relative to the palm centre (mean of the wrist and the
  four finger MCPs) in hand sizes (mean wrist -> finger-MCP distance), ``log_size`` (mm),
  ``cloud`` ``(cloud_points, 3)`` the true hand surface (the renderer's hand mask, noise-free depth of
  the same frame) in the points' frame; and for evaluation ``joints_cam`` (21, 3) mm, ``ref`` (3,) mm,
  ``mp_local`` (21, 3) mm (MediaPipe's own world landmarks, the baseline).

Seeds: training from 0, validation from :data:`VAL_SEED_BASE`; never the seeds of
``assets/synth_eval``. Shards are ``.npz`` under ``checkpoints/`` (never committed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.crossmodal import LANDMARK_FEATURES, POINT_SCALE_MM
from tracker.core.geometry import rotation_to_ray
from tracker.core.joints import KNUCKLES, PALM_ROOT
from tracker.core.structures import HandPose

__all__ = ["CrossModalDataConfig", "VAL_SEED_BASE", "hand_targets", "crop_box", "crop_image",
           "landmark_features", "region_points", "sample_points", "hand_rgb_inputs", "hand_depth_inputs",
           "make_clip_samples", "generate_shard", "to_ray_frame", "pack_shards", "load_shards",
           "PACK_RANGE"]  # fmt: skip

log = logging.getLogger(__name__)

VAL_SEED_BASE = 5_000_000


@dataclass(frozen=True)
class CrossModalDataConfig:
    """Sizes of a sample (module docstring)."""

    crop: int = 96
    points: int = 512
    cloud_points: int = 256
    frames: int = 6
    cube_mm: float = 250.0


def hand_targets(joints_mm: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """``(pose (21, 3) relative to the palm centre in hand sizes, log hand size (mm), palm centre (3,) mm)``."""
    root = joints_mm[list(PALM_ROOT)].mean(axis=0)
    size = float(np.linalg.norm(joints_mm[list(KNUCKLES)] - joints_mm[0], axis=1).mean())
    return (joints_mm - root) / size, float(np.log(size)), root


def crop_box(uv: np.ndarray, scale: float = 1.4) -> tuple[float, float, float]:
    """The square crop around a hand's 2D landmarks ``(21, 2)`` px: ``(x0, y0, side)`` px."""
    lo, hi = np.nanmin(uv, axis=0), np.nanmax(uv, axis=0)
    centre = (lo + hi) / 2
    side = float(max(hi - lo) * scale) + 8.0
    return float(centre[0] - side / 2), float(centre[1] - side / 2), side


def landmark_features(uv: np.ndarray, local_mm: np.ndarray, presence: float, left_probability: float,
                      box: tuple[float, float, float]) -> np.ndarray:  # fmt: skip
    """The RGB encoder's landmark input ``(LANDMARK_FEATURES,)`` float32: MediaPipe's 2D landmarks in
    the crop ``box``'s [0, 1] coordinates, its world landmarks (mm in, metres out), presence and the
    probability that the hand is a left hand. The same for training data and the live stage."""
    x0, y0, side = box
    return np.concatenate([((np.asarray(uv) - [x0, y0]) / side).reshape(-1), (np.asarray(local_mm) / 1000.0).reshape(-1),
                           [presence, left_probability]]).astype(np.float32)  # fmt: skip


def crop_image(image: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The square ``box`` (x0, y0, side px) of ``image`` resized to ``size`` px (black outside)."""
    import cv2

    x0, y0, side = box
    m = np.array([[size / side, 0.0, -x0 * size / side], [0.0, size / side, -y0 * size / side]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def region_points(depth: np.ndarray, intr, ref: np.ndarray, cube_mm: float) -> np.ndarray:  # noqa: ANN001
    """Camera-frame points ``(N, 3)`` mm of the depth readings (``depth`` uint16 mm, ``intr`` its
    intrinsics) inside the ``cube_mm`` cube around ``ref`` (3,) mm."""
    half = cube_mm / 2
    corners = np.array([[ref[0] + sx * half, ref[1] + sy * half, max(ref[2] - half, 1.0)]
                        for sx in (-1, 1) for sy in (-1, 1)])  # fmt: skip
    uv = intr.project(corners)
    h, w = depth.shape
    c0, c1 = int(max(0, np.floor(uv[:, 0].min()))), int(min(w, np.ceil(uv[:, 0].max())))
    r0, r1 = int(max(0, np.floor(uv[:, 1].min()))), int(min(h, np.ceil(uv[:, 1].max())))
    if c1 <= c0 or r1 <= r0:
        return np.zeros((0, 3))
    z = depth[r0:r1, c0:c1].astype(np.float64)
    rows, cols = np.nonzero((z > 0) & (np.abs(z - ref[2]) <= half))
    pts = intr.unproject(np.stack([cols + c0 + 0.5, rows + r0 + 0.5], axis=1), z[rows, cols])
    return pts[(np.abs(pts[:, :2] - ref[:2]) <= half).all(axis=1)]


def sample_points(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``points`` drawn at random (with repeats when there are fewer)."""
    return points[rng.choice(len(points), n, replace=len(points) < n)]


def hand_rgb_inputs(image: np.ndarray, hand: HandPose, crop: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The RGB encoder's inputs for one MediaPipe hand (it needs ``joints_local``): the landmark features
    (:func:`landmark_features`, with the probability that it is a left hand; 0.5 when the handedness
    is unknown) and its square crop of ``image`` (``crop`` px; None when ``crop`` is 0). The same for
    the training data and the live stage."""
    if hand.handedness == "unknown":
        left = 0.5
    else:
        left = hand.handedness_score if hand.handedness == "left" else 1.0 - hand.handedness_score
    box = crop_box(hand.joints_2d)
    features = landmark_features(hand.joints_2d, hand.joints_local, hand.score, left, box)
    return features, (crop_image(image, box, crop) if crop else None)


def hand_depth_inputs(depth: np.ndarray, intr, joints_2d: np.ndarray, points: int, cube_mm: float,  # noqa: ANN001
                      min_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """The depth encoder's input for one hand: ``points`` depth readings of the ``cube_mm`` cube around the
    hand's depth reference point (:func:`models.depth_crop.reference_from_joints`, seeded by its 2D
    joints, px), ``(p - ref) / POINT_SCALE_MM`` (float64) in the camera's axes, and ``ref`` (3,) mm; None
    without a reference point or with fewer than ``min_points`` readings. The same for the training data
    and the live stage (which turns the points into the ray frame, as :func:`to_ray_frame` does)."""
    from models.depth_crop import reference_from_joints

    ref = reference_from_joints(depth, intr, joints_2d)
    if ref is None:
        return None
    pts = region_points(depth, intr, ref, cube_mm)
    if len(pts) < min_points:
        return None
    return (sample_points(pts, points, rng) - ref) / POINT_SCALE_MM, ref


def make_clip_samples(seed: int, detector_factory, config: CrossModalDataConfig = CrossModalDataConfig()
                      ) -> tuple[list[dict[str, np.ndarray]], int]:  # noqa: ANN001  # fmt: skip
    """The samples of one clip (module docstring) and the number of frames without a detection."""
    from models.render import RenderConfig
    from models.synthetic import SENSOR_LIKE, SceneConfig, render_view, sample_scene

    scene = sample_scene(seed, SceneConfig(num_frames=config.frames, layout="single"))
    cam = scene.cameras[0]
    intr = cam.intrinsics
    rng = np.random.default_rng([seed, 0xC3])
    detector = detector_factory()
    out, missed = [], 0
    try:
        for t in range(config.frames):
            r = render_view(scene, t, 0, SENSOR_LIKE)
            hands = detector.detect(r.rgb, t / 30.0)
            if not hands:
                missed += 1
                continue
            hand = max(hands, key=lambda h: h.score)
            depth_in = None if hand.joints_local is None else hand_depth_inputs(
                r.depth, intr, hand.joints_2d, config.points, config.cube_mm, 32, rng)  # fmt: skip
            if depth_in is None:
                missed += 1
                continue
            points, ref = depth_in
            clean = render_view(scene, t, 0, RenderConfig())
            surf_mask = (clean.mask == 1) & (clean.depth > 0)
            rows, cols = np.nonzero(surf_mask)
            surface = intr.unproject(np.stack([cols + 0.5, rows + 0.5], axis=1), clean.depth[rows, cols].astype(float))
            surface = surface[(np.abs(surface - ref) <= config.cube_mm / 2).all(axis=1)]  # the hand, not the arm
            if len(surface) < 32:
                missed += 1
                continue
            lm, image = hand_rgb_inputs(r.rgb, hand, config.crop)
            joints = r.joints_cam[0]
            pose, log_size, _ = hand_targets(joints)
            out.append({
                "image": image,
                "landmarks": lm,
                "points": points.astype(np.float32),
                "cloud": ((sample_points(surface, config.cloud_points, rng) - ref) / POINT_SCALE_MM).astype(np.float32),
                "pose": pose.astype(np.float32), "log_size": np.float32(log_size),
                "joints_cam": joints.astype(np.float32), "ref": ref.astype(np.float32),
                "mp_local": np.asarray(hand.joints_local, np.float32),
            })  # fmt: skip
    finally:
        close = getattr(detector, "close", None)
        if close is not None:
            close()
    assert all(s["landmarks"].shape == (LANDMARK_FEATURES,) for s in out)
    return out, missed


def generate_shard(path: str | Path, seeds: range, detector_factory, config: CrossModalDataConfig = CrossModalDataConfig()
                   ) -> dict:  # noqa: ANN001  # fmt: skip
    """Samples of the clips of ``seeds`` -> one ``.npz`` (arrays stacked per key); returns counts."""
    samples, missed = [], 0
    for s in seeds:
        got, m = make_clip_samples(s, detector_factory, config)
        samples += got
        missed += m
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.stack([x[k] for x in samples]) for k in samples[0]} if samples else {}
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return {"samples": len(samples), "missed": missed, "frames": len(seeds) * config.frames}


def to_ray_frame(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The samples with ``pose``, ``points`` and ``cloud`` turned from the camera's axes into the frame
    of the viewing ray through each sample's reference point (:func:`tracker.core.geometry.rotation_to_ray`:
    +z along the ray). The model sees a crop and crop-relative landmarks, not where the hand is in the
    image, so it learns the hand as seen along its ray; the metric lift turns the shape back onto the
    ray through the hand (:func:`tracker.stages.lift.ray_rotation`), as it does MediaPipe's world
    landmarks (which are in that frame too). The ``cloud`` target is also moved from the reference point
    to the palm centre, the origin of ``pose``, so that the decoded surface lies in the pose's frame
    (mm = cloud x ``POINT_SCALE_MM``). Other keys are unchanged (``joints_cam`` stays camera frame)."""
    ref = data["ref"].astype(np.float64)
    rot = np.stack([rotation_to_ray(r) for r in ref])  # (N, 3, 3): ray -> camera
    palm = data["joints_cam"][:, list(PALM_ROOT)].astype(np.float64).mean(axis=1)
    cloud = data["cloud"].astype(np.float64) + ((ref - palm) / POINT_SCALE_MM)[:, None]
    out = dict(data)
    for key, value in (("pose", data["pose"]), ("points", data["points"]), ("cloud", cloud)):
        out[key] = np.einsum("nki,nij->nkj", value.astype(np.float64), rot).astype(np.float32)  # R.T @ p per row
    return out


#: Quantisation of packed points and clouds: uint8 steps over [-PACK_RANGE, PACK_RANGE] (the cube's half
#: side in ``POINT_SCALE_MM`` units; 1 step ~ 1 mm).
PACK_RANGE = 1.25


def pack_shards(folder: str | Path, out: str | Path, crop: int = 64, points: int = 256, cloud_points: int = 128,
                quality: int = 85, seed: int = 0) -> dict:  # fmt: skip
    """A compact copy of the shards of ``folder`` in one ``.npz`` (to move the data set to another
    machine, e.g. a GPU one): crops resized to ``crop`` px and JPEG-coded, ``points`` / ``cloud_points``
    of each sample's points kept (a random subset) and quantised to uint8 (:data:`PACK_RANGE`), the
    other arrays as float16 (joints: 0.5 mm at most) / float32, zip-compressed. :func:`load_shards` reads it back (``out`` instead of a folder).
    Returns sizes."""
    import cv2

    data = load_shards(folder)
    rng = np.random.default_rng(seed)
    n = len(data["pose"])
    jpegs = []
    for img in data["image"]:
        small = img if img.shape[0] == crop else cv2.resize(img, (crop, crop), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(small[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        jpegs.append(buf.reshape(-1))
    offsets = np.cumsum([0] + [len(j) for j in jpegs])

    def subset(key: str, m: int) -> np.ndarray:
        idx = np.stack([rng.choice(data[key].shape[1], m, replace=False) for _ in range(n)])
        x = np.take_along_axis(data[key], idx[..., None], axis=1)
        return np.round((np.clip(x, -PACK_RANGE, PACK_RANGE) + PACK_RANGE) / (2 * PACK_RANGE) * 255).astype(np.uint8)

    arrays = {"jpeg": np.concatenate(jpegs), "jpeg_offsets": offsets, "points_u8": subset("points", points),
              "cloud_u8": subset("cloud", cloud_points), "landmarks": data["landmarks"].astype(np.float16),
              "pose": data["pose"].astype(np.float16), "log_size": data["log_size"],
              "joints_cam": data["joints_cam"].astype(np.float16), "ref": data["ref"],
              "mp_local": data["mp_local"].astype(np.float16)}  # fmt: skip
    out = Path(out)
    np.savez_compressed(out, **arrays)
    return {"samples": n, "bytes": out.stat().st_size}


def _unpack(blob: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import cv2

    jpeg, off = blob["jpeg"], blob["jpeg_offsets"]
    images = np.stack([cv2.imdecode(jpeg[off[i] : off[i + 1]], cv2.IMREAD_COLOR)[..., ::-1] for i in range(len(off) - 1)])
    deq = lambda q: (q.astype(np.float32) / 255.0 * (2 * PACK_RANGE) - PACK_RANGE).astype(np.float32)  # noqa: E731
    return {"image": np.ascontiguousarray(images), "landmarks": blob["landmarks"].astype(np.float32),
            "points": deq(blob["points_u8"]), "cloud": deq(blob["cloud_u8"]), "pose": blob["pose"].astype(np.float32),
            "log_size": blob["log_size"], "joints_cam": blob["joints_cam"].astype(np.float32), "ref": blob["ref"],
            "mp_local": blob["mp_local"].astype(np.float32)}  # fmt: skip


def load_shards(folder: str | Path, pattern: str = "*.npz") -> dict[str, np.ndarray]:
    """Every shard of ``folder`` concatenated; or the samples of a :func:`pack_shards` file."""
    if Path(folder).is_file():
        return _unpack(dict(np.load(folder)))
    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no cross-modal data shards in {folder}; make them with scripts/train_crossmodal.py")
    parts = [dict(np.load(f)) for f in files]
    parts = [p for p in parts if p]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

