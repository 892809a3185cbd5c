#!/usr/bin/env python
"""Evaluate a trained V2V-PoseNet on the held-out synthetic set: mean 3D error, per joint, PCK curve.

Runs the inference path of the tracker (:class:`models.v2v_infer.V2VEstimator`) on
``assets/synth_eval/single_view.npz`` with the reference points of
:func:`models.v2v_data.eval_reference_points` (depth centre of mass around the ground-truth hand
centre: a detector emulation, the same as in training without its jitter) and writes, next to the
weights unless ``--out`` says otherwise:

* ``eval_<model>.json``: mean / median 3D error (mm), per joint, per action, the PCK curves and the
  inference time per frame (batch 1: voxelization + network + read-out);
* ``eval_<model>_pck.png``: the PCK curves (fraction of frames whose worst joint is within the
  threshold, the V2V-PoseNet paper's plot, and fraction of joints within it).

``--seed`` says where the reference point comes from:

* ``gt`` (default): the centre of mass around the true joints' mean, the training data's detector
  emulation without jitter (the network's own accuracy);
* ``detector``: the live stage (:class:`tracker.stages.v2v.V2VDepthEstimator`) seeded by a hand
  centre off by N(0, ``--seed-noise-mm``) per axis, as a lifted RGB detection would be (the RGB-D
  lift's centroid is ~10-15 mm off on the generated sequences);
* ``depth``: the live stage from a cold start on every frame: the nearest object in the depth image
  and ``--passes`` re-centring passes, no colour and no tracking (the depth-only worst case).

    python scripts/eval_v2v.py checkpoints/v2v_light/v2v_light.pt
    python scripts/eval_v2v.py checkpoints/v2v_light/v2v_light.pt --refine mean --json
    python scripts/eval_v2v.py models/weights/v2v_light.pt --seed depth --out /tmp/v2v_depth_seed
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
#: The committed held-out set (scripts/make_synth_eval.py); evaluation data of the checkout, not of the package.
DEFAULT_EVAL_PATH = _REPO / "assets" / "synth_eval" / "single_view.npz"

from kernels import REFINE_GAUSS, REFINE_MEAN  # noqa: E402
from models.v2v import load_weights  # noqa: E402
from models.v2v_data import V2VDataConfig, eval_reference_points, load_eval_set  # noqa: E402
from models.v2v_infer import V2VEstimator  # noqa: E402
from models.depth_datasets import NYU_INTRINSICS, load_nyu_depth, read_labels, uvd_to_camera  # noqa: E402
from models.benchmark_data import eval_dir, ground_truth_path  # noqa: E402
from tracker.core.data_root import data_root  # noqa: E402
from tracker.core.metrics import joint_errors, mean_joint_error, sequence_joint_errors, success_rate  # noqa: E402
from tracker.core.joints import JOINT_NAMES, NYU_JOINT_NAMES, common_joints  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics  # noqa: E402
from tracker.stages.v2v import V2VDepthEstimator, V2VStageConfig  # noqa: E402

THRESHOLDS_MM = np.arange(0.0, 80.5, 1.0)


def pck_curves(err: np.ndarray, thresholds: np.ndarray = THRESHOLDS_MM) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, joints)``: fraction of frames whose max joint error is <= t, and of joints <= t.

    Args:
        err: ``(N, J)`` errors in mm; a frame with a NaN error counts as a failure.
    """
    e = np.where(np.isfinite(err), err, np.inf)
    return success_rate(e.max(1), thresholds), success_rate(e.ravel(), thresholds)


def plot_pck(path: Path, thresholds: np.ndarray, frames: np.ndarray, joints: np.ndarray, title: str) -> None:
    """PCK curves as a PNG (matplotlib if installed, else drawn with OpenCV)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_pck_cv2(path, thresholds, frames, joints, title)
        return
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    ax.plot(thresholds, 100 * frames, label="frames: all joints within D")
    ax.plot(thresholds, 100 * joints, label="joints within D")
    ax.set_xlabel("distance threshold D (mm)")
    ax.set_ylabel("%")
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_pck_cv2(path: Path, thresholds: np.ndarray, frames: np.ndarray, joints: np.ndarray, title: str) -> None:
    import cv2

    W, H, m = 720, 500, 60
    img = np.full((H, W, 3), 255, np.uint8)
    x0, y0, x1, y1 = m, H - m, W - 20, 40
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    for p in range(0, 101, 20):
        y = int(y0 + (y1 - y0) * p / 100)
        cv2.line(img, (x0, y), (x1, y), (220, 220, 220), 1)
        cv2.putText(img, str(p), (10, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    tmax = float(thresholds[-1])
    for t in range(0, int(tmax) + 1, 10):
        x = int(x0 + (x1 - x0) * t / tmax)
        cv2.putText(img, str(t), (x - 8, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for curve, colour, label in ((frames, (200, 90, 30), "frames"), (joints, (30, 120, 230), "joints")):
        pts = np.stack([x0 + (x1 - x0) * thresholds / tmax, y0 + (y1 - y0) * curve], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, label, (pts[-1, 0] - 60, pts[-1, 1] + (15 if label == "joints" else -8)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)  # fmt: skip
    cv2.putText(img, "distance threshold (mm)", (W // 2 - 90, H - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, title[:90], (x0, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)


def stage_estimates(est: V2VEstimator, es, seed: str, noise_mm: float, passes: int, refpoint: Path | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joints ``(N, 21, 3)``, confidences ``(N, 21)`` and cube centres ``(N, 3)`` from the live stage,
    one cold start per frame (no tracking between the eval set's frames)."""
    stage = V2VDepthEstimator(V2VStageConfig(passes=passes, cold_passes=passes, max_hands=1, min_score=0.0,
                                             refpoint_weights=refpoint), estimator=est)  # fmt: skip
    rng = np.random.default_rng(20261123)
    N = len(es)
    joints = np.full(es.joints.shape, np.nan)
    conf = np.zeros(es.joints.shape[:2], np.float32)
    centres = np.full((N, 3), np.nan)
    H, W = es.depth.shape[1:]
    for n in range(N):
        K = es.K[n]
        cam = Camera("eval", Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], W, H))
        frame = Frame(np.zeros((H, W, 3), np.uint8), float(n), n, cam, es.depth[n])
        hands: list[HandPose] = []
        if seed == "detector":
            guess = es.joints[n] + rng.normal(0.0, noise_mm, 3)
            hands = [HandPose(cam.intrinsics.project(guess), np.ones(21), float(n), joints_3d=guess)]
        stage.reset()
        out = stage(FrameSet.single(frame), hands)
        if out:
            joints[n], conf[n] = out[0].joints_3d, out[0].confidence
            centres[n] = out[0].joints_3d.mean(0)
    return joints, conf, centres


def eval_real_nyu(est: V2VEstimator, root: Path) -> dict | None:
    """The real NYU test frame 1 (``<root>/nyu_test_frame1``): error against its ground truth over the
    joints NYU shares with the MediaPipe order (:func:`tracker.core.joints.common_joints`), with the
    cube seeded by the benchmark's REN hand centre (the usual protocol's crop centre) and by depth
    alone (the live stage's cold start). None when the data is absent."""
    frame_png = root / "nyu_test_frame1" / "depth_1_0000001.png"
    gt_file, centres = ground_truth_path("nyu", root), eval_dir(root) / "nyu" / "centers" / "nyu_center.txt"
    if not (frame_png.is_file() and gt_file.is_file() and centres.is_file()):
        return None
    depth = load_nyu_depth(frame_png)
    gt = uvd_to_camera(read_labels(gt_file, "nyu")[0], NYU_INTRINSICS)  # (14, 3) mm, camera frame
    centre = uvd_to_camera(read_labels(centres, 1)[0], NYU_INTRINSICS)[0]
    i_nyu, i_mp = (list(x) for x in common_joints("nyu"))
    cam = Camera("nyu", NYU_INTRINSICS)
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 0.0, 0, cam, depth)
    out: dict = {"frame": str(frame_png.name), "joints_compared": [NYU_JOINT_NAMES[i] for i in i_nyu]}
    for seed in ("ren_centre", "depth"):
        stage = V2VDepthEstimator(V2VStageConfig(max_hands=1, min_score=0.0), estimator=est)
        hands = []
        if seed == "ren_centre":
            hands = [HandPose(NYU_INTRINSICS.project(np.repeat(centre[None], 21, 0)), np.ones(21), 0.0,
                              joints_3d=np.repeat(centre[None], 21, 0))]  # fmt: skip
        res = stage(FrameSet.single(frame), hands)
        if not res:
            out[seed] = None
            continue
        pred = res[0].joints_3d
        err = joint_errors(pred[i_mp], gt[i_nyu])
        # the network's joints are the MediaPipe/synthetic hand's; NYU's labels sit elsewhere on the
        # same bones (".R" = PIP knuckle, palm/wrist points): after removing the mean offset, what remains
        # is pose error, not convention
        offset = (pred[i_mp] - gt[i_nyu]).mean(0)
        out[seed] = {
            "mean_mm": float(err.mean()),
            "per_joint_mm": {NYU_JOINT_NAMES[i]: float(e) for i, e in zip(i_nyu, err)},
            "centroid_offset_mm": float(np.linalg.norm(offset)),
            "mean_mm_centroid_aligned": mean_joint_error(pred[i_mp] - offset, gt[i_nyu]),
            "mean_confidence": float(res[0].confidence.mean()),
        }
    return out


def time_batch1(est: V2VEstimator, depth: np.ndarray, K: np.ndarray, ref: np.ndarray, n: int = 20) -> float:
    """Median ms of one end-to-end estimate (voxelize + network + read-out), after a warm-up."""
    for _ in range(3):
        est.estimate(depth, K, ref)
    ts = []
    for _ in range(n):
        if est.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        est.estimate(depth, K, ref)
        ts.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(ts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", type=Path, help="weights file written by scripts/train_v2v.py")
    ap.add_argument("--eval-set", type=Path, default=DEFAULT_EVAL_PATH)
    ap.add_argument("--limit", type=int, default=None, help="evaluate this many frames (spread evenly)")
    ap.add_argument("--refine", choices=("gauss", "mean"), default="gauss", help="sub-voxel read-out")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", choices=("gt", "detector", "depth"), default="gt",
                    help="where the reference point comes from (see the module doc)")
    ap.add_argument("--refpoint", type=Path, default=None,
                    help="RefPointNet weights applied to the live stage's reference points (detector/depth seeds); "
                         "default none, to isolate V2V (the live stage uses models/weights/refpoint.pt)")
    ap.add_argument("--seed-noise-mm", type=float, default=15.0, help="detector seed error per axis (mm)")
    ap.add_argument("--passes", type=int, default=None,
                    help="re-centring passes of the live stage (default: the stage's, 1 seeded / 4 cold)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: the weights' folder)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--data", type=Path, default=None,
                    help="real data root for the NYU frame (default: $HANDTRACK_DATA or ../shared/data)")
    args = ap.parse_args(argv)

    dev = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto"
                                                                             else args.device)  # fmt: skip
    device = torch.device(dev)
    model = load_weights(args.weights, device=device)
    name = model.model_name
    est = V2VEstimator(model, device=device, refine=REFINE_GAUSS if args.refine == "gauss" else REFINE_MEAN)
    es = load_eval_set(args.eval_set, args.limit)
    dcfg = V2VDataConfig(cube_mm=est.cube_mm, in_grid=est.grid)
    refs = eval_reference_points(es, dcfg)

    t0 = time.perf_counter()
    if args.seed == "gt":
        joints = np.full(es.joints.shape, np.nan)
        conf = np.zeros(es.joints.shape[:2], np.float32)
        for s in range(0, len(es), args.batch):
            e = est.estimate_batch(es.depth[s:s + args.batch], es.K[s:s + args.batch], refs[s:s + args.batch])
            joints[s:s + args.batch], conf[s:s + args.batch] = e.joints, e.confidence
    else:
        if args.passes is None:
            args.passes = V2VStageConfig.cold_passes if args.seed == "depth" else V2VStageConfig.passes
        joints, conf, _ = stage_estimates(est, es, args.seed, args.seed_noise_mm, args.passes, args.refpoint)
    total_s = time.perf_counter() - t0
    err = sequence_joint_errors(joints, es.joints)
    ok = np.isfinite(err).all(1)
    frames, jpck = pck_curves(err)
    first_ok = int(np.flatnonzero(ok)[0]) if ok.any() else 0
    ms = time_batch1(est, es.depth[first_ok], es.K[first_ok], refs[first_ok])
    ref_err = np.linalg.norm(refs - es.joints.mean(1), axis=1)
    res = {
        "weights": str(args.weights),
        "model": name,
        "config": model.config.to_dict(),
        "eval_set": str(args.eval_set),
        "frames": len(es),
        "failed_frames": int((~ok).sum()),
        "refine": args.refine,
        "seed": args.seed,
        "seed_noise_mm": args.seed_noise_mm if args.seed == "detector" else None,
        "passes": args.passes if args.seed != "gt" else None,
        "refpoint": str(args.refpoint) if args.refpoint else None,
        "mean_mm": float(err[ok].mean()) if ok.any() else None,
        "median_mm": float(np.median(err[ok])) if ok.any() else None,
        "per_joint_mm": {JOINT_NAMES[j]: float(err[ok, j].mean()) for j in range(err.shape[1])} if ok.any() else {},
        "per_action_mm": {str(a): float(err[ok & (es.action == a)].mean()) for a in np.unique(es.action)
                          if (ok & (es.action == a)).any()},  # fmt: skip
        "visible_mean_mm": float(err[ok][es.visible[ok]].mean()) if ok.any() else None,
        "hidden_mean_mm": float(err[ok][~es.visible[ok]].mean()) if (ok.any() and (~es.visible[ok]).any()) else None,
        "ref_point_error_mm": float(np.nanmean(ref_err)),
        "mean_confidence": float(conf[ok].mean()) if ok.any() else 0.0,
        "pck_thresholds_mm": THRESHOLDS_MM.tolist(),
        "pck_frames": frames.tolist(),
        "pck_joints": jpck.tolist(),
        "frames_within_20mm": float(np.interp(20.0, THRESHOLDS_MM, frames)),
        "frames_within_40mm": float(np.interp(40.0, THRESHOLDS_MM, frames)),
        "batched_ms_per_frame": 1000.0 * total_s / len(es),
        "batch1_ms_per_frame": ms,
        "real_nyu_frame": eval_real_nyu(est, args.data or data_root()),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                 f" ({torch.get_num_threads()} threads)"),
    }
    out = args.out or args.weights.parent
    out.mkdir(parents=True, exist_ok=True)
    tag = name if args.seed == "gt" else f"{name}_seed_{args.seed}" + ("_refpoint" if args.refpoint else "")
    (out / f"eval_{tag}.json").write_text(json.dumps(res, indent=1) + "\n")
    png = out / f"eval_{tag}_pck.png"
    title = (f"{name} ({args.seed} seed) on {Path(args.eval_set).name} ({len(es)} frames): mean {res['mean_mm']:.1f} mm"
             if res["mean_mm"] is not None else f"{name}: no estimate")
    plot_pck(png, THRESHOLDS_MM, frames, jpck, title)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{name} ({args.weights}) on {args.eval_set} ({len(es)} frames, refine {args.refine}, {res['device']})")
    if res["mean_mm"] is None:
        print("no frame produced an estimate")
        return 1
    print(f"mean 3D error {res['mean_mm']:.2f} mm, median {res['median_mm']:.2f} mm, failed frames "
          f"{res['failed_frames']}; visible joints {res['visible_mean_mm']:.2f} mm, hidden "
          f"{res['hidden_mean_mm'] if res['hidden_mean_mm'] is None else round(res['hidden_mean_mm'], 2)} mm; "
          f"reference point {res['ref_point_error_mm']:.1f} mm from the hand centre")  # fmt: skip
    print(f"frames with every joint within 20 / 40 mm: {100 * res['frames_within_20mm']:.1f} / "
          f"{100 * res['frames_within_40mm']:.1f} %; batch-1 end to end {ms:.1f} ms/frame")
    nyu = res["real_nyu_frame"]
    if nyu is None:
        print("real NYU frame: data not found (skipped)")
    else:
        for seed in ("ren_centre", "depth"):
            r = nyu[seed]
            print(f"real NYU frame 1, {seed} seed: " + ("no hand found" if r is None else
                  f"{r['mean_mm']:.1f} mm over {len(nyu['joints_compared'])} shared joints "
                  f"({r['mean_mm_centroid_aligned']:.1f} mm after removing a {r['centroid_offset_mm']:.1f} mm "
                  "mean offset)"))  # fmt: skip
    print(f"{'joint':<12} {'mean mm':>8}")
    for k, v in res["per_joint_mm"].items():
        print(f"{k:<12} {v:8.2f}")
    print(f"{'action':<12} {'mean mm':>8}")
    for k, v in res["per_action_mm"].items():
        print(f"{k:<12} {v:8.2f}")
    print(f"wrote {out / f'eval_{tag}.json'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
