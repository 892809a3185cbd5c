"""Real multi-camera geometries (CMU Panoptic, Campus, Shelf) for testing triangulation.

Reads the rigs in ``<data_root>/multiview_body_calib/`` (see its PROVENANCE.md: mmpose test data,
non-commercial research use) as :class:`tracker.core.structures.Camera` tuples in **mm** with their real 3D
body joints, then runs the robustness experiment of issue [4/5]: project the joints into every
camera, add Gaussian pixel noise, displace ~25% of the observations by 50-200 px (outlier views),
and compare DLT and RANSAC against the true points.

    python scripts/real_rig_geometry.py [--noise-px 1.5] [--outliers 0.25] [--seed 0] [--json]

Loaders: :func:`load_panoptic` (JSON, cm), :func:`load_campus_shelf` (JSON calibration + the
``actorsGT.mat`` MATLAB v5 file, read by the small :func:`read_mat5` here: SciPy is not a dependency).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.core.data_root import data_root  # noqa: E402
from tracker.fusion.triangulate import TriangulationConfig, triangulate_joints  # noqa: E402
from tracker.core.structures import Camera, Extrinsics, Intrinsics  # noqa: E402

__all__ = ["Rig", "calib_dir", "read_mat5", "load_panoptic", "load_campus_shelf", "load_rigs", "corrupt", "evaluate"]

#: Image sizes of Campus and Shelf (not stored in their calibration files; PROVENANCE.md).
IMAGE_SIZES = {"campus": (360, 288), "shelf": (1032, 776)}


@dataclass(frozen=True)
class Rig:
    """A real rig: cameras (world -> camera, mm) and real 3D points (world mm) it saw."""

    name: str
    cameras: tuple[Camera, ...]
    points: np.ndarray  # (N, 3) mm


def calib_dir() -> Path:
    """``<data_root>/multiview_body_calib`` (may not exist)."""
    return data_root() / "multiview_body_calib"


# ----------------------------------------------------------------------------------- MATLAB v5

_MI = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_MATRIX, _MI_COMPRESSED, _MX_CELL, _MX_STRUCT = 14, 15, 1, 2


def _element(buf: bytes, pos: int, endian: str) -> tuple[int, bytes, int]:
    """(type, payload, next position) of the data element at ``pos``."""
    (word,) = struct.unpack_from(endian + "I", buf, pos)
    if word >> 16:  # small data element: type and size in one word, payload in the next 4 bytes
        n = word >> 16
        return word & 0xFFFF, buf[pos + 4 : pos + 4 + n], pos + 8
    typ, n = struct.unpack_from(endian + "II", buf, pos)
    start = pos + 8
    end = start + n
    return typ, buf[start:end], end if typ == _MI_COMPRESSED else start + ((n + 7) // 8) * 8


def _numeric(typ: int, payload: bytes, endian: str) -> np.ndarray:
    if typ not in _MI:
        raise ValueError(f"MAT v5 data type {typ} is not supported")
    return np.frombuffer(payload, dtype=np.dtype(endian + _MI[typ]))


def _matrix(payload: bytes, endian: str) -> object:
    """A miMATRIX payload -> ndarray (numeric, Fortran order) or object ndarray of cells."""
    pos = 0
    _, flags, pos = _element(payload, pos, endian)
    mx_class = int(_numeric(6, flags[:4], endian)[0]) & 0xFF
    _, dims, pos = _element(payload, pos, endian)
    shape = tuple(int(d) for d in _numeric(5, dims, endian))
    _, _, pos = _element(payload, pos, endian)  # name
    if mx_class == _MX_CELL:
        cells = np.empty(int(np.prod(shape)), dtype=object)
        for k in range(len(cells)):
            typ, sub, pos = _element(payload, pos, endian)
            cells[k] = _matrix(sub, endian) if len(sub) else np.zeros((0, 0))
        return cells.reshape(shape, order="F")
    if mx_class == _MX_STRUCT:
        raise ValueError("MAT v5 structs are not supported")
    typ, real, pos = _element(payload, pos, endian)
    return _numeric(typ, real, endian).astype(np.float64).reshape(shape, order="F")


def read_mat5(path: Path) -> dict[str, object]:
    """The top-level variables of a MATLAB v5 ``.mat`` file (numeric arrays and cell arrays only)."""
    buf = Path(path).read_bytes()
    if len(buf) < 128 or not buf[:6] == b"MATLAB":
        raise ValueError(f"{path}: not a MATLAB v5 file")
    endian = "<" if buf[126:128] == b"IM" else ">"
    out: dict[str, object] = {}
    pos = 128
    while pos + 8 <= len(buf):
        typ, payload, pos = _element(buf, pos, endian)
        if typ == _MI_COMPRESSED:
            inner = zlib.decompress(payload)
            typ, payload, _ = _element(inner, 0, endian)
        if typ != _MI_MATRIX:
            continue
        _, _, p = _element(payload, 0, endian)
        _, _, p = _element(payload, p, endian)
        _, name, _ = _element(payload, p, endian)
        out[name.decode("ascii")] = _matrix(payload, endian)
    return out


# ----------------------------------------------------------------------------------- the rigs


def load_panoptic(folder: Path, kind: str = "hd") -> Rig:
    """A CMU Panoptic sequence: cameras of ``kind`` (``hd`` 1920x1080, ``vga`` 640x480) and the bodies'
    joints (confidence > 0), converted from cm to mm."""
    calib = json.loads(next(folder.glob("calibration_*.json")).read_text())
    cams = []
    for c in calib["cameras"]:
        if c["type"] != kind:
            continue
        K = np.asarray(c["K"], np.float64)
        w, h = c["resolution"]
        intr = Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(w), int(h), tuple(float(x) for x in c["distCoef"]))
        ext = Extrinsics(np.asarray(c["R"], np.float64), 10.0 * np.asarray(c["t"], np.float64).reshape(3))
        cams.append(Camera(c["name"], intr, ext))
    pts = []
    for f in sorted((folder / "hdPose3d_stage1_coco19").glob("*.json")):
        for body in json.loads(f.read_text())["bodies"]:
            j = np.asarray(body["joints19"], np.float64).reshape(19, 4)
            pts.append(10.0 * j[j[:, 3] > 0, :3])
    return Rig(f"panoptic/{folder.name}/{kind}", tuple(cams), np.concatenate(pts))


def load_campus_shelf(folder: Path) -> Rig:
    """Campus or Shelf: cameras (``X_cam = R (X_world - T)``, mm) and ``actor3D`` joints (m -> mm)."""
    name = folder.name
    calib = json.loads((folder / f"calibration_{name}.json").read_text())
    w, h = IMAGE_SIZES[name]
    cams = []
    for key in sorted(calib, key=int):
        c = calib[key]
        R = np.asarray(c["R"], np.float64)
        T = np.asarray(c["T"], np.float64).reshape(3)
        dist = (*np.ravel(c["k"])[:2], *np.ravel(c["p"])[:2], np.ravel(c["k"])[2])
        intr = Intrinsics(float(c["fx"]), float(c["fy"]), float(c["cx"]), float(c["cy"]), w, h, tuple(map(float, dist)))
        cams.append(Camera(f"{name}{key}", intr, Extrinsics(R, -R @ T)))
    actors = read_mat5(folder / "actorsGT.mat")["actor3D"]
    pts = [np.asarray(frame) for actor in np.ravel(actors) for frame in np.ravel(actor) if np.size(frame)]
    pts = [1000.0 * p for p in pts if p.ndim == 2 and p.shape[1] == 3]
    return Rig(name, tuple(cams), np.concatenate(pts))


def load_rigs(root: Path | None = None) -> list[Rig]:
    """All rigs present under ``root`` (default :func:`calib_dir`): Panoptic HD per sequence, Campus, Shelf."""
    root = root or calib_dir()
    rigs = [load_panoptic(d) for d in sorted((root / "panoptic_body3d").glob("*")) if d.is_dir()]
    rigs += [load_campus_shelf(root / n) for n in ("campus", "shelf") if (root / n).is_dir()]
    return rigs


# ----------------------------------------------------------------------------------- experiment


def corrupt(rig: Rig, noise_px: float, outliers: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations of the rig's points: ``(uv (N, V, 2), conf (N, V), outlier (N, V))``.

    Undistorted pinhole projections (the distortion path is tested separately) of the points in
    front of each camera and inside its image (others: NaN), plus Gaussian noise of ``noise_px``;
    a fraction ``outliers`` of the seen observations moved 50-200 px in a random direction (kept
    with full confidence: the detector is confidently wrong).
    """
    rng = np.random.default_rng(seed)
    x = np.stack([c.world_to_camera(rig.points) for c in rig.cameras], axis=1)  # (N, V, 3) camera mm
    uv = np.stack([c.intrinsics.project(x[:, v]) for v, c in enumerate(rig.cameras)], axis=1)
    size = np.array([[c.intrinsics.width, c.intrinsics.height] for c in rig.cameras], np.float64)
    seen = (x[..., 2] > 0) & (uv >= 0).all(-1) & (uv < size).all(-1)
    uv = uv + rng.normal(0.0, noise_px, uv.shape)
    bad = seen & (rng.random(seen.shape) < outliers)
    ang = rng.uniform(0.0, 2 * np.pi, seen.shape)
    mag = rng.uniform(50.0, 200.0, seen.shape)
    uv += (np.stack([np.cos(ang), np.sin(ang)], -1) * mag[..., None]) * bad[..., None]
    uv[~seen] = np.nan
    return uv, seen.astype(np.float64), bad


def undistorted_cameras(rig: Rig) -> tuple[Camera, ...]:
    """The rig's cameras with zero distortion (matching :func:`corrupt`'s pinhole observations)."""
    import dataclasses

    return tuple(
        dataclasses.replace(c, intrinsics=dataclasses.replace(c.intrinsics, dist=(0.0,) * 5)) for c in rig.cameras
    )


def evaluate(rig: Rig, noise_px: float = 1.5, outliers: float = 0.25, seed: int = 0,
             threshold_px: float = 15.0) -> dict[str, object]:  # fmt: skip
    """DLT vs RANSAC errors (mm) over the points whose clean views are at least 2 and outnumber the
    displaced ones (RANSAC's premise: the agreeing views are the majority)."""
    uv, conf, bad = corrupt(rig, noise_px, outliers, seed)
    cams = undistorted_cameras(rig)
    clean = ((conf > 0) & ~bad).sum(axis=1)
    keep = (clean >= 2) & (clean > bad.sum(axis=1))
    res: dict[str, object] = {"rig": rig.name, "cameras": len(cams), "points": int(keep.sum()),
                              "mean_views": float((conf[keep] > 0).sum(1).mean()),
                              "outlier_fraction": float(bad[keep].sum() / max((conf[keep] > 0).sum(), 1))}  # fmt: skip
    for method in ("dlt", "ransac"):
        tri = triangulate_joints(cams, uv[keep], conf[keep], TriangulationConfig(method=method, threshold_px=threshold_px,
                                                                                  sigma_px=noise_px))  # fmt: skip
        err = np.linalg.norm(tri.points - rig.points[keep], axis=1)
        res[method] = {"mean_mm": float(np.nanmean(err)), "median_mm": float(np.nanmedian(err)),
                       "p95_mm": float(np.nanpercentile(err, 95)), "max_mm": float(np.nanmax(err)),
                       "failed": int(np.isnan(err).sum())}  # fmt: skip
        if method == "ransac":
            rejected = ~tri.inliers[bad[keep]]
            res["ransac"]["outliers_rejected"] = float(rejected.mean()) if rejected.size else float("nan")  # type: ignore[index]
            res["ransac"]["median_sigma_mm"] = float(np.nanmedian(tri.uncertainty_mm))  # type: ignore[index]
            res["ransac"]["max_err_over_sigma"] = float(np.nanmax(err / tri.uncertainty_mm))  # type: ignore[index]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise-px", type=float, default=1.5)
    ap.add_argument("--outliers", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not calib_dir().is_dir():
        print(f"no real rigs at {calib_dir()} (set HANDTRACK_DATA)", file=sys.stderr)
        return 1
    results = [evaluate(r, args.noise_px, args.outliers, args.seed) for r in load_rigs()]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"noise {args.noise_px} px, {args.outliers:.0%} of observations displaced 50-200 px")
    print(f"{'rig':26s} {'V':>4s} {'pts':>5s} {'views':>6s}  {'DLT mean/max mm':>17s}  {'RANSAC mean/p95/max mm':>24s}"
          f" {'rejected':>8s} {'sigma':>6s}")  # fmt: skip
    for r in results:
        d, s = r["dlt"], r["ransac"]
        print(f"{r['rig']:26s} {r['cameras']:4d} {r['points']:5d} {r['mean_views']:6.1f}  "
              f"{d['mean_mm']:8.1f}/{d['max_mm']:7.1f}  {s['mean_mm']:8.2f}/{s['p95_mm']:6.2f}/{s['max_mm']:7.2f} "
              f"{s['outliers_rejected']:8.1%} {s['median_sigma_mm']:6.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
