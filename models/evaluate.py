"""Score a depth-benchmark prediction file against ground truth (NYU / ICVL protocol).

``python -m models.evaluate --dataset nyu --pred OUT.txt --gt GT.txt [--frames all|val|fit] [--plot curve.png] [--json]``

Both files are in the benchmark format (one frame per line, ``J x (u, v, d)``), converted to 3D with
the benchmark convention (:func:`models.benchmark_data.benchmark_params`, mm). Prints the mean 3D
joint error (mm, averaged over joints and frames, as the benchmark's ``compute_error.py``), the
per-joint mean error, and the fraction of frames whose **maximum** joint error is within 10/20/40 mm;
``--plot`` writes that success-rate curve (0-80 mm) as a PNG drawn with OpenCV. ``--frames val`` /
``fit`` score only the validation / fit part of :func:`models.benchmark_data.dev_split` (the project
reports validation numbers only); ``all`` (default) scores every frame. The prediction file may have
more lines than the GT (published NYU files cover the full test set): only the first ``len(GT)`` count.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from models.depth_datasets import read_labels, uvd_to_xyz
from models.benchmark_data import DATASETS, benchmark_params, dev_split
from tracker.core.joints import LAYOUT_JOINT_NAMES
from tracker.core.metrics import sequence_joint_errors, success_rate

__all__ = ["THRESHOLDS_MM", "evaluate_xyz", "evaluate_files", "draw_curve", "main"]

#: Thresholds of the success-rate curve, mm.
THRESHOLDS_MM = np.arange(0.0, 80.5, 1.0)


def evaluate_xyz(pred: np.ndarray, gt: np.ndarray, joint_names: tuple[str, ...] | None = None) -> dict:
    """Metrics of ``(N, J, 3)`` mm predictions against GT.

    Returns:
        ``{"frames", "mean_mm", "per_joint_mm" {name: mm}, "success_rate" {"thresholds_mm", "fraction"},
        "within_mm" {"10": f, "20": f, "40": f}}``.
    """
    err = sequence_joint_errors(pred, gt)
    names = joint_names or tuple(str(j) for j in range(err.shape[1]))
    worst = err.max(axis=1)
    curve = success_rate(worst, THRESHOLDS_MM)
    return {
        "frames": int(err.shape[0]),
        "mean_mm": float(err.mean()),
        "per_joint_mm": {n: float(e) for n, e in zip(names, err.mean(axis=0))},
        "success_rate": {"thresholds_mm": THRESHOLDS_MM.tolist(), "fraction": curve.tolist()},
        "within_mm": {str(t): float(success_rate(worst, [t])[0]) for t in (10, 20, 40)},
    }


def evaluate_files(dataset: str, pred_path: Path, gt_path: Path, frames: str = "all") -> dict:
    """Read both files and :func:`evaluate_xyz` the chosen frames ("all", "val" or "fit").

    Raises:
        ValueError: unreadable files, fewer prediction lines than GT lines, or an unknown ``frames``.
    """
    params = benchmark_params(dataset)
    gt = read_labels(gt_path, dataset)
    pred = read_labels(pred_path, dataset)
    if len(pred) < len(gt):
        raise ValueError(f"{pred_path} has {len(pred)} frames but {gt_path} has {len(gt)}: one line per GT frame needed")
    pred = pred[: len(gt)]
    if frames == "all":
        idx = np.arange(len(gt))
    elif frames in ("val", "fit"):
        fit, val = dev_split(len(gt))
        idx = val if frames == "val" else fit
    else:
        raise ValueError(f"--frames must be all, val or fit, got {frames!r}")
    result = evaluate_xyz(uvd_to_xyz(pred[idx], *params), uvd_to_xyz(gt[idx], *params), LAYOUT_JOINT_NAMES[dataset])
    result.update({"dataset": dataset, "pred": str(pred_path), "gt": str(gt_path), "frame_set": frames})
    return result


def draw_curve(curves: dict[str, np.ndarray], path: Path, thresholds: np.ndarray = THRESHOLDS_MM,
               title: str = "") -> None:
    """Draw success-rate curves (fraction 0..1 per threshold, mm) into a 640x480 PNG with OpenCV."""
    w, h, left, right, top, bottom = 640, 480, 70, 20, 40, 60
    img = np.full((h, w, 3), 255, np.uint8)
    x0, x1, y0, y1 = left, w - right, h - bottom, top
    tmax = float(thresholds[-1]) or 1.0
    px = lambda t: int(round(x0 + (x1 - x0) * t / tmax))  # noqa: E731
    py = lambda f: int(round(y0 + (y1 - y0) * f))  # noqa: E731
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(0, 11):
        f = i / 10
        cv2.line(img, (x0, py(f)), (x1, py(f)), (225, 225, 225), 1)
        cv2.putText(img, f"{int(f * 100)}%", (8, py(f) + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for t in range(0, int(tmax) + 1, 10):
        cv2.line(img, (px(t), y0), (px(t), y1), (225, 225, 225), 1)
        cv2.putText(img, str(t), (px(t) - 8, y0 + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    cv2.putText(img, "maximum joint error threshold (mm)", (x0 + 150, h - 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title or "fraction of frames within threshold", (x0, 25), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    colours = [(200, 60, 20), (20, 140, 230), (40, 160, 40), (30, 30, 200), (150, 50, 150), (0, 0, 0)]
    for i, (name, frac) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        pts = np.array([[px(t), py(f)] for t, f in zip(thresholds, frac)], np.int32)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, name[:40], (x0 + 230, y0 - 15 - 18 * (len(curves) - 1 - i)), font, 0.45, colour, 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise ValueError(f"cannot write {path}: use a .png name in a writable folder")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--pred", required=True, type=Path)
    parser.add_argument("--gt", required=True, type=Path)
    parser.add_argument("--frames", default="all", choices=("all", "val", "fit"))
    parser.add_argument("--plot", type=Path, default=None, help="write the success-rate curve here (.png)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    try:
        result = evaluate_files(args.dataset, args.pred, args.gt, args.frames)
        if args.plot:
            draw_curve({args.pred.name: np.array(result["success_rate"]["fraction"])}, args.plot,
                       title=f"{args.dataset} ({args.frames} frames, {result['frames']})")  # fmt: skip
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.dataset} {args.pred.name}: {result['frames']} frames ({args.frames}), mean error {result['mean_mm']:.3f} mm")
    for name, e in result["per_joint_mm"].items():
        print(f"  {name:10s} {e:8.3f} mm")
    print("  frames with max error within " + ", ".join(f"{t} mm: {100 * f:.1f}%" for t, f in result["within_mm"].items()))
    if args.plot:
        print(f"  success-rate curve -> {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
