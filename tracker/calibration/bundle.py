"""Bundle adjustment of a board calibration: camera extrinsics (+ intrinsics) and board poses that
minimise the Huber-robust reprojection error of every detected corner.

Our own Levenberg-Marquardt on the normal equations, with the board poses eliminated by the Schur
complement (no SciPy). Poses are updated multiplicatively, ``T <- exp(delta) T`` (``delta``: rotation
vector rad, translation mm); the reference camera's extrinsics stay fixed (they define the world).
Jacobians come from ``cv2.projectPoints`` and ``cv2.composeRT``.

The optimiser works on raw ``(4, 4)`` transforms and OpenCV's ``(rvec, tvec)`` rather than
:class:`tracker.core.structures.Camera`: every cost evaluation projects every view, and the normal
equations need OpenCV's Jacobians, which the camera methods do not give. :meth:`BundleAdjuster.errors`
uses the same projection as the cost, so the reported error is the one minimised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from tracker.calibration.board import BoardDetection
from tracker.calibration.initial import FREE_DISTORTION, DistortionModel, pose_matrix, pose_vectors
from tracker.core.structures import Intrinsics

__all__ = ["BundleAdjuster", "huber"]

log = logging.getLogger(__name__)


class BundleAdjuster:
    """Levenberg-Marquardt over camera extrinsics (+ intrinsics) and board poses, Huber-robust.

    Args:
        corners: ``(num_corners, 3)`` board corners, board frame mm.
        views: per camera, frame -> its detection.
        poses: per camera, frame -> camera <- board of the views used (only their frames matter here).
        intr: per camera, the intrinsics (their number of distortion coefficients is kept).
        refine: per camera, whether its intrinsics are adjusted too (focal lengths, principal point
            and the coefficients of ``distortion``).
        distortion: the distortion coefficients adjusted for refined cameras.
        reference: the camera whose frame is the world (its extrinsics stay the identity).
        huber_px: Huber loss scale, pixels.
        max_iterations: Levenberg-Marquardt iterations at most.

    Camera parameter layout: per camera ``[6 extrinsic unless reference][4 intrinsic + free
    distortion if refined]``.
    """

    def __init__(
        self,
        corners: np.ndarray,
        views: Sequence[dict[int, BoardDetection]],
        poses: Sequence[dict[int, np.ndarray]],
        intr: Sequence[Intrinsics],
        refine: Sequence[bool],
        distortion: DistortionModel = "k1k2",
        reference: int = 0,
        huber_px: float = 1.0,
        max_iterations: int = 100,
    ) -> None:
        self.corners = corners
        self.huber_px = huber_px
        self.max_iterations = max_iterations
        n = len(poses)
        self.obs = [(c, f, corners[views[c][f].ids], views[c][f].corners_px) for c in range(n) for f in poses[c]]
        self.by_cam = [[(f, X, uv) for (cc, f, X, uv) in self.obs if cc == c] for c in range(n)]
        self.free_dist = [tuple(i for i in FREE_DISTORTION[distortion] if i < len(intr[c].dist)) if refine[c] else ()
                          for c in range(n)]  # fmt: skip
        self.n_ext = [0 if c == reference else 6 for c in range(n)]
        self.n_int = [4 + len(self.free_dist[c]) if refine[c] else 0 for c in range(n)]
        sizes = [e + i for e, i in zip(self.n_ext, self.n_int)]
        self.offset = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_params = int(self.offset[-1])

    def errors(self, c: int, cam_from_world: np.ndarray, world_from_board: dict[int, np.ndarray],
               intr: Intrinsics) -> np.ndarray:  # fmt: skip
        """Pixel errors ``(K,)`` of camera ``c``'s corners, every view it saw, at these parameters."""
        errs = [np.linalg.norm(_project(cam_from_world @ world_from_board[f], X, intr) - uv, axis=1)
                for f, X, uv in self.by_cam[c]]  # fmt: skip
        return np.concatenate(errs) if errs else np.zeros(0)

    def run(
        self, cams: list[np.ndarray], boards: dict[int, np.ndarray], intr: list[Intrinsics]
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray], list[Intrinsics], int]:
        """Adjust from a starting point.

        Args:
            cams: per camera, camera <- world ``(4, 4)`` mm.
            boards: frame -> world <- board ``(4, 4)`` mm.
            intr: per camera, the intrinsics.

        Returns:
            The adjusted ``cams``, ``boards`` and ``intr``, and the iterations run.
        """
        lam = 1e-3
        cost = self._cost(cams, boards, intr)
        it = 0
        for it in range(1, self.max_iterations + 1):
            U, gc, Vs, gbs, Ws = self._normal_equations(cams, boards, intr)
            improved = False
            for _ in range(10):
                dc, dbs = self._solve(U, gc, Vs, gbs, Ws, lam)
                cams_n, boards_n, intr_n = self._apply(cams, boards, intr, dc, dbs)
                cost_n = self._cost(cams_n, boards_n, intr_n)
                if np.isfinite(cost_n) and cost_n < cost:
                    improved = True
                    break
                lam *= 10.0
            if not improved:
                break
            rel = (cost - cost_n) / max(cost, 1e-12)
            cams, boards, intr, cost = cams_n, boards_n, intr_n, cost_n
            lam = max(lam / 10.0, 1e-9)
            if rel < 1e-10:
                break
        log.info("bundle adjustment: %d iterations, robust cost %.4g", it, cost)
        return cams, boards, intr, it

    def _cost(self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics]) -> float:
        total = 0.0
        for c, f, X, uv in self.obs:
            e = np.linalg.norm(_project(cams[c] @ boards[f], X, intr[c]) - uv, axis=1)
            total += float(huber(e, self.huber_px).sum())
        return total

    def _normal_equations(
        self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics]
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
        P = self.n_params
        U, gc = np.zeros((P, P)), np.zeros(P)
        Vs = {f: np.zeros((6, 6)) for f in boards}
        gbs = {f: np.zeros(6) for f in boards}
        Ws = {f: np.zeros((P, 6)) for f in boards}
        d_cam = [_left_perturbation(T) for T in cams]
        d_board = {f: _left_perturbation(T) for f, T in boards.items()}
        for c, f, X, uv in self.obs:
            r_cw, t_cw = pose_vectors(cams[c])
            r_wb, t_wb = pose_vectors(boards[f])
            # camera <- board = (camera <- world) o (world <- board): composeRT applies its first pose first.
            r3, t3, dr3dr1, dr3dt1, dr3dr2, dr3dt2, dt3dr1, dt3dt1, dt3dr2, dt3dt2 = cv2.composeRT(
                r_wb, t_wb, r_cw, t_cw)  # fmt: skip
            d_wrt_board = np.block([[dr3dr1, dr3dt1], [dt3dr1, dt3dt1]])
            d_wrt_cam = np.block([[dr3dr2, dr3dt2], [dt3dr2, dt3dt2]])
            i = intr[c]
            proj, jac = cv2.projectPoints(X, r3, t3, i.K, np.asarray(i.dist, dtype=np.float64))
            res = (proj.reshape(-1, 2) - uv).reshape(-1)
            e = np.linalg.norm(res.reshape(-1, 2), axis=1)
            w = np.repeat(_huber_weight(e, self.huber_px), 2)
            Jb = jac[:, :6] @ d_wrt_board @ d_board[f]
            blocks = []
            if self.n_ext[c]:
                blocks.append(jac[:, :6] @ d_wrt_cam @ d_cam[c])
            if self.n_int[c]:
                blocks.append(jac[:, 6:10])
                blocks.extend(jac[:, 10 + k : 11 + k] for k in self.free_dist[c])
            Jw_b = Jb * w[:, None]
            Vs[f] += Jb.T @ Jw_b
            gbs[f] += Jw_b.T @ res
            if blocks:
                Jc = np.hstack(blocks)
                s = slice(self.offset[c], self.offset[c + 1])
                Jw_c = Jc * w[:, None]
                U[s, s] += Jc.T @ Jw_c
                gc[s] += Jw_c.T @ res
                Ws[f][s] += Jw_c.T @ Jb
        return U, gc, Vs, gbs, Ws

    def _solve(
        self, U: np.ndarray, gc: np.ndarray, Vs: dict[int, np.ndarray], gbs: dict[int, np.ndarray],
        Ws: dict[int, np.ndarray], lam: float,
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:  # fmt: skip
        S = U + lam * np.diag(np.diag(U) + 1e-9)
        rhs = -gc.copy()
        Vinv = {}
        for f, V in Vs.items():
            Vd = V + lam * np.diag(np.diag(V) + 1e-9)
            Vinv[f] = np.linalg.inv(Vd)
            WV = Ws[f] @ Vinv[f]
            S -= WV @ Ws[f].T
            rhs += WV @ gbs[f]
        dc = np.linalg.solve(S, rhs) if self.n_params else np.zeros(0)
        dbs = {f: Vinv[f] @ (-gbs[f] - Ws[f].T @ dc) for f in Vs}
        return dc, dbs

    def _apply(
        self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics],
        dc: np.ndarray, dbs: dict[int, np.ndarray],
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray], list[Intrinsics]]:  # fmt: skip
        new_cams, new_intr = [], []
        for c, T in enumerate(cams):
            d = dc[self.offset[c] : self.offset[c + 1]]
            new_cams.append(_perturb(T, d[:6]) if self.n_ext[c] else T)
            i = intr[c]
            if self.n_int[c]:
                p = d[self.n_ext[c] :]
                dist = list(i.dist)
                for k, idx in enumerate(self.free_dist[c]):
                    dist[idx] += float(p[4 + k])
                fx, fy = i.fx + float(p[0]), i.fy + float(p[1])
                if fx <= 0 or fy <= 0:
                    return list(cams), boards, list(intr)  # a rejected step: the cost will not drop
                i = Intrinsics(fx, fy, i.cx + float(p[2]), i.cy + float(p[3]), i.width, i.height, tuple(dist))
            new_intr.append(i)
        new_boards = {f: _perturb(T, dbs[f]) for f, T in boards.items()}
        return new_cams, new_boards, new_intr


def huber(e: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of errors ``e >= 0`` with scale ``delta`` (same units): ``e^2 / 2`` up to
    ``delta``, linear beyond."""
    return np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta))


def _huber_weight(e: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weight of the Huber loss: 1 up to ``delta``, ``delta / e`` beyond."""
    return np.where(e <= delta, 1.0, delta / np.maximum(e, 1e-12))


def _left_perturbation(T: np.ndarray) -> np.ndarray:
    """``(6, 6)`` derivative of (rvec, tvec) of ``exp(delta) T`` with respect to ``delta`` at 0."""
    r, t = pose_vectors(T)
    zero = np.zeros((3, 1))
    _, _, _, _, dr3dr2, dr3dt2, _, _, dt3dr2, dt3dt2 = cv2.composeRT(r, t, zero, zero)
    return np.block([[dr3dr2, dr3dt2], [dt3dr2, dt3dt2]])


def _perturb(T: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``exp(delta) T`` (rotation vector delta[:3] rad, translation delta[3:] mm)."""
    return pose_matrix(delta[:3], delta[3:]) @ T


def _project(cam_from_board: np.ndarray, X: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Board points ``X`` ``(K, 3)`` mm -> pixels ``(K, 2)`` with distortion (the optimiser's
    projection on raw transforms; see the module docstring)."""
    r, t = pose_vectors(cam_from_board)
    proj, _ = cv2.projectPoints(X, r, t, intr.K, np.asarray(intr.dist, dtype=np.float64))
    return proj.reshape(-1, 2)
