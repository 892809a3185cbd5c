"""Benchmark: the Numba kernels against vectorised NumPy (the baseline) and PyTorch (CPU) versions.

Inputs are what the depth and rig paths see per frame:

* a 640x480 uint16 depth frame (NYU Kinect intrinsics) of a synthetic hand about 400 mm away,
  with its forearm, a wall at 1 m, sensor noise and holes;
* its 88^3 occupancy grid in a 250 mm cube around the hand's centre of mass;
* 21 heatmaps of 44^3 (Gaussians plus noise, as a network would output);
* 21 joints seen by 8 cameras (DLT).

NumPy versions are :mod:`kernels.reference` (vectorised; the voxelisation one is given the same
pixel crop as the kernel so the comparison is fair); torch versions are written here, the natural
tensor formulation of each kernel (``nonzero`` / ``index_put_`` / broadcasting / ``argmax`` +
``gather`` / batched ``linalg.svd``), with input tensors prepared outside the timed call. Each call is
timed alone after a warm-up (Numba compile, torch init); rounds alternate the implementations so
machine noise hits all alike; medians over all calls are reported. ``ratio`` = baseline / ours
(> 1: Numba is faster).

The cases are a registry (:data:`CASES`): a :class:`Case` is a name plus a ``setup()`` returning the
zero-argument callables to time, so a new kernel is one more entry (the renderer has no NumPy
version: its row has no baseline).

    python bench/kernels.py [--rounds 5] [--reps 40] [--only voxelize_depth,...] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kernels as K  # noqa: E402
from bench._common import machine_info, observe, print_json, ring_cameras, time_alternating, timed_row  # noqa: E402
from kernels import reference as R  # noqa: E402
from tracker.fusion.triangulate import projection_matrices  # noqa: E402

FX, FY, CX, CY = 588.03, 587.07, 320.0, 240.0  # NYU hand data set (Kinect v1), 640x480
H, W = 480, 640
CUBE_MM, D_IN, D_OUT, SIGMA = 250.0, 88, 44, 1.7
N_JOINTS, N_VIEWS = 21, 8


# ----------------------------------------------------------------------------------------- inputs


def _sphere_depth(centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Z (mm) of the nearest sphere along each pixel's ray, inf where none: ``(H, W)`` float64."""
    u = np.arange(W) + 0.5
    v = np.arange(H) + 0.5
    dx = ((u - CX) / FX)[None, :]
    dy = ((v - CY) / FY)[:, None]
    dd = dx * dx + dy * dy + 1.0
    z = np.full((H, W), np.inf)
    for c, r in zip(centres, radii):
        b = dx * c[0] + dy * c[1] + c[2]
        disc = b * b - dd * (c @ c - r * r)
        t = (b - np.sqrt(np.maximum(disc, 0.0))) / dd
        z = np.where((disc > 0) & (t > 0) & (t < z), t, z)
    return z


def hand_depth_frame(seed: int = 0) -> np.ndarray:
    """A 640x480 uint16 mm depth frame: an open hand ~400 mm away, forearm, wall at 1 m, noise, holes."""
    rng = np.random.default_rng(seed)
    palm = np.array([0.0, 10.0, 400.0])
    centres, radii = [], []
    for a in np.linspace(-35, 35, 5):  # palm: a slab of spheres
        for b in np.linspace(-30, 30, 4):
            centres.append(palm + [a, b, 5.0])
            radii.append(16.0)
    fingers = [(-45, -0.9, 60), (-25, -0.15, 75), (0, 0.0, 85), (22, 0.12, 78), (40, 0.3, 62)]  # x, angle, mm
    for f, (x0, ang, length) in enumerate(fingers):
        base = palm + [x0, -30.0 if f else 5.0, 0.0]
        direction = np.array([np.sin(ang), -np.cos(ang), -0.25])
        direction /= np.linalg.norm(direction)
        for s in np.linspace(0, length, 10):  # a finger: a chain of tapering spheres
            centres.append(base + s * direction)
            radii.append(9.0 - 2.5 * s / length)
    for s in np.linspace(40, 260, 12):  # forearm going down and away
        centres.append(palm + [0.0, s, 0.6 * s])
        radii.append(28.0 + 0.05 * s)
    z = _sphere_depth(np.array(centres), np.array(radii))
    z = np.where(np.isinf(z), 1000.0, z)  # the wall
    z += rng.normal(0.0, 1.5, z.shape) * (z / 400.0) ** 2  # Kinect-like noise growing with depth^2
    depth = np.round(z).astype(np.uint16)
    depth[rng.random(depth.shape) < 0.03] = 0  # holes
    return depth


# ----------------------------------------------------------------------------------- torch versions


def _torch():
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def torch_depth_setup(depth: np.ndarray, crop: tuple[int, int, int, int] | None = None):
    """Depth as an int32 tensor plus the per-column / per-row ray factors (prepared once)."""
    torch = _torch()
    r0, r1, c0, c1 = crop if crop is not None else (0, H, 0, W)
    d = torch.from_numpy(depth[r0:r1, c0:c1].astype(np.int32))
    kx = torch.from_numpy((np.arange(c0, c1) + 0.5 - CX) / FX)
    ky = torch.from_numpy((np.arange(r0, r1) + 0.5 - CY) / FY)
    return d, kx, ky


def torch_depth_to_points(d, kx, ky, near=0.0, far=float("inf")):
    torch = _torch()
    z = d.to(torch.float64)
    rows, cols = torch.nonzero((d != 0) & (z >= near) & (z <= far), as_tuple=True)
    zz = z[rows, cols]
    return torch.stack([kx[cols] * zz, ky[rows] * zz, zz], dim=1).to(torch.float32)


def torch_center_of_mass(d, kx, ky, near=0.0, far=float("inf")):
    torch = _torch()
    z = d.to(torch.float64)
    z = torch.where((d != 0) & (z >= near) & (z <= far), z, torch.zeros_like(z))
    n = (z > 0).sum()
    return torch.stack([(z * kx[None, :]).sum(), (z * ky[:, None]).sum(), z.sum()]) / n, n


def torch_voxelize(points, ref: np.ndarray, cube: float, D: int):
    """Occupancy from an ``(N, 3)`` float64 point tensor via ``index_put_``."""
    torch = _torch()
    lo = torch.from_numpy(ref - 0.5 * cube)
    e = (points - lo) * (D / cube)
    e = e[((e >= 0) & (e < D)).all(dim=1)].to(torch.int64)
    grid = torch.zeros(D * D * D, dtype=torch.uint8)
    grid[(e[:, 0] * D + e[:, 1]) * D + e[:, 2]] = 1
    return grid.view(D, D, D)


def torch_voxelize_depth(d, kx, ky, ref: np.ndarray, cube: float, D: int):
    torch = _torch()
    z = d.to(torch.float64)
    rows, cols = torch.nonzero(d != 0, as_tuple=True)
    zz = z[rows, cols]
    return torch_voxelize(torch.stack([kx[cols] * zz, ky[rows] * zz, zz], dim=1), ref, cube, D)


def torch_gaussian_heatmaps(joints, ref: np.ndarray, cube: float, D: int, sigma: float):
    torch = _torch()
    g = (joints - torch.from_numpy(ref - 0.5 * cube)) * (D / cube) - 0.5  # (J, 3) float64
    ax = torch.arange(D, dtype=torch.float64)
    e = torch.exp(-((ax[None, None, :] - g[:, :, None]) ** 2) / (2 * sigma * sigma))  # (J, 3, D)
    h = e[:, 0, :, None, None] * e[:, 1, None, :, None] * e[:, 2, None, None, :]
    h = torch.nan_to_num(h, nan=0.0)
    return h.to(torch.float32)


def torch_subvoxel_argmax(h, ref: np.ndarray, cube: float, radius: int = 1):
    torch = _torch()
    J, D = h.shape[0], h.shape[1]
    flat = h.reshape(J, -1)
    t = torch.nan_to_num(flat, nan=-float("inf")).argmax(dim=1)
    best = flat.gather(1, t[:, None])[:, 0]
    centre = torch.stack([t // (D * D), (t // D) % D, t % D], dim=1)  # (J, 3)
    off = torch.arange(-radius, radius + 1)
    win = torch.stack(torch.meshgrid(off, off, off, indexing="ij"), dim=-1).reshape(-1, 3)
    idx = centre[:, None, :] + win[None]  # (J, K, 3)
    inside = ((idx >= 0) & (idx < D)).all(dim=2)
    c = idx.clamp(0, D - 1)
    vals = flat.gather(1, (c[..., 0] * D + c[..., 1]) * D + c[..., 2]).to(torch.float64)
    w = torch.where(inside & (vals > 0), vals, torch.zeros_like(vals))
    g = (w[..., None] * idx).sum(dim=1) / w.sum(dim=1, keepdim=True)
    coords = torch.from_numpy(ref - 0.5 * cube) + (g + 0.5) * (cube / D)
    coords[~(best > 0)] = float("nan")
    return coords, torch.where(best > 0, best, torch.zeros_like(best))


def torch_triangulate_dlt(P, uv, w):
    """Batched SVD DLT with the kernel's conditioning (unit planes, RMS offset scale, weights)."""
    torch = _torch()
    usable = (w > 0) & torch.isfinite(w) & torch.isfinite(uv).all(dim=2)
    planes = uv[..., None] * P[None, :, 2:3, :] - P[None, :, :2, :]  # (J, V, 2, 4)
    planes = planes / torch.linalg.vector_norm(planes[..., :3], dim=-1, keepdim=True)
    planes = torch.where(usable[..., None, None], planes, torch.zeros_like(planes))
    n_rows = (2 * usable.sum(dim=1)).clamp(min=1)
    scale = torch.sqrt((planes[..., 3] ** 2).sum(dim=(1, 2)) / n_rows)
    planes = torch.cat([planes[..., :3], planes[..., 3:] / scale[:, None, None, None]], dim=-1)
    A = (planes * torch.where(usable, w, torch.zeros_like(w))[..., None, None]).reshape(len(uv), -1, 4)
    h = torch.linalg.svd(A)[2][:, -1]
    X = scale[:, None] * h[:, :3] / h[:, 3:]
    return torch.where((usable.sum(dim=1) >= 2)[:, None], X, torch.full_like(X, float("nan")))


# ----------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One benchmark: ``setup()`` returns ``{"numba": f, "numpy": f, "torch": f or None}`` of
    zero-argument callables (inputs bound), and ``goal_ms`` is the Numba target per call, if any."""

    name: str
    setup: Callable[[], dict[str, Callable[[], object] | None]]
    what: str
    goal_ms: float | None = None


_FRAME: dict[str, object] = {}


def frame() -> dict[str, object]:
    """The shared inputs, built once: the depth frame, its cube and points."""
    if not _FRAME:
        depth = hand_depth_frame()
        com, _ = K.depth_center_of_mass(depth, FX, FY, CX, CY, 1.0, 200.0, 650.0)
        points = K.depth_to_points(depth, FX, FY, CX, CY)
        in_cube = points[K.points_in_cube(points, com, CUBE_MM)]
        _FRAME.update(depth=depth, ref=com, points=points, in_cube=in_cube)
    return _FRAME


def setup_depth_to_points():
    f = frame()
    td = torch_depth_setup(f["depth"])
    return {
        "numba": lambda: K.depth_to_points(f["depth"], FX, FY, CX, CY),
        "numpy": lambda: R.depth_to_points(f["depth"], FX, FY, CX, CY),
        "torch": lambda: torch_depth_to_points(*td),
    }


def setup_center_of_mass():
    f = frame()
    td = torch_depth_setup(f["depth"])
    return {
        "numba": lambda: K.depth_center_of_mass(f["depth"], FX, FY, CX, CY, 1.0, 200.0, 650.0),
        "numpy": lambda: R.depth_center_of_mass(f["depth"], FX, FY, CX, CY, 1.0, 200.0, 650.0),
        "torch": lambda: torch_center_of_mass(*td, 200.0, 650.0),
    }


def setup_voxelize_depth():
    f = frame()
    depth, ref = f["depth"], f["ref"]
    r0, r1, c0, c1 = K.cube_pixel_bbox(FX, FY, CX, CY, H, W, ref, CUBE_MM)
    crop = np.ascontiguousarray(depth[r0:r1, c0:c1])
    td = torch_depth_setup(depth, (r0, r1, c0, c1))
    return {
        "numba": lambda: K.voxelize_depth(depth, FX, FY, CX, CY, ref, CUBE_MM, D_IN),
        "numpy": lambda: R.voxelize_depth(crop, FX, FY, CX - c0, CY - r0, ref, CUBE_MM, D_IN),
        "torch": lambda: torch_voxelize_depth(*td, ref, CUBE_MM, D_IN),
    }


def setup_voxelize_points():
    f = frame()
    pts, ref = f["points"], f["ref"]
    torch = _torch()
    tp = torch.from_numpy(pts.astype(np.float64))
    return {
        "numba": lambda: K.voxelize_points(pts, ref, CUBE_MM, D_IN),
        "numpy": lambda: R.voxelize_points(pts, ref, CUBE_MM, D_IN),
        "torch": lambda: torch_voxelize(tp, ref, CUBE_MM, D_IN),
    }


def _joints(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    ref = frame()["ref"]
    return np.random.default_rng(seed).normal(0.0, 45.0, (N_JOINTS, 3)) + ref, ref


def setup_gaussian_heatmaps():
    joints, ref = _joints()
    torch = _torch()
    tj = torch.from_numpy(joints)
    return {
        "numba": lambda: K.gaussian_heatmaps(joints, ref, CUBE_MM, D_OUT, SIGMA),
        "numpy": lambda: R.gaussian_heatmaps(joints, ref, CUBE_MM, D_OUT, SIGMA),
        "torch": lambda: torch_gaussian_heatmaps(tj, ref, CUBE_MM, D_OUT, SIGMA),
    }


def setup_subvoxel_argmax():
    joints, ref = _joints()
    h = K.gaussian_heatmaps(joints, ref, CUBE_MM, D_OUT, SIGMA)
    h += np.random.default_rng(2).normal(0.0, 0.02, h.shape).astype(np.float32)  # network-like noise
    torch = _torch()
    th = torch.from_numpy(h)
    return {
        "numba": lambda: K.subvoxel_argmax(h, ref, CUBE_MM, 1),
        "numpy": lambda: R.subvoxel_argmax(h, ref, CUBE_MM, 1),
        "torch": lambda: torch_subvoxel_argmax(th, ref, CUBE_MM, 1),
    }


def setup_triangulate_dlt():
    rng = np.random.default_rng(3)
    target = np.array([0.0, 0.0, 800.0])
    X = rng.normal(0.0, 50.0, (N_JOINTS, 3)) + target
    cameras = ring_cameras(N_VIEWS, target=target)
    P = projection_matrices(cameras)
    uv = observe(cameras, X) + rng.normal(0.0, 1.0, (N_JOINTS, N_VIEWS, 2))
    w = rng.uniform(0.3, 1.0, (N_JOINTS, N_VIEWS))
    torch = _torch()
    tP, tuv, tw = (torch.from_numpy(a) for a in (P, uv, w))
    return {
        "numba": lambda: K.triangulate_dlt(P, uv, w),
        "numpy": lambda: R.triangulate_dlt(P, uv, w),
        "torch": lambda: torch_triangulate_dlt(tP, tuv, tw),
    }


def setup_render():
    """One hand of the demo animation (frame 0, ~450 mm away) at 640x480: the project renderer
    (Numba ray caster: depth + mask + shaded RGB + labels). No baseline: the demo's NumPy z-buffer
    rasteriser it was compared with is gone (``scripts/make_demo.py`` draws with this renderer now),
    so the row reports the time and the 5 ms goal."""
    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    import make_demo

    from models.render import RenderConfig, RenderHand, render
    from tracker.core.structures import Camera

    pose = make_demo.animate()[0]
    joints = make_demo.to_camera(make_demo.forward_kinematics(pose)[0], pose)
    cam = Camera("bench", make_demo.INTRINSICS)
    hands = [RenderHand(joints, "right")]
    cfg = RenderConfig()
    return {
        "numba": lambda: render(cam, hands, cfg),
        "numpy": None,
        "torch": None,
    }


CASES: list[Case] = [
    Case("depth_to_points", setup_depth_to_points, "640x480 frame -> (N, 3) points"),
    Case("depth_center_of_mass", setup_center_of_mass, "640x480 frame, 200-650 mm"),
    Case("voxelize_depth", setup_voxelize_depth, "640x480 frame -> 88^3, 250 mm cube", goal_ms=0.5),
    Case("voxelize_points", setup_voxelize_points, "all frame points -> 88^3"),
    Case("gaussian_heatmaps", setup_gaussian_heatmaps, "21 x 44^3 targets"),
    Case("subvoxel_argmax", setup_subvoxel_argmax, "21 x 44^3, window radius 1", goal_ms=0.3),
    Case("triangulate_dlt", setup_triangulate_dlt, "21 joints x 8 views"),
    Case("render", setup_render, "one hand 640x480: depth + RGB + mask + labels", goal_ms=5.0),
]


# ---------------------------------------------------------------------------------------- timing


def _as_arrays(out: object) -> list[np.ndarray]:
    """An implementation's output as a flat list of float64 arrays (tensors converted)."""
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [np.asarray(o.numpy() if hasattr(o, "numpy") else o, dtype=np.float64) for o in items]


def max_difference(a: object, b: object) -> float:
    """Largest absolute difference between two outputs (NaN matching NaN counts as equal)."""
    worst = 0.0
    for x, y in zip(_as_arrays(a), _as_arrays(b)):
        if x.shape != y.shape:
            return float("inf")
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.where(both_nan, 0.0, np.abs(x - y))
        worst = max(worst, float(np.nanmax(d, initial=0.0)) if not np.isnan(d).any() else float("inf"))
    return worst


def time_case(case: Case, rounds: int, reps: int) -> dict:
    """Per-call times (ms) of each implementation: warm-up, then ``rounds`` alternating rounds.

    The warm-up outputs are compared with Numba's (``max_diff_*``: largest absolute difference).
    """
    fns = {k: f for k, f in case.setup().items() if f is not None}
    outputs, times = time_alternating(fns, rounds, reps)  # warm-up: compile, caches, torch init
    med = {k: float(np.median(v)) for k, v in times.items()}
    ours = med["numba"]
    return timed_row(
        case.name, times["numba"], "numpy" if "numpy" in times else None, times.get("numpy"),
        what=case.what,
        torch_median_ms=med.get("torch"),
        torch_ratio=med["torch"] / ours if "torch" in med else None,
        goal_ms=case.goal_ms,
        goal_met=None if case.goal_ms is None else ours <= case.goal_ms,
        max_diff_numpy=max_difference(outputs["numba"], outputs["numpy"]) if "numpy" in outputs else None,
        max_diff_torch=max_difference(outputs["numba"], outputs["torch"]) if "torch" in outputs else None,
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--reps", type=int, default=40, help="timed calls per implementation per round (default 40)")
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    names = [c.name for c in CASES]
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(names))
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {names}")
    _torch()
    import numba

    results = [time_case(c, args.rounds, args.reps) for c in CASES if not only or c.name in only]
    f = frame()
    machine = machine_info(
        numba_threading_layer=numba.threading_layer(), rounds=args.rounds, reps=args.reps,
        frame_valid_pixels=int(np.count_nonzero(f["depth"])), cube_points=int(len(f["in_cube"])),
        cube_ref_mm=[round(float(v), 1) for v in f["ref"]],
    )  # fmt: skip
    if args.json:
        print_json(machine, results)
        return 0
    print(f"{os.cpu_count()} CPUs, numba {machine['numba_threads']} threads ({machine['numba_threading_layer']}), "
          f"torch {machine['torch_threads']} threads; {args.rounds} rounds x {args.reps} calls; "
          f"cube {CUBE_MM:g} mm at {machine['cube_ref_mm']} holds {machine['cube_points']} points")  # fmt: skip
    print(f"{'kernel':<22}{'numba ms':>10}{'p95':>8}{'numpy ms':>10}{'torch ms':>10}{'np/nb':>8}{'th/nb':>8}"
          f"{'diff np':>9}{'diff th':>9}  goal")  # fmt: skip
    for r in results:
        goal = "" if r["goal_ms"] is None else f"<= {r['goal_ms']:g} ms {'PASS' if r['goal_met'] else 'FAIL'}"
        th = "" if r["torch_median_ms"] is None else f"{r['torch_median_ms']:10.3f}"
        thr = "" if r["torch_ratio"] is None else f"{r['torch_ratio']:8.1f}"
        dth = "" if r["max_diff_torch"] is None else f"{r['max_diff_torch']:9.1e}"
        np_ms = "" if r["baseline_median_ms"] is None else f"{r['baseline_median_ms']:10.3f}"
        npr = "" if r["ratio"] is None else f"{r['ratio']:8.1f}"
        dnp = "" if r["max_diff_numpy"] is None else f"{r['max_diff_numpy']:9.1e}"
        print(f"{r['name']:<22}{r['median_ms']:10.3f}{r['p95_ms']:8.3f}{np_ms:>10}{th:>10}{npr:>8}{thr:>8}{dnp:>9}"
              f"{dth:>9}  {goal}")  # fmt: skip
    print("diff: largest absolute difference of the NumPy / torch output from Numba's (mm, px, or grid values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
