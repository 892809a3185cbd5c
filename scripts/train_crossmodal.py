#!/usr/bin/env python
"""Make the cross-modal training data and train :class:`models.crossmodal.CrossModal` (resumable).

Data (``make-data``): shards of paired RGB + depth samples with the real MediaPipe hand models run on
the rendered RGB (:mod:`models.crossmodal_data`), 50 clips per shard, ``--workers`` processes; the
validation shards use seeds from ``VAL_SEED_BASE``.

Training (``train``): AdamW, batches of paired samples; every batch is decoded from the joint RGB-D
posterior and from the RGB posterior alone (:func:`models.crossmodal.crossmodal_loss`), so the RGB
branch learns to decode the pose and the hand's surface on its own. Every ``--eval-every`` steps the
validation shards are scored: the shape error in mm (joints relative to the palm centre, in hand
sizes, times the true hand size) of RGB-only, RGB-D and of MediaPipe's own world landmarks (the
baseline), and the hand-size error. ``OUT/last.pt`` resumes; ``OUT/final.pt`` is the model
(``weights_only`` loadable) with ``OUT/history.json``.

Usage::

    python scripts/train_crossmodal.py make-data --out checkpoints/xm_data --train-clips 800 --val-clips 100
    python scripts/train_crossmodal.py train --data checkpoints/xm_data --out checkpoints/xm --steps 3000 [--light]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARD_CLIPS = 50


def _detector():
    from tracker.stages.landmarks import LandmarkConfig
    from tracker.stages.litert import LiteRTHands

    return LiteRTHands(LandmarkConfig(backend="litert", max_hands=1))


def _shard(args: tuple[str, int, int]) -> dict:
    from models.crossmodal_data import generate_shard

    path, first, n = args
    if Path(path).is_file():
        return {"skipped": path}
    return generate_shard(path, range(first, first + n), _detector)


def make_data(out: Path, train_clips: int, val_clips: int, workers: int) -> None:
    from models.crossmodal_data import VAL_SEED_BASE

    jobs = [(str(out / "train" / f"{i:04d}.npz"), i * SHARD_CLIPS, SHARD_CLIPS)
            for i in range(math.ceil(train_clips / SHARD_CLIPS))]  # fmt: skip
    jobs += [(str(out / "val" / f"{i:04d}.npz"), VAL_SEED_BASE + i * SHARD_CLIPS, SHARD_CLIPS)
             for i in range(math.ceil(val_clips / SHARD_CLIPS))]  # fmt: skip
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        for job, res in zip(jobs, pool.map(_shard, jobs)):
            print(f"{job[0]}: {res} ({time.perf_counter() - t0:.0f} s)", flush=True)


def _batch(data: dict, idx: np.ndarray, device):  # noqa: ANN001, ANN202
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(data[k][idx])).to(device)
         for k in ("landmarks", "points", "cloud", "pose", "log_size")}  # fmt: skip
    t["image"] = torch.from_numpy(np.ascontiguousarray(data["image"][idx])).to(device).permute(0, 3, 1, 2).float() / 255.0
    return t


def evaluate(model, val: dict, device) -> dict:  # noqa: ANN001
    """Shape error (mm) of RGB-only, RGB-D and MediaPipe's world landmarks; hand-size error (mm)."""
    import torch

    from models.crossmodal_data import hand_targets

    model.eval()
    size = np.exp(val["log_size"].astype(np.float64))
    errs = {"rgb": [], "rgbd": []}
    size_err = {"rgb": [], "rgbd": []}
    with torch.no_grad():
        for i in range(0, len(size), 256):
            idx = np.arange(i, min(i + 256, len(size)))
            b = _batch(val, idx, device)
            for name, kwargs in (("rgb", {}), ("rgbd", {"points": b["points"]})):
                out = model(landmarks=b["landmarks"], image=b["image"] if model.config.crop else None, **kwargs)
                d = (out["pose"] - b["pose"]).norm(dim=-1).mean(dim=1).cpu().numpy()
                errs[name].append(d * size[idx])
                size_err[name].append(np.abs(np.exp(out["log_size"].cpu().numpy()) - size[idx]))
    mp = []
    for local, pose, s in zip(val["mp_local"].astype(np.float64), val["pose"], size):
        mp_pose, _, _ = hand_targets(local)
        mp.append(np.linalg.norm(mp_pose - pose, axis=-1).mean() * s)
    model.train()
    return {"rgb_shape_mm": float(np.concatenate(errs["rgb"]).mean()),
            "rgbd_shape_mm": float(np.concatenate(errs["rgbd"]).mean()),
            "mediapipe_shape_mm": float(np.mean(mp)),
            "rgb_size_mm": float(np.concatenate(size_err["rgb"]).mean()),
            "rgbd_size_mm": float(np.concatenate(size_err["rgbd"]).mean()), "n": int(len(size))}  # fmt: skip


def train(args: argparse.Namespace) -> None:
    import torch

    from models.crossmodal import CrossModal, CrossModalConfig, crossmodal_loss
    from models.crossmodal_data import load_shards

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data, val = load_shards(Path(args.data) / "train"), load_shards(Path(args.data) / "val")
    cfg = CrossModalConfig.light() if args.light else CrossModalConfig()
    cfg = replace(cfg, alignment=args.alignment, crop=0 if args.no_image else data["image"].shape[1],
                  cloud_points=data["cloud"].shape[1])  # fmt: skip
    model = CrossModal(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    start, history, seconds = 0, [], 0.0
    if (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        rng.bit_generator.state = ck["rng"]
        start, history, seconds = ck["step"], ck["history"], ck["seconds"]
        print(f"resumed at step {start}", flush=True)
    n = len(data["pose"])
    print(f"{n} training samples, {len(val['pose'])} validation; {sum(p.numel() for p in model.parameters())} "
          f"parameters; {cfg}", flush=True)  # fmt: skip
    for step in range(start, args.steps):
        t0 = time.perf_counter()
        b = _batch(data, rng.integers(0, n, args.batch), device)
        res = model(landmarks=b["landmarks"], image=b["image"] if cfg.crop else None, points=b["points"])
        loss, parts = crossmodal_loss(res, b["pose"], b["log_size"], b["cloud"], cfg.alignment, beta=args.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seconds += time.perf_counter() - t0
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            rec = {"step": step + 1, "loss": float(loss.detach()), **parts, **evaluate(model, val, device),
                   "seconds": round(seconds, 1)}  # fmt: skip
            history.append(rec)
            print(json.dumps(rec), flush=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "rng": rng.bit_generator.state, "step": step + 1, "history": history, "seconds": seconds},
                       out / "last.pt")  # fmt: skip
    meta = {"steps": args.steps, "batch": args.batch, "device": str(device), "seconds": round(seconds, 1),
            "train_samples": n, "val": history[-1] if history else None}  # fmt: skip
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "meta": meta}, out / "final.pt")
    (out / "history.json").write_text(json.dumps({"history": history, "meta": meta}, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("make-data")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--train-clips", type=int, default=800)
    d.add_argument("--val-clips", type=int, default=100)
    d.add_argument("--workers", type=int, default=2)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--beta", type=float, default=1e-3)
    t.add_argument("--alignment", choices=("none", "kl", "poe"), default="poe")
    t.add_argument("--light", action="store_true")
    t.add_argument("--no-image", action="store_true", help="ablation: landmarks only")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args()
    if args.cmd == "make-data":
        make_data(args.out, args.train_clips, args.val_clips, args.workers)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
