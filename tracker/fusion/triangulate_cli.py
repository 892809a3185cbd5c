"""Offline triangulator: calibration TOML + per-camera 2D keypoints -> 3D joints file.

For users of any 2D detector. The calibration is an aniposelib-layout TOML
(:mod:`tracker.io.calibration`); the keypoint and output layouts (JSON / NPZ) are in
:mod:`tracker.io.keypoints`. Cameras are matched by name; calibration cameras absent from the
keypoint file are ignored. Run it as a module from the repository root (or with the root on
``PYTHONPATH``; running the file directly would let ``tracker/core/structures.py`` shadow the standard library)::

    python -m tracker.fusion.triangulate_cli --calibration rig.toml --keypoints kp.json --output joints.npz \\
        [--method dlt|ransac|fusion] [--threshold-px 15] [--min-confidence 0.05] [--sigma-px 2] [--min-views 2]

``--method fusion`` is the learned multi-view fusion (:func:`models.hamuco_infer.fuse_keypoints`, the
shipped ``models/weights/hamuco.pt``): 21 joints in MediaPipe order, at most 8 cameras; it helps
where a detector makes gross errors, RANSAC is more precise on clean keypoints.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import numpy as np

from tracker.core.errors import ModelError
from tracker.io.calibration import load_calibration
from tracker.core.errors import CalibrationError
from tracker.io.keypoints import KeypointFormatError, Keypoints2D, Points3D, load_keypoints, save_points_3d
from tracker.fusion.triangulate import TriangulationConfig, TriangulationError, triangulate_sequence
from tracker.core.structures import Camera

__all__ = ["match_cameras", "triangulate_keypoints", "triangulate_files", "main"]

log = logging.getLogger(__name__)

METHODS = ("dlt", "ransac", "fusion")


def match_cameras(calibration: Sequence[Camera], names: Sequence[str]) -> tuple[Camera, ...]:
    """The calibrated cameras in the order of ``names``.

    Raises:
        CalibrationError: a name that the calibration does not have.
    """
    by_name = {c.name: c for c in calibration}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CalibrationError(f"camera(s) {missing} of the keypoint file are not in the calibration, which has "
                               f"{sorted(by_name)}; rename them in one of the files")  # fmt: skip
    return tuple(by_name[n] for n in names)


def _fusion(cameras: tuple[Camera, ...], kp: Keypoints2D) -> np.ndarray:
    from models.hamuco_infer import FusionError, fuse_keypoints

    try:
        return fuse_keypoints(cameras, kp.points, kp.confidence)
    except ModelError as e:
        raise ModelError(f"--method fusion: {e}; use --method ransac") from e
    except FusionError as e:
        raise TriangulationError(f"--method fusion: {e}") from e


def triangulate_keypoints(
    calibration: Sequence[Camera], kp: Keypoints2D, method: str = "ransac", config: TriangulationConfig | None = None
) -> Points3D:
    """Triangulate every frame of ``kp`` with the cameras of ``calibration`` matched by name.

    Args:
        calibration: the rig's cameras (world -> camera, mm).
        kp: 2D keypoints (pixels of the distorted images).
        method: ``"dlt"``, ``"ransac"`` or ``"fusion"``.
        config: thresholds (its ``method`` is replaced by ``method`` for dlt / ransac).

    Returns:
        :class:`Points3D` in the calibration's world frame, mm. For ``fusion`` the uncertainty,
        reprojection error and inliers are those of RANSAC on the same keypoints.

    Raises:
        CalibrationError: a keypoint camera not in the calibration.
        ModelError: ``fusion`` without a usable model.
        TriangulationError: a bad method or inconsistent shapes.
    """
    if method not in METHODS:
        raise TriangulationError(f"method must be one of {METHODS}, got {method!r}")
    cameras = match_cameras(calibration, kp.cameras)
    base = config or TriangulationConfig()
    tri_method = "dlt" if method == "dlt" else "ransac"
    cfg = TriangulationConfig(**{**base.__dict__, "method": tri_method})
    fused = _fusion(cameras, kp) if method == "fusion" else None
    uv = np.transpose(kp.points, (0, 2, 1, 3))  # (F, J, V, 2)
    conf = np.transpose(kp.confidence, (0, 2, 1))
    tri = triangulate_sequence(cameras, uv, conf, cfg)
    points = tri.points if fused is None else fused
    return Points3D(kp.cameras, kp.joint_names, kp.frame_indices, points, tri.uncertainty_mm, tri.reprojection_px,
                    tri.inliers, method)  # fmt: skip


def triangulate_files(
    calibration: str | os.PathLike[str], keypoints: str | os.PathLike[str], output: str | os.PathLike[str],
    method: str = "ransac", config: TriangulationConfig | None = None,
) -> Points3D:  # fmt: skip
    """Read the calibration and keypoint files, triangulate, write ``output`` (.npz or .json)."""
    result = triangulate_keypoints(load_calibration(calibration), load_keypoints(keypoints), method, config)
    save_points_3d(output, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracker.fusion.triangulate_cli", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--calibration", required=True, help="aniposelib-layout calibration .toml")
    ap.add_argument("--keypoints", required=True, help="2D keypoints .json or .npz (see tracker/keypoints_io.py)")
    ap.add_argument("--output", required=True, help="3D joints file to write, .npz or .json")
    ap.add_argument("--method", choices=METHODS, default="ransac", help="triangulation method (default ransac)")
    d = TriangulationConfig()
    ap.add_argument("--threshold-px", type=float, default=d.threshold_px, help="RANSAC inlier threshold, pixels")
    ap.add_argument("--min-confidence", type=float, default=d.min_confidence, help="ignore detections below this")
    ap.add_argument("--sigma-px", type=float, default=d.sigma_px, help="2D noise of a confidence-1 point, pixels")
    ap.add_argument("--min-views", type=int, default=d.min_views, help="fewest (inlier) views per joint")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        cfg = TriangulationConfig(threshold_px=args.threshold_px, min_confidence=args.min_confidence,
                                  sigma_px=args.sigma_px, min_views=args.min_views)  # fmt: skip
        result = triangulate_files(args.calibration, args.keypoints, args.output, args.method, cfg)
    except (FileNotFoundError, CalibrationError, KeypointFormatError, TriangulationError, ModelError) as e:
        log.error("%s", e)
        return 2
    valid = np.isfinite(result.points_3d).all(axis=-1)
    log.info("%d frames x %d joints: %.1f%% triangulated, median reprojection %.2f px -> %s",
             *valid.shape, 100.0 * valid.mean(),
             float(np.nanmedian(result.reprojection_px)) if valid.any() else float("nan"), args.output)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
