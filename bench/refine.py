"""Benchmark: per-frame latency of the pose prior (+ the learned refiner when available), one hand, CPU.

``prior_mp21`` is :meth:`models.prior.PosePrior.project` on one ``(21, 3)`` hand with confidences and
its no-harm gate (:func:`models.refine_gate.evaluate_gate` against the shipped ``refine_gate_mp21``:
what :class:`tracker.post.prior.PriorStage` runs per hand per frame); the baseline is a plain NumPy
projection written here (centroid, Kabsch by ``np.linalg.svd``, ``B B^T`` projection, blend; no
batching machinery), timed in the same run. ``refiner+prior`` adds the shipped refiner's
(``models.load_pretrained("refiner_mp21")``) ``refine`` on the same hand when its checkpoint exists
(goal: refiner + prior <= 2 ms per frame).
``ratio`` = baseline / ours (> 1: ours faster).

    python bench/refine.py [--reps 2000] [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine_info, print_json, time_calls, timed_row  # noqa: E402
from models.prior import PosePrior  # noqa: E402
from models.refine_gate import evaluate_gate, shipped_gate  # noqa: E402
from models.registry import load_pretrained  # noqa: E402


def _numpy_reference(prior: PosePrior, x: np.ndarray, conf: np.ndarray, strength: float) -> np.ndarray:
    """The projection of one hand written out plainly (same maths as PosePrior.project, weights off)."""
    root, align = list(prior.root_joints), list(prior.align_joints)
    c = x[root].mean(axis=0)
    rel = x - c
    src = rel[align] - rel[align].mean(axis=0)
    dst = prior.template[align] - prior.template[align].mean(axis=0)
    u, _, vt = np.linalg.svd(src.T @ dst)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    n = (rel @ r.T).reshape(-1) - prior.origin.reshape(-1)
    recon = (prior.basis @ (prior.basis.T @ n)).reshape(-1, 3) + prior.origin
    back = recon @ r + c
    w = (strength * (1.0 - 0.5 * conf))[:, None]
    return x + w * (back - x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    prior = load_pretrained("prior_mp21")
    rng = np.random.default_rng(0)
    coeff = prior.sigma * rng.normal(0, 1, prior.k)
    if prior.scale_free:
        coeff[0] = np.linalg.norm(prior.template)
    hand = (prior.basis @ coeff).reshape(-1, 3) + prior.origin + [0, 0, 450] + rng.normal(0, 4, (prior.num_joints, 3))
    conf = rng.uniform(0.3, 1.0, prior.num_joints)
    s = prior.strength
    # same maths when confidences are off (the reference has no confidence-weighted fit)
    np.testing.assert_allclose(prior.project(hand, None, s), _numpy_reference(prior, hand, np.zeros_like(conf), s), atol=1e-6)
    base = time_calls(lambda: _numpy_reference(prior, hand, conf, s), args.reps, warmup=20)
    gate = shipped_gate("mp21")

    def gated(x: np.ndarray) -> np.ndarray:
        return prior.project(x, conf, s * evaluate_gate(x[None], gate).weight, 0.5)

    ours = time_calls(lambda: gated(hand), args.reps, warmup=20)
    results = [timed_row("prior_mp21", ours, "numpy_reference", base)]
    try:
        refiner = load_pretrained("refiner_mp21")
    except Exception as e:  # noqa: BLE001 - any reason the refiner is unavailable is reported, not fatal
        print(f"refiner unavailable ({type(e).__name__}: {e}); timing the prior only", file=sys.stderr)
    else:
        xyz = hand[None]
        both = time_calls(lambda: gated(refiner.refine(xyz, conf[None])[0]),
                          max(args.reps // 4, 50), warmup=20)  # fmt: skip
        results.append(timed_row("refiner+prior_mp21", both, "numpy_reference", base))
    machine = machine_info(reps=args.reps)
    if args.json:
        print_json(machine, results)
        return
    print(f"{'name':24s} {'median ms':>10s} {'p95 ms':>8s} {'baseline ms':>12s} {'ratio':>6s}")
    for r in results:
        print(f"{r['name']:24s} {r['median_ms']:10.3f} {r['p95_ms']:8.3f} {r['baseline_median_ms']:12.3f} {r['ratio']:6.2f}")


if __name__ == "__main__":
    main()
