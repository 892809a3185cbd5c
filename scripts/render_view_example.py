"""Render one example picture of the tracker view (the README's ``docs/view.png``), offscreen.

Two synthetic hands (a right hand in a relaxed grasp and a left hand pointing) are posed in
millimetres in front of an uncalibrated 640x480 webcam, projected with its intrinsics, and painted
as soft silhouettes onto a dim backdrop, so the 2D skeletons sit on something hand-like.

    python scripts/render_view_example.py --out docs/view.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.core.joints import EDGES, FINGERS, NUM_JOINTS  # noqa: E402
from tracker.runtime.stats import LoopStats, StageStats  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet, HandPose, Intrinsics  # noqa: E402

logger = logging.getLogger("render_view_example")

# Hand-local frame (mm): origin at the wrist, +y towards the fingers, +x towards the thumb side of a
# right hand, +z out of the palm. Per finger: root offset from the wrist, splay (deg, about z),
# phalanx lengths root->tip.
_ROOTS = {
    "thumb": ((22.0, 18.0, 8.0), 50.0, (38.0, 32.0, 28.0)),
    "index": ((24.0, 86.0, 0.0), 8.0, (42.0, 25.0, 21.0)),
    "middle": ((4.0, 90.0, 0.0), 0.0, (46.0, 29.0, 22.0)),
    "ring": ((-15.0, 84.0, 0.0), -8.0, (42.0, 27.0, 22.0)),
    "pinky": ((-31.0, 74.0, 0.0), -17.0, (34.0, 20.0, 19.0)),
}


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def hand_local(curl_deg: dict[str, tuple[float, float, float]], mirror: bool = False) -> np.ndarray:
    """21 joints (mm) in the hand-local frame for per-finger flexion angles of the three joints."""
    joints = np.zeros((NUM_JOINTS, 3))
    for name, chain in FINGERS.items():
        root, splay, lengths = _ROOTS[name]
        joints[chain[0]] = root
        frame = _rot("z", -splay)
        if name == "thumb":
            frame = frame @ _rot("y", -35.0)
        p = np.asarray(root, dtype=float)
        for joint, length, flex in zip(chain[1:], lengths, curl_deg[name], strict=True):
            frame = frame @ _rot("x", flex)  # flexion bends the finger towards +z (the palm side)
            p = p + frame @ np.array([0.0, length, 0.0])
            joints[joint] = p
    if mirror:  # a left hand is the mirror image of a right hand
        joints[:, 0] *= -1.0
    return joints


def place(local: np.ndarray, yaw: float, pitch: float, roll: float, wrist_mm: tuple[float, float, float]) -> np.ndarray:
    """Hand-local joints -> OpenCV camera frame (mm); the unrotated hand stands upright, palm to the camera."""
    upright = np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # +y up in the image, palm -> camera
    r = _rot("y", yaw) @ _rot("x", pitch) @ _rot("z", roll) @ upright
    return local @ r.T + np.asarray(wrist_mm)


def backdrop(intr: Intrinsics, hands_2d: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A dim room-like gradient with soft skin-coloured silhouettes around the 2D skeletons."""
    h, w = intr.height, intr.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 38 + 30 * (yy / h) + 10 * np.sin(xx / w * np.pi)
    img = np.stack([base * 0.95, base * 0.92, base * 1.05], axis=-1)
    img[int(0.72 * h) :] *= 0.75  # a desk edge
    mask = np.zeros((h, w), np.float32)
    for pts in hands_2d:
        p = np.round(pts).astype(np.int32)
        cv2.fillConvexPoly(mask, cv2.convexHull(p[[0, 1, 2, 5, 9, 13, 17]]), 1.0, lineType=cv2.LINE_AA)
        for a, b in EDGES:
            cv2.line(mask, tuple(p[a]), tuple(p[b]), 1.0, thickness=15, lineType=cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.5)[..., None]
    shade = 0.85 + 0.15 * (1.0 - yy / h)[..., None]
    skin = np.array([196.0, 150.0, 124.0]) * shade
    img = img * (1.0 - mask) + skin * mask
    img += rng.normal(0.0, 2.5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def example_result() -> tuple[FrameResult, LoopStats]:
    """A frame result with two hands and plausible loop statistics."""
    rng = np.random.default_rng(7)
    intr = Intrinsics.from_fov(640, 480, hfov_deg=62.0)
    relaxed = {"thumb": (10.0, 15.0, 10.0), "index": (20.0, 15.0, 8.0), "middle": (28.0, 22.0, 10.0),
               "ring": (38.0, 30.0, 14.0), "pinky": (45.0, 35.0, 15.0)}  # fmt: skip
    pointing = {"thumb": (25.0, 30.0, 20.0), "index": (5.0, 4.0, 2.0), "middle": (85.0, 95.0, 40.0),
                "ring": (88.0, 95.0, 40.0), "pinky": (85.0, 90.0, 40.0)}  # fmt: skip
    right = place(hand_local(relaxed), yaw=-25.0, pitch=15.0, roll=-12.0, wrist_mm=(-90.0, 95.0, 470.0))
    left = place(hand_local(pointing, mirror=True), yaw=30.0, pitch=-10.0, roll=20.0, wrist_mm=(120.0, 110.0, 540.0))
    conf_r = np.clip(rng.normal(0.93, 0.05, NUM_JOINTS), 0.0, 1.0)
    conf_l = np.clip(rng.normal(0.8, 0.12, NUM_JOINTS), 0.0, 1.0)
    conf_l[[14, 15, 16]] = (0.45, 0.3, 0.2)  # an occluded ring finger
    hands_3d = [right, left]
    hands_2d = [intr.project(j) + rng.normal(0.0, 0.8, (NUM_JOINTS, 2)) for j in hands_3d]
    camera = Camera("webcam:0", intr)
    frame = Frame(backdrop(intr, hands_2d, rng), timestamp=41.233, index=1237, camera=camera)
    hands = (
        HandPose(hands_2d[0], conf_r, frame.timestamp, joints_3d=right, score=0.97, handedness="right",
                 handedness_score=0.98, track_id=3),
        HandPose(hands_2d[1], conf_l, frame.timestamp, joints_3d=left, score=0.91, handedness="left",
                 handedness_score=0.95, track_id=4),
    )  # fmt: skip
    result = FrameResult(FrameSet.single(frame), hands, {"detect": 4.1, "landmarks": 7.9, "lift3d": 1.2}, 16.4)
    p50s = {"detect": 4.0, "landmarks": 8.1, "lift3d": 1.3, "smooth": 0.2, "total": 14.2, "latency": 17.5}
    stages = {name: StageStats(p50, p50 * 1.4, p50 * 1.1, 300) for name, p50 in p50s.items()}
    return result, LoopStats(fps=29.8, captured=1240, processed=1236, dropped=4, stages=stages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/view.png"), help="PNG to write")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 520), metavar=("W", "H"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from tracker.view import TrackerView, use_backend

    use_backend(headless=True)
    result, stats = example_result()
    with TrackerView(size=tuple(args.size)) as view:
        view.update(result, stats)
        image = view.render()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    logger.info("wrote %s (%dx%d)", args.out, image.shape[1], image.shape[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
