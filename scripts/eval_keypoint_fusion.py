#!/usr/bin/env python
"""Offline triangulator on clean synthetic keypoints: ``--method fusion`` vs RANSAC.

For the rigs of synthetic scenes (ring layout, 2/3/4/8 cameras, seeds 40-51, 4 frames each) the
ground-truth 21 joints are projected into every camera, Gaussian pixel noise is added (default
3 px) and confidences drawn in [0.6, 1]; no gross errors, no images, no per-view metric 3D — what
a user of another 2D detector hands the offline triangulator. Prints the mean 3D error (mm, world
frame) of :func:`models.hamuco_infer.fuse_keypoints` (the shipped fusion network) and of RANSAC
(:func:`tracker.fusion.triangulate.triangulate_sequence`).

    python scripts/eval_keypoint_fusion.py [--noise-px 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.hamuco_infer import fuse_keypoints  # noqa: E402
from models.registry import load_pretrained  # noqa: E402
from models.synthetic import SceneConfig, sample_scene  # noqa: E402
from tracker.core.metrics import sequence_joint_errors  # noqa: E402
from tracker.fusion.triangulate import TriangulationConfig, triangulate_sequence  # noqa: E402

SEEDS = range(40, 52)
FRAMES = 4


def evaluate(views: int, noise_px: float, model) -> dict[str, float]:
    """Mean joint error (mm) of fusion and RANSAC over :data:`SEEDS` for a ``views``-camera ring."""
    errs: dict[str, list[float]] = {"fusion": [], "ransac": []}
    for seed in SEEDS:
        scene = sample_scene(seed, SceneConfig(num_frames=FRAMES, layout="ring", num_views=views))
        gt = scene.hands[0].joints.astype(np.float64)  # (T, 21, 3) world mm
        rng = np.random.default_rng(seed)
        uv = np.stack([[c.intrinsics.project(c.world_to_camera(gt[t])) for c in scene.cameras]
                       for t in range(FRAMES)])  # fmt: skip
        uv = uv + rng.normal(0.0, noise_px, uv.shape)
        conf = rng.uniform(0.6, 1.0, uv.shape[:3])
        fused = fuse_keypoints(scene.cameras, uv, conf, model)
        tri = triangulate_sequence(scene.cameras, np.transpose(uv, (0, 2, 1, 3)), np.transpose(conf, (0, 2, 1)),
                                   TriangulationConfig())  # fmt: skip
        errs["fusion"].append(float(sequence_joint_errors(fused, gt).mean()))
        errs["ransac"].append(float(np.nanmean(sequence_joint_errors(tri.points, gt))))
    return {k: float(np.mean(v)) for k, v in errs.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--noise-px", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = load_pretrained("hamuco")
    rows = {views: evaluate(views, args.noise_px, model) for views in (2, 3, 4, 8)}
    if args.json:
        print(json.dumps({"noise_px": args.noise_px, "mean_error_mm": rows}, indent=1))
    else:
        print(f"clean synthetic keypoints, {args.noise_px:g} px noise; mean joint error, mm (world)")
        print("views  fusion  ransac")
        for views, r in rows.items():
            print(f"{views:5d}  {r['fusion']:6.1f}  {r['ransac']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
