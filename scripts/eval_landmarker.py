#!/usr/bin/env python
"""Both landmarkers on generated sequences with fast motion and hands leaving and re-entering.

The sequences are made from the bundled demo (120 rendered frames of one right hand with ground
truth 2D joints): every frame goes through a known image transform (shift, rotation), so the
ground truth follows exactly. Nothing is tuned on them. Scenarios (640x480 unless noted):

* ``fast``: the image swings 150 px left-right (period 16 frames, up to ~59 px/frame = 1770 px/s
  at 30 fps) and turns +-25 deg (period 20 frames, up to ~8 deg/frame); the hand stays mostly in view.
* ``reenter``: the hand slides out of the image to the right in 5 frames, stays out 10, slides
  back in 5, stays 20; three times.
* ``two_hands`` (1280x480): the demo on the left, the demo mirrored (a left hand, 40 frames later
  in its motion) on the right; the left-hand image slides out and back as in ``reenter``, the right
  hand stays. Identity switches are counted here.

Each landmarker runs in the full single-view pipeline (landmarks -> metric lift -> identities; no
smoothing, prior or refiner) with the default settings (tracking mode, max 2 hands, full model).
A ground-truth hand is *visible* when at least 15 of its 21 joints lie in the image; a detection
*matches* it when the mean distance over its in-image joints is below 40 px (one-to-one, nearest
first). Reported per scenario and landmarker:

* ``recall``: matched / visible hand-frames; ``false_pos``: detections matching no visible hand;
* ``err_px``: mean 2D error of the matched hands (in-image joints); ``err_common_px``: the same over
  the hand-frames both landmarkers matched;
* ``reacquire``: for each re-entry (a frame where the hand is visible after one where it was not),
  frames until it is matched again (0 = on that frame): mean and max; a hand that leaves again
  before it was found (or is not found by the end) is a missed re-entry;
* ``id_changes``: frames where a hand's track id differs from its previous matched frame's, and
  ``id_swaps``: of those, to an id another hand held.

Usage::

    python scripts/eval_landmarker.py [--frames 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.build import build_pipeline  # noqa: E402
from tracker.config import DepthConfig, TrackerConfig  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics  # noqa: E402
from tracker.io.sources import DEMO_DIR  # noqa: E402
from tracker.stages.landmarks import LandmarkConfig  # noqa: E402

VISIBLE_JOINTS = 15
MATCH_PX = 40.0
GREY = 127


@dataclass(frozen=True)
class Sequence:
    """A generated sequence: ``frames`` RGB uint8 and, per frame, ground truth ``(hands, 21, 2)`` px."""

    name: str
    frames: list[np.ndarray]
    joints: list[np.ndarray]
    hfov_deg: float = 60.0


def read_demo(limit: int) -> tuple[list[np.ndarray], np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO_DIR / "demo.mp4"))
    frames = []
    while len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    gt = np.load(DEMO_DIR / "demo_gt.npz")["joints_2d"][: len(frames)]
    return frames, gt


def _warp(image: np.ndarray, joints: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(GREY, GREY, GREY))  # fmt: skip
    return out, joints @ m[:, :2].T + m[:, 2]


def _slide(t: int) -> float:
    """The ``reenter`` schedule: shift in px to the right at frame ``t`` (0 = in view, 600 = out)."""
    phase = t % 40
    if phase < 5:
        return 600.0 * (phase + 1) / 5
    if phase < 15:
        return 600.0
    if phase < 20:
        return 600.0 * (19 - phase) / 5
    return 0.0


def make_sequences(frames: list[np.ndarray], gt: np.ndarray) -> list[Sequence]:
    """The three scenarios of the module docstring from demo frames and their ground truth."""
    n = len(frames)
    h, w = frames[0].shape[:2]
    fast_f, fast_j, re_f, re_j, two_f, two_j = [], [], [], [], [], []
    for t in range(n):
        angle = 25.0 * math.sin(2 * math.pi * t / 20)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[0, 2] += 150.0 * math.sin(2 * math.pi * t / 16)
        img, j = _warp(frames[t], gt[t], m)
        fast_f.append(img)
        fast_j.append(j[None])
        shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        shift[0, 2] = _slide(t + 20)  # start in view
        img, j = _warp(frames[t], gt[t], shift)
        re_f.append(img)
        re_j.append(j[None])
        # two hands: right half = the demo mirrored, 40 frames later; the left half slides out to the left
        u = (t + 40) % n
        mirrored = np.ascontiguousarray(frames[u][:, ::-1])
        mj = gt[u].copy()
        mj[:, 0] = w - 1 - mj[:, 0]
        left_shift = shift.copy()
        left_shift[0, 2] = -_slide(t + 20)
        img, j = _warp(frames[t], gt[t], left_shift)
        two_f.append(np.hstack([img, mirrored]))
        two_j.append(np.stack([j, mj + [w, 0.0]]))
    return [Sequence("fast", fast_f, fast_j), Sequence("reenter", re_f, re_j),
            Sequence("two_hands", two_f, two_j, hfov_deg=90.0)]  # fmt: skip


def _inside(j: np.ndarray, w: int, h: int) -> np.ndarray:
    return (j[:, 0] >= 0) & (j[:, 0] < w) & (j[:, 1] >= 0) & (j[:, 1] < h)


def evaluate(seq: Sequence, backend: str, redetect_every: int = LandmarkConfig.redetect_every) -> dict:
    """Run one landmarker's pipeline over one sequence and score it (module docstring)."""
    h, w = seq.frames[0].shape[:2]
    cam = Camera("gen", Intrinsics.from_fov(w, h, seq.hfov_deg))
    config = TrackerConfig(landmarks=LandmarkConfig(backend=backend, redetect_every=redetect_every), depth=DepthConfig(estimator="mediapipe"),
                           smoothing=None)  # fmt: skip
    pipeline = build_pipeline(config)
    num_hands = seq.joints[0].shape[0]
    visible_n = matched_n = false_pos = 0
    errors: list[float] = []
    by_frame: dict[tuple[int, int], float] = {}  # (frame, hand) -> error px
    last_id: list[int | None] = [None] * num_hands
    was_visible = [True] * num_hands
    pending: list[int | None] = [None] * num_hands  # frame of an unanswered re-entry
    missed = 0
    reacquire: list[int] = []
    id_changes = id_swaps = 0
    ms: list[float] = []
    try:
        for t, (image, joints) in enumerate(zip(seq.frames, seq.joints)):
            t0 = time.perf_counter()
            hands = pipeline(FrameSet.single(Frame(image, t / 30.0, t, cam))).hands
            ms.append((time.perf_counter() - t0) * 1e3)
            inside = [_inside(j, w, h) for j in joints]
            visible = [int(m.sum()) >= VISIBLE_JOINTS for m in inside]
            pairs = []
            for g, (j, m) in enumerate(zip(joints, inside)):
                if not visible[g]:
                    continue
                for d, hand in enumerate(hands):
                    pairs.append((float(np.linalg.norm(hand.joints_2d[m] - j[m], axis=1).mean()), g, d))
            used_g, used_d, match = set(), set(), {}
            for dist, g, d in sorted(pairs):
                if dist < MATCH_PX and g not in used_g and d not in used_d:
                    used_g.add(g)
                    used_d.add(d)
                    match[g] = (d, dist)
            false_pos += len(hands) - len(used_d)
            for g in range(num_hands):
                if not visible[g]:
                    if pending[g] is not None:
                        missed += 1  # left again before it was found
                    pending[g] = None
                elif not was_visible[g]:
                    pending[g] = t  # re-entry
                was_visible[g] = visible[g]
                if visible[g]:
                    visible_n += 1
                if g in match:
                    matched_n += 1
                    d, dist = match[g]
                    errors.append(dist)
                    by_frame[(t, g)] = dist
                    tid = hands[d].track_id
                    if last_id[g] is not None and tid != last_id[g]:
                        id_changes += 1
                        if any(last_id[o] == tid for o in range(num_hands) if o != g):
                            id_swaps += 1
                    last_id[g] = tid
                    if pending[g] is not None:
                        reacquire.append(t - pending[g])
                        pending[g] = None
    finally:
        pipeline.close()
    missed += sum(x is not None for x in pending)  # still not found when the sequence ended
    return {
        "scenario": seq.name, "landmarker": backend, "frames": len(seq.frames), "visible": visible_n,
        "recall": matched_n / max(visible_n, 1), "false_pos": false_pos,
        "err_px": float(np.mean(errors)) if errors else float("nan"),
        "reentries": len(reacquire) + missed, "missed_reentries": missed, "reacquire_mean": float(np.mean(reacquire)) if reacquire else float("nan"),
        "reacquire_max": int(max(reacquire)) if reacquire else -1,
        "id_changes": id_changes, "id_swaps": id_swaps, "ms_per_frame": float(np.median(ms)),
        "errors_by_frame": by_frame,
    }  # fmt: skip


def common_errors(rows: list[dict]) -> None:
    """Add ``err_common_px`` to each row: its mean error over the hand-frames that every landmarker of
    its scenario matched (a landmarker that also finds the hard frames is not penalised for them)."""
    for scenario in {r["scenario"] for r in rows}:
        group = [r for r in rows if r["scenario"] == scenario]
        keys = set.intersection(*(set(r["errors_by_frame"]) for r in group))
        for r in group:
            r["common"] = len(keys)
            r["err_common_px"] = float(np.mean([r["errors_by_frame"][k] for k in keys])) if keys else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120, help="demo frames per sequence (default: all 120)")
    ap.add_argument("--redetect-every", type=int, default=LandmarkConfig.redetect_every,
                    help="LiteRT: detector period while fewer than max_hands are tracked (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON list instead of the table")
    args = ap.parse_args()
    frames, gt = read_demo(args.frames)
    rows = [evaluate(seq, backend, args.redetect_every) for seq in make_sequences(frames, gt)
            for backend in ("mediapipe", "litert")]  # fmt: skip
    common_errors(rows)
    for r in rows:
        r.pop("errors_by_frame")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'scenario':10s} {'landmarker':10s} {'recall':>7s} {'err px':>7s} {'common':>6s} {'false+':>6s} {'re-entries':>10s} {'missed':>6s} "
          f"{'reacq mean':>10s} {'max':>4s} {'id chg':>6s} {'swaps':>5s} {'ms':>6s}")  # fmt: skip
    for r in rows:
        print(f"{r['scenario']:10s} {r['landmarker']:10s} {r['recall']:7.3f} {r['err_px']:7.2f} {r['err_common_px']:6.2f} {r['false_pos']:6d} "
              f"{r['reentries']:10d} {r['missed_reentries']:6d} {r['reacquire_mean']:10.2f} {r['reacquire_max']:4d} {r['id_changes']:6d} "
              f"{r['id_swaps']:5d} {r['ms_per_frame']:6.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
