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
baseline), and the hand-size error. Targets and depth points are in the frame of the viewing ray
through the hand (:func:`models.crossmodal_data.to_ray_frame`), as MediaPipe's world landmarks are;
the image crops get photometric augmentation (``--no-augment`` turns it off). ``OUT/last.pt`` resumes; ``OUT/final.pt`` is the model
(:func:`models.crossmodal.save_weights`, ``weights_only`` loadable) with ``OUT/history.json``;
``--ship`` also copies it to ``models/weights/crossmodal_light.pt`` (the shipped model's name:
``crossmodal``, :mod:`models.registry`).

Usage::

    python scripts/train_crossmodal.py make-data --out checkpoints/xm_data --train-clips 800 --val-clips 100
    python scripts/train_crossmodal.py train --data checkpoints/xm_data --out checkpoints/xm --steps 3000 [--light]
    python scripts/train_crossmodal.py pack --data checkpoints/xm_data --out xm_pack   # JPEG crops, uint8 points
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


_KEYS = ("image", "landmarks", "points", "cloud", "pose", "log_size")


def on_device(data: dict, device) -> dict:  # noqa: ANN001
    """The training arrays as tensors on ``device``, once (a few hundred MB at most: fits any GPU)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(data[k])).to(device) for k in _KEYS}


def batch_tensors(data: dict, idx, device, augment: bool = False):  # noqa: ANN001, ANN202
    """The samples ``idx`` (a tensor of indices) of :func:`on_device` tensors; ``augment``: photometric
    domain randomisation of the crops (per sample: brightness x0.6-1.4, contrast x0.7-1.3, per-channel
    gain x0.85-1.15, grey 10 %, pixel noise up to 4 %), for a model that must also work on real images."""
    import torch

    t = {k: data[k][idx] for k in _KEYS if k != "image"}
    img = data["image"][idx].permute(0, 3, 1, 2).float() / 255.0
    if augment:
        b = len(idx)
        u = lambda lo, hi, *shape: torch.empty(b, *shape, 1, 1, device=device).uniform_(lo, hi)  # noqa: E731
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - mean) * u(0.7, 1.3, 1) + mean
        img = img * u(0.6, 1.4, 1) * u(0.85, 1.15, 3)
        grey = (torch.rand(b, 1, 1, 1, device=device) < 0.1).float()
        img = grey * img.mean(dim=1, keepdim=True).expand_as(img) + (1 - grey) * img
        img = (img + torch.randn_like(img) * u(0.0, 0.04, 1)).clamp(0.0, 1.0)
    t["image"] = img
    return t


def load_part(data: Path, part: str) -> dict:
    """The samples of ``DATA/train`` or ``DATA/val`` (shards, or a ``pack`` file ``DATA/train.npz``), in the
    ray frame (:func:`models.crossmodal_data.to_ray_frame`)."""
    from models.crossmodal_data import load_shards, to_ray_frame

    return to_ray_frame(load_shards(data / f"{part}.npz" if (data / f"{part}.npz").is_file() else data / part))


def evaluate(model, val: dict, device) -> dict:  # noqa: ANN001
    """Shape error (mm) of RGB-only, RGB-D and MediaPipe's world landmarks; hand-size error (mm)."""
    import torch

    from models.crossmodal_data import hand_targets

    model.eval()
    tensors = on_device(val, device)
    size = np.exp(val["log_size"].astype(np.float64))
    errs = {"rgb": [], "rgbd": []}
    size_err = {"rgb": [], "rgbd": []}
    with torch.no_grad():
        for i in range(0, len(size), 256):
            idx = np.arange(i, min(i + 256, len(size)))
            b = batch_tensors(tensors, torch.from_numpy(idx).to(device), device)
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

    from models.crossmodal import CrossModal, CrossModalConfig, crossmodal_loss, save_weights

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data, val = (load_part(Path(args.data), part) for part in ("train", "val"))
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
    tensors = on_device(data, device)
    print(f"{n} training samples, {len(val['pose'])} validation; {sum(p.numel() for p in model.parameters())} "
          f"parameters; {cfg}", flush=True)  # fmt: skip
    for step in range(start, args.steps):
        t0 = time.perf_counter()
        b = batch_tensors(tensors, torch.from_numpy(rng.integers(0, n, args.batch)).to(device), device,
                   augment=not args.no_augment)  # fmt: skip
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
    meta = {"steps": args.steps, "batch": args.batch, "alignment": cfg.alignment, "augment": not args.no_augment,
            "frame": "ray", "device": str(device), "seconds": round(seconds, 1),
            "train_samples": n, "points": int(data["points"].shape[1]), "crop": int(data["image"].shape[1]),
            "val": history[-1] if history else None}  # fmt: skip
    save_weights(model, out / "final.pt", meta)
    (out / "history.json").write_text(json.dumps({"history": history, "meta": meta}, indent=1))
    if args.ship:
        from models.registry import shipped_path

        save_weights(model, shipped_path("crossmodal"), meta)
        print(f"shipped {shipped_path('crossmodal')}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("make-data")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--train-clips", type=int, default=800)
    d.add_argument("--val-clips", type=int, default=100)
    d.add_argument("--workers", type=int, default=2)
    k = sub.add_parser("pack", help="a compact copy of the data (JPEG crops, uint8 points) to move it to a GPU machine")
    k.add_argument("--data", required=True, type=Path)
    k.add_argument("--out", required=True, type=Path)
    k.add_argument("--crop", type=int, default=64)
    k.add_argument("--points", type=int, default=256)
    k.add_argument("--cloud-points", type=int, default=128)
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
    t.add_argument("--no-augment", action="store_true", help="ablation: no photometric augmentation of the crops")
    t.add_argument("--ship", action="store_true", help="also write the shipped models/weights/crossmodal_light.pt")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args()
    if args.cmd == "make-data":
        make_data(args.out, args.train_clips, args.val_clips, args.workers)
    elif args.cmd == "pack":
        from models.crossmodal_data import pack_shards

        args.out.mkdir(parents=True, exist_ok=True)
        for part in ("train", "val"):
            print(part, pack_shards(args.data / part, args.out / f"{part}.npz", args.crop, args.points,
                                    args.cloud_points), flush=True)  # fmt: skip
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
