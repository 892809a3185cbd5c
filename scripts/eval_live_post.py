#!/usr/bin/env python
"""Do the live 21-joint stages (``--prior``, ``--refine``) help? Block-fold validation on real photos.

The development split of ``realworld_rgb_hgcnn`` (200 photos of one subject) goes once through the
project's RGB pipeline exactly as ``scripts/evaluate_rgb.py``'s static pass runs it (no prior, no
refiner); the detected hands are then post-processed offline by the live stages
(:class:`tracker.post.prior.PriorStage`, :class:`tracker.post.refiner.RefinerStage`) and scored
against the GT: Procrustes-aligned (PA), root-relative and camera-space mean joint error, mm.

Folds: ``BLOCKS`` contiguous blocks of photos. For each held-out block the prior is refitted the way
the shipped ``prior_mp21`` is made (synthetic hand-model poses + the real GT of the *other* blocks,
:mod:`models.prior_fit`) and the gate reference (:mod:`models.refine_gate`) is made from the other
blocks' GT and pipeline outputs; the refiner (synthetic-only training) is the shipped one. A strength
is chosen on the other blocks (no block worse in PA or camera error, then the lowest mean PA) and
scored on the held-out one. Then ``--generated`` rendered sequences of the data engine (camera-space
ground truth for every frame) go through the default pipeline and are scored the same way with the
shipped prior and gate. Prints Markdown; ``--out`` writes it; ``--write-gate`` writes the shipped
``models/weights/refine_gate_mp21.json`` from photos 0-139 (the shipped prior's fit photos).

    python scripts/eval_live_post.py [--out docs/live_postprocess.md] [--write-gate] [--synthetic-only] [--generated 8]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
for p in (_REPO, _REPO / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from evaluate_rgb import load_realworld, match_hands, run_pipeline  # noqa: E402
from models.prior import fit_prior  # noqa: E402
from models.prior_fit import synthetic_hand_poses  # noqa: E402
from models.refine_gate import calibrate_gate, evaluate_gate  # noqa: E402
from models.registry import load_pretrained, shipped_path  # noqa: E402
from tracker.core.data_root import data_root  # noqa: E402
from tracker.core.metrics import mean_joint_error, procrustes_align, root_relative  # noqa: E402
from tracker.post.prior import PriorStage  # noqa: E402
from tracker.post.refiner import RefinerStage  # noqa: E402

BLOCKS = 4
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
SHIPPED_FIT_PHOTOS = 140
GENERATED_SEED = 2_300_000  # generated sequences: seeds apart from training and the other evaluations


def generated_hands(sequences: int, frames: int) -> list[tuple[int, object, np.ndarray]]:
    """``(sequence, HandPose, GT (21, 3) mm camera frame)`` of the default RGB pipeline (tracking mode,
    no smoothing, one hand) on rendered data-engine sequences with sensor-like images."""
    from models.synthetic import SENSOR_LIKE, SceneConfig, render_frameset, sample_scene
    from tracker.build import build_pipeline
    from tracker.config import TrackerConfig, override

    config = override(TrackerConfig(), **{"depth.estimator": "mediapipe", "landmarks.max_hands": 1, "smoothing": None,
                                          "prior.enabled": False})  # raw: the stages are applied below  # fmt: skip
    out = []
    for k in range(sequences):
        scene = sample_scene(GENERATED_SEED + k, SceneConfig(num_frames=frames))
        pipeline = build_pipeline(config)
        try:
            for t in range(frames):
                fs = render_frameset(scene, t, SENSOR_LIKE)
                hands = list(pipeline(fs).hands)
                if hands and hands[0].joints_3d is not None:
                    out.append((k, hands[0], fs.frames[0].ground_truth.joints_3d[0]))
        finally:
            pipeline.close()
    return out


def generated_report(sequences: int, frames: int) -> list[str]:
    """Shipped prior (gated, each strength) and refiner on generated sequences: mean mm per sequence."""
    found = generated_hands(sequences, frames)
    prior, refiner = load_pretrained("prior_mp21"), RefinerStage(load_pretrained("refiner_mp21"))
    gate = PriorStage(prior).gate
    rows: dict[str, np.ndarray] = {}
    for use_refiner in (False, True):
        for s in STRENGTHS:
            stage = PriorStage(prior, strength=s)
            errs = np.full((sequences, 3), np.nan)
            for k in range(sequences):
                e = []
                for seq, h, g in found:
                    if seq == k:
                        h = refiner(None, [h])[0] if use_refiner else h  # type: ignore[arg-type]
                        e.append(_scores(stage(None, [h])[0].joints_3d, g))  # type: ignore[arg-type]
                if e:
                    errs[k] = np.mean(e, axis=0)
            rows[("refiner + " if use_refiner else "") + f"prior {s:g}"] = errs
    weights = [evaluate_gate(h.joints_3d[None], gate).weight for _, h, _ in found]
    base = rows["prior 0"]
    seen = np.isfinite(base[:, 0])  # sequences where the pipeline found the hand at least once
    if not seen.any():
        return ["", "## Generated sequences: the pipeline found no hand; nothing scored", ""]
    lines = ["", f"## Generated sequences ({sequences} x {frames} frames, seeds {GENERATED_SEED}+, "
             f"{len(found)} frames with a hand; shipped prior, shipped gate)", "",
             "Mean joint error, mm (PA / root-relative / camera), mean over sequences; sequences better "
             "than without the stages in PA and camera error.", "",
             "| setting | PA | root-relative | camera | sequences better (PA, camera) |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, e in rows.items():
        m = e[seen].mean(axis=0)
        better = f"{int((e[seen, 0] < base[seen, 0]).sum())}, {int((e[seen, 2] < base[seen, 2]).sum())} of {int(seen.sum())}"
        lines.append(f"| {name} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {better} |")
    lines += ["", f"Gate weight per frame: mean {np.mean(weights):.3f}, min {np.min(weights):.2f}, "
              f"{100 * np.mean(np.asarray(weights) < 1):.0f} % of frames below 1.", ""]  # fmt: skip
    return lines


def _scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    """(PA, root-relative, camera) mean joint error, mm, of one hand."""
    return (mean_joint_error(procrustes_align(pred, gt), gt), mean_joint_error(root_relative(pred), root_relative(gt)),
            mean_joint_error(pred, gt))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    ap.add_argument("--write-gate", action="store_true", help="write models/weights/refine_gate_mp21.json")
    ap.add_argument("--generated", type=int, default=12, metavar="N",
                    help="also score N generated sequences of the data engine (0 = skip)")
    ap.add_argument("--frames", type=int, default=30, help="frames per generated sequence")
    ap.add_argument("--synthetic-only", action="store_true",
                    help="fit the fold priors on the synthetic poses alone (no real hand of this subject)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = data_root() / "realworld_rgb_hgcnn"
    if not (root / "realworld_testset.npz").is_file():
        print(f"[skip] {root} not found", file=sys.stderr)
        return 0
    samples = load_realworld(root, None)
    hands = run_pipeline(samples, video=False, dt_s=0.1)
    found = []  # (photo index, HandPose, GT 3D)
    for i, (s, dets) in enumerate(zip(samples, hands)):
        d = match_hands(dets, s.hands)[0]
        if d is not None and dets[d].joints_3d is not None:
            found.append((i, dets[d], s.hands[0].joints_3d))
    print(f"{len(found)}/{len(samples)} photos with a detected 3D hand", flush=True)
    gt_all = np.stack([g for _, _, g in found])
    idx = np.array([i for i, _, _ in found])
    raw = [h for _, h, _ in found]
    synth = synthetic_hand_poses()
    shipped = load_pretrained("prior_mp21")
    refiner = RefinerStage(load_pretrained("refiner_mp21"))
    refined = [refiner(None, [h])[0] for h in raw]  # type: ignore[arg-type]
    edges = np.linspace(0, len(samples), BLOCKS + 1).astype(int)
    # (refiner on/off, strength, block) -> [PA, RR, camera]
    table: dict[tuple[bool, float], np.ndarray] = {}
    gates = []
    for b in range(BLOCKS):
        held = (idx >= edges[b]) & (idx < edges[b + 1])
        real_train = np.stack([s.hands[0].joints_3d for i, s in enumerate(samples) if not edges[b] <= i < edges[b + 1]])
        prior = fit_prior(synth if args.synthetic_only else np.concatenate([synth, real_train]), "mediapipe",
                          k=shipped.k - 1)
        train_out = [h.joints_3d[None] for h, keep in zip(raw, ~held) if keep]  # bone lengths: mirror-free
        gate = calibrate_gate("mediapipe", real_train, train_out, source=f"fold {b}")
        for use_refiner, inputs in ((False, raw), (True, refined)):
            for s in STRENGTHS:
                stage = PriorStage(prior, strength=s, gate=gate)
                errs = []
                for h, g, keep in zip(inputs, gt_all, held):
                    if keep:
                        out = stage(None, [h])[0]  # type: ignore[arg-type]
                        errs.append(_scores(out.joints_3d, g))
                        if use_refiner is False and s == 1.0:
                            gates.append(evaluate_gate(h.joints_3d[None], gate).weight)
                table.setdefault((use_refiner, s), np.zeros((BLOCKS, 3)))[b] = np.mean(errs, axis=0)
    base = table[(False, 0.0)]
    lines = ["# Live 21-joint stages on the real-photo development split (block folds)", "",
             f"Made by `python scripts/eval_live_post.py`: {len(found)}/{len(samples)} photos with a detected hand, "
             f"{BLOCKS} contiguous blocks of photos; the prior ({'synthetic poses only' if args.synthetic_only else 'synthetic + real GT'}) "
             "and the gate refitted without the held-out block. "
             "Mean joint error, mm: PA / root-relative / camera.", "",
             "| setting | " + " | ".join(f"block {b + 1} ({edges[b]}-{edges[b + 1] - 1})" for b in range(BLOCKS))
             + " | mean PA | mean camera |", "|---" + "|---:" * (BLOCKS + 2) + "|"]  # fmt: skip
    for (r, s), e in table.items():
        name = ("refiner + " if r else "") + f"prior {s:g}"
        cells = [f"{e[b, 0]:.2f} / {e[b, 1]:.2f} / {e[b, 2]:.2f}" for b in range(BLOCKS)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {e[:, 0].mean():.2f} | {e[:, 2].mean():.2f} |")
    held_rows = []
    for b in range(BLOCKS):
        other = np.arange(BLOCKS) != b
        ok = [k for k, e in table.items() if (e[other, 0] <= base[other, 0]).all() and (e[other, 2] <= base[other, 2]).all()]
        best = min(ok, key=lambda k: table[k][other, 0].mean()) if ok else (False, 0.0)
        e = table[best][b]
        held_rows.append(f"block {b + 1}: chosen on the others {'refiner + ' if best[0] else ''}prior {best[1]:g} -> "
                         f"PA {base[b, 0]:.2f} -> {e[0]:.2f}, camera {base[b, 2]:.2f} -> {e[2]:.2f} mm")  # fmt: skip
    lines += ["", "Held-out choice (no block worse in PA or camera error on the other blocks, then lowest PA):", "",
              *(f"- {r}" for r in held_rows), "",
              f"Gate weights at strength 1 (no refiner): min {min(gates):.2f}, mean {np.mean(gates):.3f}.", ""]
    if args.generated > 0:
        lines += generated_report(args.generated, args.frames)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.write_gate:
        fit = idx < SHIPPED_FIT_PHOTOS
        real_fit = np.stack([s.hands[0].joints_3d for s in samples[:SHIPPED_FIT_PHOTOS]])
        outs = [h.joints_3d[None] for h, keep in zip(raw, fit) if keep]
        gate = calibrate_gate("mediapipe", real_fit, outs,
                              source=f"realworld_rgb_hgcnn photos 0-{SHIPPED_FIT_PHOTOS - 1}: GT bone lengths and "
                                     "the RGB pipeline's hands on them")  # fmt: skip
        gate.save(shipped_path("prior_mp21").with_name("refine_gate_mp21.json"))
        print("wrote models/weights/refine_gate_mp21.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
