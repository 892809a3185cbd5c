"""Truncated-SVD (PCA) hand pose prior in a normalized hand frame, for any joint layout.

A pose ``(J, 3)`` (mm, any 3D frame: camera, world or a benchmark's) is brought into a **normalized
frame** before the linear model applies:

1. *root-relative*: the centroid ``c`` of the layout's root joints (:data:`LAYOUT_FRAMES`) is
   subtracted;
2. *rotation-normalized*: the rotation ``R`` that best aligns the layout's alignment joints to the
   prior's template (``mean``) is found by Kabsch (uniform weights, proper rotation) and removed:
   ``n = (x - c) @ R`` (i.e. ``R^T (x_j - c)`` per joint).

Scale is **not** normalized away; instead, with ``scale_free=True`` (the default of :func:`fit_prior`)
the subspace is the *linear* span of the template plus the top-k principal directions of the
aligned training poses (the template direction removed from them first). Uniformly scaling a pose
then scales its projection by the same factor, so a hand of another size than the training subject's
is not pulled towards the training hand size, and the projection stays an exact orthogonal projection
(idempotent). With ``scale_free=False`` the subspace is the classic affine one, ``mean + span(U_k)``.

:meth:`PosePrior.project` maps a pose to its reconstruction ``c + R r`` with ``r`` the subspace point
closest to ``n`` (confidence-weighted when confidences are given), then blends each joint between the
input and its reconstruction with a per-joint weight (below). With blend weight 1 the projection is
exact on poses inside the subspace and idempotent, and it is equivariant to rotations and
translations of the input (and, scale-free, to scaling).

Blend weights: ``w_j = strength * (1 - confidence_gain * confidence_j)`` (``confidence`` in [0, 1]);
without confidences ``w_j = strength``. Low-confidence joints move more towards the prior, confident
ones less.

The pose data of the prior are fitted by generalized Procrustes analysis (GPA) on ground-truth poses
(:func:`fit_prior`); ``k`` is chosen by explained variance or by cross-validation inside the fit data
(:func:`choose_k_cv`). Shipped priors: ``models/weights/prior_{nyu,icvl,mp21}.npz``, made by
``python scripts/fit_priors.py`` (see ``models/weights/PRIORS.md``).

Usage::

    prior = models.load_pretrained("prior_nyu")          # or PosePrior.load(a file of your own)
    refined = prior.project(xyz, strength=0.5)          # (N, 14, 3) mm in, (N, 14, 3) mm out

    python -m models.prior fit --layout nyu --out /tmp/prior_nyu.npz    # see scripts/fit_priors.py
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from tracker.core.errors import HandtrackError, ModelError
from tracker.core.joints import PALM

__all__ = [
    "LAYOUT_FRAMES",
    "PriorError",
    "PosePrior",
    "normalize_poses",
    "kabsch_rotations",
    "fit_prior",
    "choose_k_cv",
]

log = logging.getLogger(__name__)

_ALL_NYU = tuple(range(14))
_ALL_ICVL = tuple(range(16))

#: Per layout: ``(root_joints, align_joints)``. The root is the centroid of ``root_joints``; the
#: rotation comes from Kabsch on ``align_joints``. For the 21-joint layout both are the palm
#: (wrist + five finger roots, rigid with the hand). NYU's and ICVL's labels have almost no rigid
#: palm joints (NYU: two wrist points and a palm point; ICVL: one palm point), so those layouts use
#: the centroid of and Procrustes alignment on all joints (the shape-model convention).
LAYOUT_FRAMES: Final[dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "mediapipe": (PALM, PALM),
    "freihand": (PALM, PALM),
    "nyu": (_ALL_NYU, _ALL_NYU),
    "icvl": (_ALL_ICVL, _ALL_ICVL),
}

_FORMAT_VERSION: Final = 1


class PriorError(HandtrackError, ValueError):
    """A prior cannot be fitted, loaded or applied (the message says what to do)."""


# --- Normalized frame ------------------------------------------------------------------------------


def kabsch_rotations(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations ``R`` (proper, det +1) minimising ``sum_j ||R src_j - dst_j||^2`` per pose.

    Args:
        src: ``(N, A, 3)`` centred points (any unit).
        dst: ``(A, 3)`` centred template points (same unit).

    Returns:
        ``(N, 3, 3)`` rotations mapping ``src`` onto ``dst``.
    """
    h = np.einsum("naj,ak->njk", src, dst)  # sum_a src_a dst_a^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    d[d == 0] = 1.0
    fix = np.ones((len(src), 3))
    fix[:, 2] = d
    return np.einsum("nji,nj,nkj->nik", vt, fix, u)  # V diag(1,1,d) U^T


def normalize_poses(poses: np.ndarray, template: np.ndarray, root_joints: tuple[int, ...],
                    align_joints: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root-relative, rotation-normalized poses.

    Args:
        poses: ``(N, J, 3)`` mm in any frame.
        template: ``(J, 3)`` mm, the canonical pose (root-centred) the rotation is aligned to.
        root_joints: joints whose centroid is the root.
        align_joints: joints used for the Kabsch alignment.

    Returns:
        ``(normalized (N, J, 3) mm, centre (N, 3) mm, R (N, 3, 3))`` with
        ``poses = normalized @ R^T + centre`` (``R`` maps the normalized frame to the input frame).
    """
    centre = poses[:, list(root_joints)].mean(axis=1)
    rel = poses - centre[:, None]
    a = list(align_joints)
    src = rel[:, a] - rel[:, a].mean(axis=1, keepdims=True)
    dst = template[a] - template[a].mean(axis=0)
    rot_to_template = kabsch_rotations(src, dst)  # R_n with R_n src ~ dst
    normalized = np.einsum("nij,nkj->nki", rot_to_template, rel)
    return normalized, centre, np.transpose(rot_to_template, (0, 2, 1))


# --- The prior ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosePrior:
    """A fitted linear pose prior (see the module docstring).

    Attributes:
        layout: joint layout name (:data:`tracker.core.joints.LAYOUT_JOINT_NAMES`).
        template: ``(J, 3)`` mm, the alignment template (GPA mean, root-centred).
        origin: ``(J, 3)`` mm, the subspace's origin in the normalized frame: the mean pose for an
            affine prior, zeros for a scale-free (linear) prior.
        basis: ``(3J, K)`` orthonormal columns spanning the subspace (flattened joints x/y/z).
        sigma: ``(K,)`` mm, standard deviation of the training poses along each basis column.
        root_joints, align_joints: see :data:`LAYOUT_FRAMES`.
        scale_free: True for the linear span including the template direction.
        explained: fraction of the training variance (about ``origin``) the subspace explains.
        num_samples: number of training poses.
        source: a one-line note of what the prior was fitted on.
        strength: the recommended blend weight (chosen by cross-validation when the prior was made),
            used by :meth:`project` when none is passed.
    """

    layout: str
    template: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    sigma: np.ndarray
    root_joints: tuple[int, ...]
    align_joints: tuple[int, ...]
    scale_free: bool
    explained: float
    num_samples: int
    source: str = ""
    strength: float = 1.0

    def __post_init__(self) -> None:
        j = self.template.shape[0]
        if self.template.shape != (j, 3) or self.origin.shape != (j, 3):
            raise PriorError(f"template and origin must be (J, 3), got {self.template.shape}, {self.origin.shape}")
        if self.basis.ndim != 2 or self.basis.shape[0] != 3 * j or self.sigma.shape != (self.basis.shape[1],):
            raise PriorError(f"basis must be (3J, K) = ({3 * j}, K) and sigma (K,), got "
                             f"{self.basis.shape}, {self.sigma.shape}")  # fmt: skip

    @property
    def num_joints(self) -> int:
        return int(self.template.shape[0])

    @property
    def k(self) -> int:
        """Dimension of the subspace (including the template direction when scale-free)."""
        return int(self.basis.shape[1])

    # -- application ---------------------------------------------------------------------------------

    def normalize(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`normalize_poses` with this prior's template and joints; ``(N, J, 3)`` in."""
        return normalize_poses(poses, self.template, self.root_joints, self.align_joints)

    def reconstruct_normalized(self, normalized: np.ndarray, weights: np.ndarray | None = None,
                               ridge: float = 0.0) -> np.ndarray:
        """The subspace point closest to each normalized pose.

        Args:
            normalized: ``(N, J, 3)`` mm, normalized frame.
            weights: ``(N, J)`` non-negative per-joint weights of the least-squares fit, or None for
                the orthogonal projection.
            ridge: Tikhonov weight on the coefficients in units of their training variance
                (``ridge * sum(a^2 / sigma^2)``); 0 = none.

        Returns:
            ``(N, J, 3)`` mm in the normalized frame.
        """
        n = normalized.shape[0]
        centred = (normalized - self.origin).reshape(n, -1)
        b = self.basis
        if weights is None and ridge == 0.0:
            coeff = centred @ b
        else:
            w = np.ones((n, self.num_joints)) if weights is None else np.asarray(weights, np.float64)
            w3 = np.repeat(w, 3, axis=1)  # (N, 3J)
            gram = np.einsum("ik,ni,il->nkl", b, w3, b)
            gram = gram + ridge * np.diag(1.0 / np.maximum(self.sigma, 1e-6) ** 2)[None]
            rhs = np.einsum("ik,ni->nk", b, w3 * centred)
            coeff = np.linalg.solve(gram, rhs[..., None])[..., 0]
        return (coeff @ b.T).reshape(n, self.num_joints, 3) + self.origin

    def project(self, poses: np.ndarray, confidence: np.ndarray | None = None, strength: float | None = None,
                confidence_gain: float = 1.0, ridge: float = 0.0) -> np.ndarray:
        """Pull poses towards the prior's subspace.

        Args:
            poses: ``(J, 3)`` or ``(N, J, 3)`` mm, any frame (output is in the same frame).
            confidence: ``(J,)`` / ``(N, J)`` per-joint confidence in [0, 1], or None. When given,
                the subspace fit weights joint j by ``confidence_j + 0.05`` and the blend weight is
                ``strength * (1 - confidence_gain * confidence_j)``.
            strength: blend weight in [0, 1] (1 = replace by the reconstruction, 0 = no change);
                None = the prior's recommended ``strength``.
            confidence_gain: in [0, 1], how much a confident joint is spared.
            ridge: see :meth:`reconstruct_normalized`.

        Returns:
            Poses of the input's shape, mm. With ``strength=1``, no confidence and ``ridge=0`` this
            is the exact orthogonal projection (idempotent).

        Raises:
            PriorError: wrong joint count, non-finite input, or a parameter out of range.
        """
        x = np.asarray(poses, dtype=np.float64)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (self.num_joints, 3):
            raise PriorError(f"the {self.layout!r} prior takes (N, {self.num_joints}, 3) poses, got {np.shape(poses)}")
        strength = self.strength if strength is None else float(strength)
        if not np.isfinite(x).all():
            raise PriorError("poses contain NaN/inf: drop or fill lost frames before applying the prior")
        if not 0.0 <= strength <= 1.0 or not 0.0 <= confidence_gain <= 1.0 or ridge < 0:
            raise PriorError(f"need strength and confidence_gain in [0, 1] and ridge >= 0, got "
                             f"{strength}, {confidence_gain}, {ridge}")  # fmt: skip
        conf = None
        if confidence is not None:
            conf = np.clip(np.asarray(confidence, dtype=np.float64).reshape(x.shape[0], self.num_joints), 0.0, 1.0)
        normalized, centre, rot = self.normalize(x)
        recon = self.reconstruct_normalized(normalized, None if conf is None else conf + 0.05, ridge)
        recon = np.einsum("nij,nkj->nki", rot, recon) + centre[:, None]
        if conf is None:
            w = np.full((x.shape[0], self.num_joints, 1), strength)
        else:
            w = (strength * (1.0 - confidence_gain * conf))[..., None]
        out = x + w * (recon - x)
        return out[0] if single else out

    def residual(self, poses: np.ndarray) -> np.ndarray:
        """Per-joint distance (mm) between each pose and its projection: ``(N, J)``."""
        x = np.asarray(poses, dtype=np.float64).reshape(-1, self.num_joints, 3)
        return np.linalg.norm(self.project(x, strength=1.0) - x, axis=-1)

    # -- persistence -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the prior to ``path`` (.npz, no pickles)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path, version=np.int64(_FORMAT_VERSION), layout=np.str_(self.layout), template=self.template,
            origin=self.origin, basis=self.basis, sigma=self.sigma,
            root_joints=np.asarray(self.root_joints, np.int64), align_joints=np.asarray(self.align_joints, np.int64),
            scale_free=np.bool_(self.scale_free), explained=np.float64(self.explained),
            num_samples=np.int64(self.num_samples), source=np.str_(self.source), strength=np.float64(self.strength),
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "PosePrior":
        """Read a prior written by :meth:`save`. The shipped priors load by name with
        :func:`models.load_pretrained` (``"prior_mp21"``, ...), which calls this.

        Raises:
            tracker.core.errors.ModelError: no file at ``path``, or not a readable prior of a known
                version (truncated, corrupt, another kind of file); the message names the file and
                how to make one.
        """
        file = Path(path)
        make = "run `python scripts/fit_priors.py` (or `python -m models.prior fit --layout ... --out ...`) to make it"
        if not file.is_file():
            raise ModelError(f"no pose prior at {file}: {make}")
        try:
            with np.load(file, allow_pickle=False) as z:
                version = int(z["version"])
                if version != _FORMAT_VERSION:
                    raise ModelError(f"{file}: prior format version {version}, this code reads {_FORMAT_VERSION}; "
                                     "re-run scripts/fit_priors.py")  # fmt: skip
                return cls(
                    layout=str(z["layout"]), template=z["template"].astype(np.float64),
                    origin=z["origin"].astype(np.float64), basis=z["basis"].astype(np.float64),
                    sigma=z["sigma"].astype(np.float64), root_joints=tuple(int(i) for i in z["root_joints"]),
                    align_joints=tuple(int(i) for i in z["align_joints"]), scale_free=bool(z["scale_free"]),
                    explained=float(z["explained"]), num_samples=int(z["num_samples"]), source=str(z["source"]),
                    strength=float(z["strength"]),
                )  # fmt: skip
        except ModelError:
            raise
        except Exception as e:  # KeyError, ValueError (pickled / not .npz), BadZipFile, EOFError, PriorError, ...
            raise ModelError(f"{file} is not a handtrack pose prior ({type(e).__name__}: {e})") from e


# --- Fitting ---------------------------------------------------------------------------------------------


def _layout_joints(layout: str, num_joints: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if layout in LAYOUT_FRAMES:
        root, align = LAYOUT_FRAMES[layout]
    else:
        root = align = tuple(range(num_joints))
    if max(root + align) >= num_joints:
        raise PriorError(f"layout {layout!r} frame joints do not fit poses with {num_joints} joints")
    return root, align


def _gpa(poses: np.ndarray, root: tuple[int, ...], align: tuple[int, ...], iterations: int = 8
         ) -> tuple[np.ndarray, np.ndarray]:
    """Generalized Procrustes: ``(template (J, 3), aligned poses (N, J, 3))``, rotation only.

    The template is re-estimated ``iterations`` times, then every pose is aligned once more to the
    final template, so each aligned pose satisfies Kabsch's optimality condition for *that* template
    (this is what makes projections idempotent).
    """
    rel = poses - poses[:, list(root)].mean(axis=1, keepdims=True)
    template = np.median(rel, axis=0)  # robust first guess; the palm is mostly consistent
    template -= template[list(root)].mean(axis=0)
    for _ in range(iterations):
        aligned, _, _ = normalize_poses(poses, template, root, align)
        template = aligned.mean(axis=0)
    aligned, _, _ = normalize_poses(poses, template, root, align)
    return template, aligned


def fit_prior(poses: np.ndarray, layout: str, k: int | None = None, explained: float = 0.95,
              scale_free: bool = True, source: str = "", strength: float = 1.0) -> PosePrior:
    """Fit a PCA prior to ground-truth poses.

    Args:
        poses: ``(N, J, 3)`` mm, any frame per pose (each is normalized).
        layout: joint layout name; picks the root / alignment joints (:data:`LAYOUT_FRAMES`).
        k: number of principal directions (excluding the template direction of a scale-free prior);
            None = the smallest k explaining ``explained`` of the variance.
        explained: variance fraction used when ``k`` is None.
        scale_free: linear span of the template plus k directions (True) or affine ``mean + k``.
        source: note stored in the prior.
        strength: recommended blend weight stored in the prior.

    Returns:
        The :class:`PosePrior`.

    Raises:
        PriorError: fewer than 2 poses, non-finite values, or ``k`` out of range.
    """
    x = np.asarray(poses, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3 or len(x) < 2:
        raise PriorError(f"need (N >= 2, J, 3) poses, got {x.shape}")
    if not np.isfinite(x).all():
        raise PriorError("training poses contain NaN/inf; drop those frames first")
    n, j, _ = x.shape
    root, align = _layout_joints(layout, j)
    template, aligned = _gpa(x, root, align)
    flat = aligned.reshape(n, -1)
    if scale_free:
        t = template.reshape(-1) / np.linalg.norm(template)
        origin = np.zeros(3 * j)
        centred = flat - np.outer(flat @ t, t)  # remove the template (scale) direction
        total = float((flat**2).sum())
    else:
        origin = flat.mean(axis=0)
        centred = flat - origin
        total = float((centred**2).sum())
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    cum = np.cumsum(var) / max(float(var.sum()), 1e-12)
    if k is None:
        k = int(np.searchsorted(cum, explained) + 1)
    if not 0 <= k <= len(s):
        raise PriorError(f"k must be in [0, {len(s)}], got {k}")
    comps = vt[:k].T  # (3J, k)
    if scale_free:
        basis = np.concatenate([t[:, None], comps], axis=1)
        sig = np.concatenate([[np.std(flat @ t)], s[:k] / np.sqrt(n)])
        kept = float(((flat @ t) ** 2).sum() + var[:k].sum())
    else:
        basis = comps
        sig = s[:k] / np.sqrt(n)
        kept = float(var[:k].sum())
    return PosePrior(
        layout=layout, template=template, origin=origin.reshape(j, 3), basis=basis, sigma=sig,
        root_joints=root, align_joints=align, scale_free=scale_free, explained=kept / max(total, 1e-12),
        num_samples=n, source=source, strength=strength,
    )  # fmt: skip


def choose_k_cv(poses: np.ndarray, layout: str, candidates: tuple[int, ...], folds: int = 5,
                scale_free: bool = True, noisy: np.ndarray | None = None) -> tuple[int, dict[int, float]]:
    """Pick ``k`` by contiguous-block cross-validation inside the fit poses.

    For each fold (a contiguous block of frames, so temporal neighbours do not leak) a prior is fitted
    on the other folds; the score is the mean per-joint distance (mm) between the held-out ground
    truth and the projection of ``noisy`` (held-out estimates of the same frames; default the ground
    truth itself, which only measures the reconstruction error and always prefers a larger k).

    Returns:
        ``(best_k, {k: mean error mm})``.
    """
    x = np.asarray(poses, dtype=np.float64)
    inputs = x if noisy is None else np.asarray(noisy, dtype=np.float64)
    edges = np.linspace(0, len(x), folds + 1).astype(int)
    scores = {}
    for k in candidates:
        errs = []
        for f in range(folds):
            held = np.zeros(len(x), bool)
            held[edges[f]:edges[f + 1]] = True
            prior = fit_prior(x[~held], layout, k=k, scale_free=scale_free)
            errs.append(np.linalg.norm(prior.project(inputs[held]) - x[held], axis=-1).ravel())
        scores[k] = float(np.concatenate(errs).mean())
    best = min(scores, key=scores.__getitem__)
    return best, scores


# --- Command ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m models.prior fit --layout nyu|icvl|mediapipe --out FILE`` (the recipe of :mod:`models.prior_fit`)."""
    parser = argparse.ArgumentParser(prog="python -m models.prior", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a prior the way the shipped ones are made")
    fit.add_argument("--layout", required=True, choices=("nyu", "icvl", "mediapipe"))
    fit.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    from models.prior_fit import fit_layout  # the one recipe of the shipped priors

    try:
        prior = fit_layout(args.layout)
    except (FileNotFoundError, PriorError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prior.save(args.out)
    print(f"{args.layout}: k={prior.k}, explained {prior.explained:.4f}, {prior.num_samples} poses -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
