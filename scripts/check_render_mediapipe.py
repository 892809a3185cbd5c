#!/usr/bin/env python
"""Check that MediaPipe Hands detects the hands drawn by :func:`models.render.render`.

The poses are the demo animation of ``scripts/make_demo.py`` (120 frames of a right hand, camera
frame mm). Each view places a camera orbiting the hand about a vertical axis through the mean hand
position (``yaw``, degrees; 180 = the back of the hand) or a horizontal one (``pitch``), renders
every ``--step``-th frame with the project renderer, runs legacy MediaPipe Hands on it and compares
its landmarks with the rendered ground truth ``joints_2d``.

Usage::

    python scripts/check_render_mediapipe.py                      # all views, readable table
    python scripts/check_render_mediapipe.py --views front back --json
    python scripts/check_render_mediapipe.py --save-sheet /tmp/sheet.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # allow ``python scripts/check_render_mediapipe.py`` from anywhere
    sys.path.insert(0, str(_REPO))
if str(_REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(_REPO / "scripts"))

import make_demo  # noqa: E402
from models.render import RenderConfig, RenderHand, make_background, render  # noqa: E402
from tracker.core.joints import EDGES  # noqa: E402
from tracker.core.structures import Camera, Extrinsics  # noqa: E402

#: name -> (yaw, pitch) degrees of the camera orbit about the mean hand position.
VIEWS: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0),
    "yaw+45": (45.0, 0.0),
    "yaw-45": (-45.0, 0.0),
    "yaw+60": (60.0, 0.0),
    "yaw-60": (-60.0, 0.0),
    "pitch+30": (0.0, 30.0),
    "pitch-30": (0.0, -30.0),
    "back": (180.0, 0.0),
    "back+30": (150.0, 0.0),
}


def orbit_camera(yaw_deg: float, pitch_deg: float, pivot: np.ndarray) -> Camera:
    """The demo camera moved on an orbit about ``pivot`` (camera-frame mm of the demo camera):
    world = the demo camera frame, ``X_cam = R (X - pivot) + pivot``, ``R = Rx(pitch) Ry(yaw)``."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]])
    r = rx @ ry
    return Camera("orbit", make_demo.INTRINSICS, Extrinsics(r, pivot - r @ pivot))


def demo_joints() -> np.ndarray:
    """``(120, 21, 3)`` camera-frame joints (mm) of the demo animation."""
    poses = make_demo.animate()
    return np.stack([make_demo.to_camera(make_demo.forward_kinematics(p)[0], p) for p in poses])


def demo_background() -> np.ndarray:
    """The demo script's backdrop as uint8 RGB."""
    return make_demo.background()


def run_view(name: str, joints: np.ndarray, frames_idx: np.ndarray, config: RenderConfig, background: str,
             static: bool, seed: int) -> dict:
    """Render and evaluate one view; returns the numbers and the frames."""
    yaw, pitch = VIEWS[name]
    pivot = joints[:, :, :].reshape(-1, 3).mean(0)
    camera = orbit_camera(yaw, pitch, pivot)
    intr = camera.intrinsics
    rng = np.random.default_rng(seed)
    fixed_bg = demo_background() if background == "demo" else None
    frames, j2, j3, vis, times = [], [], [], [], []
    for i in frames_idx:
        if background == "random":
            bg = make_background(intr.width, intr.height, rng)
        elif background == "grey":
            bg = np.full((intr.height, intr.width, 3), 150, np.uint8)
        else:
            bg = fixed_bg
        t0 = time.perf_counter()
        out = render(camera, [RenderHand(joints[i], "right")], config, rng, bg)
        times.append(time.perf_counter() - t0)
        frames.append(out.rgb)
        j2.append(out.joints_2d[0])
        j3.append(out.joints_cam[0])
        vis.append(out.visible[0])
    gt = {"joints_2d": np.stack(j2), "joints_3d": np.stack(j3), "K": intr.K, "width": intr.width,
          "height": intr.height}
    r = make_demo.evaluate_mediapipe(frames, gt, static)
    vis_a = np.stack(vis)
    det = r.detected
    err = r.err_2d[det]
    res = {
        "view": name, "yaw_deg": yaw, "pitch_deg": pitch, "frames": int(len(frames)),
        "detected": int(det.sum()), "detection_rate": float(det.mean()),
        "mean_2d_error_px": float(np.mean(err)) if det.any() else None,
        "median_2d_error_px": float(np.median(err)) if det.any() else None,
        "mean_2d_error_visible_px": float(np.mean(err[vis_a[det]])) if det.any() and vis_a[det].any() else None,
        "visible_fraction": float(vis_a.mean()),
        "render_ms_median": float(np.median(times) * 1e3),
        "labels": sorted(set(r.labels)),
    }
    return {"result": res, "frames": frames, "gt": gt, "eval": r}


def sheet(views: list[dict], path: Path, per_view: int = 4) -> None:
    """A contact sheet: a row per view of ``per_view`` frames, ground truth skeleton in green and
    MediaPipe's landmarks in red."""
    rows = []
    for v in views:
        n = len(v["frames"])
        pick = np.linspace(0, n - 1, per_view).round().astype(int)
        tiles = []
        for i in pick:
            img = cv2.cvtColor(v["frames"][i], cv2.COLOR_RGB2BGR)
            g = v["gt"]["joints_2d"][i]
            for a, b in EDGES:
                if np.isfinite(g[[a, b]]).all():
                    cv2.line(img, tuple(int(q) for q in g[a]), tuple(int(q) for q in g[b]), (0, 200, 0), 1,
                             cv2.LINE_AA)
            if v["eval"].detected[i]:
                for uv in v["eval"].pred_2d[i]:
                    cv2.circle(img, (int(uv[0]), int(uv[1])), 3, (0, 0, 255), -1, cv2.LINE_AA)
            cv2.putText(img, f"{v['result']['view']} #{i}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2,
                        cv2.LINE_AA)
            tiles.append(img)
        rows.append(np.hstack(tiles))
    full = np.vstack(rows)
    cv2.imwrite(str(path), cv2.resize(full, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS), help="views to check")
    ap.add_argument("--step", type=int, default=0,
                    help="use every STEP-th demo frame (default: 1 for 'front', 4 for the other views)")
    ap.add_argument("--static", action="store_true", help="MediaPipe static_image_mode (default: tracking)")
    ap.add_argument("--background", choices=("demo", "random", "grey"), default="demo",
                    help="the demo's backdrop, a random one per frame (make_background) or plain grey")
    ap.add_argument("--supersample", type=int, default=1, help="RenderConfig.supersample")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random backgrounds")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--save-sheet", type=Path, default=None, metavar="PNG", help="save a contact sheet here")
    args = ap.parse_args(argv)

    joints = demo_joints()
    config = RenderConfig(supersample=args.supersample)
    # compile the kernels before timing
    render(orbit_camera(0.0, 0.0, joints.reshape(-1, 3).mean(0)), [RenderHand(joints[0], "right")], config)
    views = []
    for name in args.views:
        step = args.step or (1 if name == "front" else 4)
        idx = np.arange(0, len(joints), step)
        views.append(run_view(name, joints, idx, config, args.background, args.static, args.seed))
    results = [v["result"] for v in views]
    total = sum(r["frames"] for r in results)
    summary = {
        "mode": "static" if args.static else "tracking", "background": args.background,
        "supersample": args.supersample, "views": results,
        "overall_detection_rate": sum(r["detected"] for r in results) / max(total, 1),
        "render_ms_median": float(np.median([r["render_ms_median"] for r in results])),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"MediaPipe Hands ({summary['mode']}) on rendered demo poses, background {args.background}")
        print(f"{'view':<10s} {'frames':>6s} {'detected':>9s} {'2D err px':>10s} {'(visible)':>10s} "
              f"{'visible':>8s} {'render ms':>10s}")
        for r in results:
            e = "-" if r["mean_2d_error_px"] is None else f"{r['mean_2d_error_px']:.2f}"
            ev = "-" if r["mean_2d_error_visible_px"] is None else f"{r['mean_2d_error_visible_px']:.2f}"
            print(f"{r['view']:<10s} {r['frames']:>6d} {100 * r['detection_rate']:>8.1f}% {e:>10s} {ev:>10s} "
                  f"{100 * r['visible_fraction']:>7.1f}% {r['render_ms_median']:>10.2f}")
        print(f"overall detection rate: {100 * summary['overall_detection_rate']:.1f}%")
    if args.save_sheet is not None:
        sheet(views, args.save_sheet)
        if not args.json:
            print(f"contact sheet: {args.save_sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
