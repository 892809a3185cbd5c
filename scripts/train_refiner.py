#!/usr/bin/env python
"""Train the masked joint refiner (:mod:`models.refiner`): BERT-style pre-training, then fine-tuning.

Data (NYU / ICVL development split, :mod:`models.benchmark_data`; nothing from its validation part):

* the *fit* frames (first 70 %) are cut again by time: **fit-train** (its first 80 %) is all the
  networks ever see; **hold-out** (its last 20 %) chooses the fine-tuning step and the blend factor;
* **pre-training** restores masked / noised clean poses (:func:`models.refiner.corrupt_poses`): half
  of each batch is the fit-train ground truth, half synthetic poses from the project's hand model
  (:mod:`models.motion` key shapes + random actions, random bone lengths, seeds < 1,000,000),
  mapped to the layout with :func:`tracker.core.joints.common_joints` and turned to the orientation of a
  random real pose (Kabsch on the shared joints, mirrored when that fits better). Joints with no
  MediaPipe counterpart (NYU ``Wrist1``, ``Wrist2``, ``Palm``; ICVL ``Palm``) are approximated as an
  affine combination of the shared joints fitted on the fit-train ground truth, and left out of the
  loss on synthetic samples. ``mp21``: synthetic poses only, uniformly random orientations;
* **fine-tuning** maps every published method's fit-train predictions to the ground truth (all
  methods pooled, input confidence 1, a little extra input noise, the same random rotation / scale
  applied to prediction and ground truth); ``--exclude`` leaves methods out (leave-one-out scores);
  ``--debias`` keeps each method's mean error per joint in its targets, so the network cannot learn
  the offset the training subject's estimators share (what ``models.refine`` centres away anyway).

Both stages augment with a random rotation about the root (up to 15 deg for the camera-frame
layouts) and a hand-size scale. The blend factor is the largest of 0, 0.1, ..., 1 with the lowest
mean hold-out error among those that make no method worse on the hold-out.

Outputs: ``checkpoints/refiner_<layout>/<run>/last.pt`` (resumable: model, optimizer, step, RNG,
history), ``best.pt`` / ``final.pt`` (:func:`models.refiner.save_refiner` files), ``history.jsonl``;
``--ship`` also writes ``models/weights/refiner_<layout>.pt`` + ``.json`` / ``.md`` cards.

    python scripts/train_refiner.py --layout nyu --stage pretrain --steps 3000
    python scripts/train_refiner.py --layout nyu --stage finetune --init pretrained --steps 1500 --ship
    python scripts/train_refiner.py --layout nyu --stage finetune --init pretrained --debias --steps 600 --ship
    python scripts/train_refiner.py --layout nyu --stage finetune --init random --steps 1500
    python scripts/train_refiner.py --layout nyu --stage finetune --init pretrained --exclude V2V --steps 1500
    python scripts/train_refiner.py --layout mp21 --stage pretrain --steps 3000 --ship
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.depth_datasets import ICVL_INTRINSICS, NYU_INTRINSICS, read_labels, uvd_to_camera  # noqa: E402
from models.benchmark_data import dev_split, ground_truth_path, method_name, prediction_paths  # noqa: E402
from models.hand_model import (  # noqa: E402
    POSE_DIM,
    SHAPE_LIMITS,
    SHAPE_PRIOR_SIGMA,
    forward_kinematics,
    rotvec_to_matrix,
)
from models.motion import ACTIONS, MotionConfig, sample_motion  # noqa: E402
from models.refiner import (  # noqa: E402
    LAYOUTS,
    JointRefiner,
    JointRefinerNet,
    RefinerConfig,
    confidence_weighted_l1,
    corrupt_poses,
    describe,
    normalize_poses,
    save_refiner,
)
from models.registry import load_pretrained, shipped_path  # noqa: E402
from models.v2v import atomic_torch_save  # noqa: E402
from tracker.core.joints import common_joints  # noqa: E402
from tracker.core.metrics import sequence_joint_errors  # noqa: E402

HOLDOUT_FRACTION = 0.2
BLEND_GRID = tuple(round(0.1 * k, 1) for k in range(11))


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkData:
    """Camera-frame (OpenCV, mm) ground truth and predictions of one benchmark, with the split.

    Attributes:
        gt: ``(N, J, 3)``.
        preds: method name -> ``(N, J, 3)``.
        fit_train, holdout, validation: frame indices (time-contiguous, in that order).
    """

    gt: np.ndarray
    preds: dict[str, np.ndarray]
    fit_train: np.ndarray
    holdout: np.ndarray
    validation: np.ndarray


def load_benchmark(dataset: str) -> BenchmarkData:
    """Read the development split of ``dataset`` in the OpenCV camera frame (raises FileNotFoundError)."""
    intr = NYU_INTRINSICS if dataset == "nyu" else ICVL_INTRINSICS
    gt = uvd_to_camera(read_labels(ground_truth_path(dataset), dataset), intr)
    preds = {method_name(p): uvd_to_camera(read_labels(p, dataset), intr) for p in prediction_paths(dataset)}
    fit, val = dev_split(len(gt))
    cut = int(round(len(fit) * (1.0 - HOLDOUT_FRACTION)))
    return BenchmarkData(gt, preds, fit[:cut], fit[cut:], val)


def random_shapes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, SHAPE_DIM)`` adult hand shapes from the model's prior, clipped to its limits."""
    lim = np.array(SHAPE_LIMITS)
    return np.clip(1.0 + np.array(SHAPE_PRIOR_SIGMA) * rng.standard_normal((n, len(lim))), lim[:, 0], lim[:, 1])


def synthetic_mp21(seed: int, num_seqs: int, frames: int = 40, held_out: bool = False,
                   both_hands: bool = True) -> np.ndarray:
    """``(num_seqs * frames, 21, 3)`` mm hand-local poses (wrist at 0) from random motions and shapes;
    left and right hands (``both_hands``) or right hands only.

    Training seeds must be < 1,000,000, held-out (``held_out=True``) seeds >= 1,000,000."""
    if (seed >= 1_000_000) != held_out:
        raise ValueError(f"{'held-out' if held_out else 'training'} seeds must be "
                         f"{'>=' if held_out else '<'} 1,000,000, got {seed}")
    rng = np.random.default_rng(seed)
    cfg = MotionConfig(wrist_rotation_deg=0.0, wrist_translation_mm=0.0)
    poses, shapes, left = [], [], []
    for s in range(num_seqs):
        m = sample_motion(rng, ACTIONS[s % len(ACTIONS)], frames, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), cfg)
        poses.append(m.pose_vectors())
        shapes.append(np.repeat(random_shapes(rng, 1), frames, axis=0))
        left.append(np.full(frames, both_hands and rng.random() < 0.5))
    pose = torch.as_tensor(np.concatenate(poses)).reshape(-1, POSE_DIM)
    with torch.no_grad():
        joints = forward_kinematics(pose, torch.as_tensor(np.concatenate(shapes)), torch.as_tensor(np.concatenate(left)))
    return joints.numpy()


def _kabsch_rotation(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched proper rotations ``R (B, 3, 3)`` minimising ``|R src_c - dst_c|`` and the rms residual (B,)."""
    s = src - src.mean(1, keepdims=True)
    d = dst - dst.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("bji,bjk->bik", s, d))
    sign = np.sign(np.linalg.det(np.einsum("bij,bjk->bik", u, vt)))
    fix = np.ones((len(s), 3))
    fix[:, 2] = sign
    rot = np.einsum("bij,bj,bjk->bki", u, fix, vt)
    res = np.sqrt(((np.einsum("bij,bkj->bki", rot, s) - d) ** 2).sum(-1).mean(1))
    return rot, res


def completion_weights(gt: np.ndarray, layout: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Affine weights predicting the layout joints with no MediaPipe counterpart from the shared ones.

    ``missing_k - mean(shared) = sum_j A[k, j] (shared_j - mean(shared))`` by least squares over the
    given ground truth ``(N, J, 3)`` (rotation and translation equivariant).

    Returns:
        ``(missing joint indices, A (M, S))`` with S the shared joints in :func:`common_joints` order.
    """
    idx_layout, _ = common_joints(layout)
    missing = tuple(j for j in range(gt.shape[1]) if j not in idx_layout)
    shared = gt[:, idx_layout]
    centre = shared.mean(1, keepdims=True)
    design = (shared - centre).transpose(0, 2, 1).reshape(-1, len(idx_layout))  # (N*3, S)
    weights = []
    for k in missing:
        target = (gt[:, k] - centre[:, 0]).reshape(-1)
        weights.append(np.linalg.lstsq(design, target, rcond=None)[0])
    return missing, np.array(weights).reshape(len(missing), len(idx_layout))


#: Chirality probe per layout: (index PIP, pinky PIP, middle PIP, a proximal palm point, thumb MCP).
#: The sign of ``(thumb - knuckle centre) . ((index - pinky) x (middle - palm))`` tells a right hand
#: from its mirror image (its mean over the real GT is +0.90 on NYU, -0.95 on ICVL).
CHIRALITY_PROBE: dict[str, tuple[int, int, int, int, int]] = {
    "mp21": (6, 18, 10, 0, 2), "nyu": (7, 1, 5, 13, 10), "icvl": (4, 13, 7, 0, 1)}


def chirality(poses: np.ndarray, layout: str) -> float:
    """Mean sign of the :data:`CHIRALITY_PROBE` triple product over ``(N, J, 3)`` poses."""
    i, p, m, base, th = CHIRALITY_PROBE[layout]
    normal = np.cross(poses[:, i] - poses[:, p], poses[:, m] - poses[:, base])
    centre = poses[:, [i, p, m]].mean(1)
    return float(np.sign(np.einsum("bc,bc->b", poses[:, th] - centre, normal)).mean())


def synthetic_in_layout(mp21: np.ndarray, layout: str, real: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Map synthetic 21-joint poses (right hands) to ``layout``, oriented like random real poses.

    The synthetic hands are mirrored when the real poses have the other chirality
    (:func:`chirality`), turned by a Kabsch fit of the shared joints to a random real pose, and
    scaled so their mean size (distance of the shared joints to their centroid) matches the real one.

    Returns:
        ``(poses (N, J, 3) mm, loss weight (J,))``: weight 0 on the approximated joints.
    """
    idx_layout, idx_mp = common_joints(layout)
    missing, a = completion_weights(real, layout)
    j = LAYOUTS[layout]
    if np.sign(chirality(mp21, "mp21")) != np.sign(chirality(real, layout)):
        mp21 = mp21 * np.array([-1.0, 1.0, 1.0])
    ref = real[rng.integers(len(real), size=len(mp21))][:, idx_layout]
    src = mp21[:, idx_mp]
    rot, _ = _kabsch_rotation(src, ref)

    def size(p: np.ndarray) -> float:
        return float(np.linalg.norm(p - p.mean(1, keepdims=True), axis=-1).mean())

    posed = np.einsum("bij,bkj->bki", rot, mp21) * (size(real[:, idx_layout]) / size(src))
    out = np.zeros((len(mp21), j, 3))
    out[:, list(idx_layout)] = posed[:, list(idx_mp)]
    shared = out[:, list(idx_layout)]
    centre = shared.mean(1)
    for k, row in zip(missing, a):
        out[:, k] = centre + np.einsum("s,bsc->bc", row, shared - centre[:, None])
    weight = np.ones(j)
    weight[list(missing)] = 0.0
    return out, weight


def random_rotations(g: torch.Generator, n: int, max_deg: float | None) -> torch.Tensor:
    """``(n, 3, 3)`` rotations: uniform over SO(3) (``max_deg`` None) or about a random axis by up to ``max_deg``."""
    axis = torch.randn(n, 3, generator=g, dtype=torch.float64)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-9)
    if max_deg is None:
        q = torch.randn(n, 4, generator=g, dtype=torch.float64)
        q = q / q.norm(dim=1, keepdim=True)
        angle = 2 * torch.acos(q[:, :1].abs().clamp(max=1.0))
        axis = q[:, 1:] / q[:, 1:].norm(dim=1, keepdim=True).clamp_min(1e-9)
    else:
        angle = math.radians(max_deg) * (2 * torch.rand(n, 1, generator=g, dtype=torch.float64) - 1)
    return rotvec_to_matrix(axis * angle)


def augment(g: torch.Generator, poses: list[torch.Tensor], root: torch.Tensor, max_deg: float | None,
            scale: tuple[float, float]) -> list[torch.Tensor]:
    """Rotate and scale each pose set about ``root`` (B, 1, 3) with the same random transform per sample."""
    b = len(root)
    rot = random_rotations(g, b, max_deg).to(root.dtype)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(b, 1, 1, generator=g, dtype=root.dtype)
    return [s * torch.einsum("bij,bkj->bki", rot, p - root) + root for p in poses]


# --------------------------------------------------------------------------------------------------
# Evaluation and blend
# --------------------------------------------------------------------------------------------------
def method_errors(refiner: JointRefiner | None, data: BenchmarkData, frames: np.ndarray,
                  blends: tuple[float, ...] = (1.0,)) -> dict[float, dict[str, float]]:
    """Mean joint error (mm) of every method on ``frames`` after refinement with each blend (None: raw)."""
    out: dict[float, dict[str, float]] = {b: {} for b in blends}
    gt = data.gt[frames]
    names = list(data.preds)
    stacked = np.concatenate([data.preds[m][frames] for m in names])
    if refiner is None:
        for b in blends:
            for k, m in enumerate(names):
                out[b][m] = float(sequence_joint_errors(stacked[k * len(frames):(k + 1) * len(frames)], gt).mean())
        return out
    saved = refiner.blend
    refiner.blend = 1.0
    full = refiner.refine(stacked)
    refiner.blend = saved
    for b in blends:
        mixed = stacked + b * (full - stacked)
        for k, m in enumerate(names):
            out[b][m] = float(sequence_joint_errors(mixed[k * len(frames):(k + 1) * len(frames)], gt).mean())
    return out


def choose_blend(refiner: JointRefiner, data: BenchmarkData, frames: np.ndarray) -> tuple[float, dict[str, float]]:
    """The blend with the lowest mean error over methods among those making no method worse on ``frames``."""
    raw = method_errors(None, data, frames)[1.0]
    per = method_errors(refiner, data, frames, BLEND_GRID)
    best, best_err = 0.0, float(np.mean(list(raw.values())))
    for b in BLEND_GRID:
        if all(per[b][m] <= raw[m] for m in raw):
            err = float(np.mean(list(per[b].values())))
            if err < best_err:
                best, best_err = b, err
    return best, {"blend": best, "mean_raw": float(np.mean(list(raw.values()))), "mean_refined": best_err}


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


class Progress:
    """A one-line text progress bar (carriage return) for scripts."""

    def __init__(self, total: int, every: int = 50) -> None:
        self.total, self.every, self.t0 = total, every, time.monotonic()

    def __call__(self, step: int, text: str) -> None:
        if step % self.every and step != self.total:
            return
        frac = step / max(1, self.total)
        el = time.monotonic() - self.t0
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        eta = el / max(frac, 1e-9) * (1 - frac)
        print(f"\r[{bar}] {step}/{self.total} {el:.0f}s eta {eta:.0f}s {text}", end="", flush=True)
        if step == self.total:
            print(flush=True)


def run(args: argparse.Namespace) -> Path:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    layout = args.layout
    run_name = args.run or (args.stage if args.stage == "pretrain" else
                            f"finetune_{args.init}" + ("_debias" if args.debias else "")
                            + (f"_no_{'_'.join(args.exclude)}" if args.exclude else ""))
    out = Path(args.out) / f"refiner_{layout}" / run_name
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data = load_benchmark(layout) if layout != "mp21" else None
    cfg = RefinerConfig(layout, dim=args.dim, depth=args.depth, heads=args.heads)
    net = JointRefinerNet(cfg).to(device)
    if args.stage == "finetune" and args.init == "pretrained":
        pre = Path(args.out) / f"refiner_{layout}" / "pretrain" / "final.pt"
        net.load_state_dict(load_pretrained(f"refiner_{layout}", path=pre).net.state_dict())
        print(f"initialised from {pre}", flush=True)

    # ---- data pools (tensors, mm) ----
    if args.stage == "pretrain":
        synth = synthetic_mp21(args.seed, args.synthetic_seqs, both_hands=layout == "mp21")
        if layout == "mp21":
            pool, pool_w = synth, np.ones((len(synth), 21))
        else:
            real = data.gt[data.fit_train]
            syn, w = synthetic_in_layout(synth, layout, real, rng)
            reps = max(1, len(syn) // len(real))  # balance real and synthetic
            pool = np.concatenate([np.tile(real, (reps, 1, 1)), syn])
            pool_w = np.concatenate([np.ones((reps * len(real), cfg.num_joints)), np.broadcast_to(w, (len(syn), len(w)))])
        pools = (torch.as_tensor(pool, dtype=torch.float32), torch.as_tensor(pool_w, dtype=torch.float32))
        print(f"pre-training pool: {len(pool)} poses ({len(synth)} synthetic)", flush=True)
    else:
        methods = [m for m in data.preds if not any(e.lower() in m.lower() for e in args.exclude)]
        inputs = np.concatenate([data.preds[m][data.fit_train] for m in methods])
        targets = np.tile(data.gt[data.fit_train], (len(methods), 1, 1))
        if args.debias:  # each method's mean error per joint stays in the target: no offset to learn
            gt = data.gt[data.fit_train]
            targets = targets + np.concatenate([np.broadcast_to((data.preds[m][data.fit_train] - gt).mean(axis=0), gt.shape)
                                                for m in methods])  # fmt: skip
        pools = (torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets, dtype=torch.float32))
        print(f"fine-tuning pairs: {len(inputs)} from {len(methods)} methods "
              f"(excluded: {sorted(set(data.preds) - set(methods)) or 'none'})", flush=True)

    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    step, history, best = 0, [], (math.inf, -1)
    last = out / "last.pt"
    if args.resume and last.is_file():
        blob = torch.load(last, map_location="cpu", weights_only=True)
        net.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        g.set_state(blob["rng"])
        step, history = int(blob["step"]), json.loads(blob["history"])
        best = (float(blob["best_err"]), int(blob["best_step"]))
        print(f"resumed {last} at step {step}", flush=True)

    max_deg = None if layout == "mp21" else args.rotate_deg
    progress = Progress(args.steps)
    t0 = time.monotonic()
    loss_acc = 0.0
    net.train()
    while step < args.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        idx = torch.randint(len(pools[0]), (args.batch,), generator=g)
        if args.stage == "pretrain":
            clean, w = pools[0][idx], pools[1][idx]
            _, root = normalize_poses(clean, torch.ones_like(w), layout)
            (clean,) = augment(g, [clean.double()], root.double(), max_deg, (0.85, 1.15))
            clean = clean.float()
            noisy, conf, mask = corrupt_poses(clean, g)
        else:
            noisy, clean = pools[0][idx], pools[1][idx]
            _, root = normalize_poses(noisy, torch.ones(noisy.shape[:2]), layout)
            noisy, clean = (p.float() for p in augment(g, [noisy.double(), clean.double()], root.double(),
                                                         max_deg, (0.9, 1.1)))
            sigma = args.input_noise_mm * torch.rand(args.batch, 1, 1, generator=g)
            noisy = noisy + sigma * torch.randn(noisy.shape, generator=g)
            conf = torch.ones(noisy.shape[:2])
            mask = torch.zeros(noisy.shape[:2], dtype=torch.bool)
            w = torch.ones(noisy.shape[:2])
        noisy, clean, conf, mask, w = (t.to(device) for t in (noisy, clean, conf, mask, w))
        xn, root = normalize_poses(noisy, conf, layout, cfg.scale_mm)
        xn = torch.where(mask.unsqueeze(-1), torch.zeros_like(xn), xn)
        delta, log_scale = net(xn, conf, mask)
        loss = confidence_weighted_l1(xn + delta, (clean - root) / cfg.scale_mm, log_scale, conf, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        loss_acc += float(loss.detach())
        progress(step, f"loss {float(loss.detach()):.3f}")
        if step % args.eval_every == 0 or step == args.steps:
            rec = {"step": step, "loss": loss_acc / args.eval_every, "wall_s": time.monotonic() - t0}
            loss_acc = 0.0
            if data is not None:
                net.eval()
                ref = JointRefiner(net)
                errs = method_errors(ref, data, data.holdout)[1.0]
                rec["holdout_mean_mm"] = float(np.mean(list(errs.values())))
                if args.stage == "finetune" and rec["holdout_mean_mm"] < best[0]:
                    best = (rec["holdout_mean_mm"], step)
                    save_refiner(net, out / "best.pt", meta={"step": step})
                net.train()
            history.append(rec)
            with open(out / "history.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            atomic_torch_save({"model": net.state_dict(), "opt": opt.state_dict(), "rng": g.get_state(), "step": step,
                               "history": json.dumps(history), "best_err": best[0], "best_step": best[1]}, last)
            print(f"\nstep {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in rec.items() if k != "step"), flush=True)

    net.eval()
    if args.stage == "finetune" and (out / "best.pt").is_file():
        net = load_pretrained(f"refiner_{layout}", path=out / "best.pt").net
    refiner = JointRefiner(net)
    meta: dict = {
        "layout": layout, "stage": args.stage, "init": args.init if args.stage == "finetune" else "random",
        "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "device": str(device), "torch": torch.__version__, "machine": platform.machine(),
        "threads": args.threads, "wall_s": round(time.monotonic() - t0, 1), "model": describe(net),
        "excluded_methods": args.exclude, "debias": bool(getattr(args, "debias", False)),
    }
    blend = 1.0
    if data is not None:
        blend, sel = choose_blend(refiner, data, data.holdout)
        meta.update({"best_step": best[1], "holdout": sel,
                     "data": f"{layout} development split, fit-train frames {data.fit_train[0]}-{data.fit_train[-1]}, "
                             f"hold-out {data.holdout[0]}-{data.holdout[-1]} (validation {data.validation[0]}-"
                             f"{data.validation[-1]} never used)"})
        if args.stage == "pretrain":
            meta["data"] += f"; + {args.synthetic_seqs * 40} synthetic hand-model poses (seed {args.seed})"
    else:
        meta["data"] = f"{args.synthetic_seqs * 40} synthetic hand-model poses (seed {args.seed}), random orientations"
        blend = choose_blend_synthetic(refiner)
        refiner.blend = blend
        meta["synthetic_denoise_heldout"] = synthetic_score(refiner)
    refiner.blend = blend
    save_refiner(net, out / "final.pt", blend=blend, meta=meta)
    print(f"saved {out / 'final.pt'} (blend {blend})", flush=True)
    if args.ship:
        ship(net, blend, meta)
    return out / "final.pt"


def synthetic_score(refiner: JointRefiner, seed: int = 1_000_000, num_seqs: int = 20,
                    blends: tuple[float, ...] | None = None) -> dict[str, float]:
    """Held-out (seed >= 1,000,000) 21-joint poses, random orientations, corrupted as in pre-training
    (one joint masked per pose, noise, outliers): mean error (mm) of the visible joints before and
    after refinement, and of the masked joint as the refiner fills it in."""
    clean = synthetic_mp21(seed, num_seqs, held_out=seed >= 1_000_000)
    g = torch.Generator().manual_seed(seed)
    c = torch.as_tensor(clean, dtype=torch.float32)
    c = augment(g, [c.double()], c.double().mean(1, keepdim=True), None, (1.0, 1.0))[0].float()
    c = c + torch.tensor([0.0, 0.0, 500.0])
    noisy, conf, mask = corrupt_poses(c, g, mask_range=(0.0, 0.0), informative_conf=0.0)
    refined = refiner.refine(noisy.numpy(), conf.numpy())
    m = mask.numpy()
    e_in = np.linalg.norm(noisy.numpy() - c.numpy(), axis=-1)
    e_out = np.linalg.norm(refined - c.numpy(), axis=-1)
    out = {"visible_noisy_mm": round(float(e_in[~m].mean()), 3), "visible_refined_mm": round(float(e_out[~m].mean()), 3),
           "masked_filled_mm": round(float(e_out[m].mean()), 3)}
    for b in blends or ():
        mixed = noisy.numpy() + b * (refined - noisy.numpy())
        out[f"visible_blend_{b}_mm"] = round(float(np.linalg.norm(mixed - c.numpy(), axis=-1)[~m].mean()), 3)
    return out


def choose_blend_synthetic(refiner: JointRefiner, seed: int = 999_999) -> float:
    """``mp21``: the blend with the lowest visible-joint error on a synthetic hold-out from a training
    seed the run did not use (masked joints always get the full prediction)."""
    saved, refiner.blend = refiner.blend, 1.0
    score = synthetic_score(refiner, seed, blends=BLEND_GRID)
    refiner.blend = saved
    return min(BLEND_GRID, key=lambda b: score[f"visible_blend_{b}_mm"])


def ship(net: JointRefinerNet, blend: float, meta: dict) -> None:
    """Write ``models/weights/refiner_<layout>.pt`` and its ``.json`` / ``.md`` card."""
    path = shipped_path(f"refiner_{net.config.layout}")
    save_refiner(net, path, blend=blend, meta=meta)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [f"# Masked joint refiner, {net.config.layout} layout", "",
             "Made by `scripts/train_refiner.py` (see its docstring for the recipe); loaded with "
             f"`models.load_pretrained(\"refiner_{net.config.layout}\")`. float16 weights, "
             "`torch.load(weights_only=True)`.", "",
             "| key | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in meta.items()]
    lines += ["", f"Applied blend (fraction of the correction): {blend}."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"shipped {path}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=tuple(LAYOUTS), required=True)
    p.add_argument("--stage", choices=("pretrain", "finetune"), required=True)
    p.add_argument("--init", choices=("pretrained", "random"), default="pretrained",
                   help="fine-tuning start: the pre-trained run of this layout, or random weights")
    p.add_argument("--exclude", nargs="*", default=[], help="leave out methods whose name contains any of these")
    p.add_argument("--debias", action="store_true",
                   help="fine-tune towards GT + each method's mean error per joint (over its fit-train frames): "
                        "the refiner learns frame-to-frame corrections, not the training subject's offset")
    p.add_argument("--run", default=None, help="run folder name (default from stage/init/exclude)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--rotate-deg", type=float, default=15.0)
    p.add_argument("--input-noise-mm", type=float, default=2.0, help="extra fine-tuning input noise std, up to")
    p.add_argument("--synthetic-seqs", type=int, default=300, help="synthetic motions of 40 frames")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(_REPO / "checkpoints"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ship", action="store_true", help="also write models/weights/refiner_<layout>.pt + cards")
    args = p.parse_args(argv)
    if args.seed >= 1_000_000:
        p.error("training seeds must be < 1,000,000")
    return args


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
