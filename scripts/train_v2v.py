#!/usr/bin/env python
"""Train V2V-PoseNet (or its reference-point refinement net) on synthetic depth from the data engine.

The paper's recipe: per-voxel MSE against Gaussian heatmaps (sigma 1.7 voxels), RMSprop lr 2.5e-4,
batch 8, augmentation by rotation about the camera z axis, scaling and translation
(:mod:`models.v2v_data`). Samples are drawn by index (fresh scenes from seeds below 1,000,000, or a
pre-rendered bank of crops cycled with fresh augmentations: ``--bank N``, the sensible choice on a
CPU, where rendering costs more than a training step); step ``s`` always sees the same samples, so a
resumed run continues exactly.

Outputs under ``--out`` (default ``checkpoints/<model>``):

* ``last.pt``: model + optimizer + scaler + step + RNG state + history, written atomically every
  ``--ckpt-every`` steps and at the end; ``--resume`` continues from it;
* ``<model>.pt``: the final weights, float16, ``torch.load(path, weights_only=True)``-loadable
  (:func:`models.v2v.load_weights`);
* ``<model>.json`` / ``<model>.md``: the card (data, steps, device, wall time, validation score);
* ``history.jsonl``: one line per logged step and per validation.

Validation runs the real inference path (:class:`models.v2v_infer.V2VEstimator`: Numba voxelization,
network, sub-voxel argmax) on the committed held-out set ``assets/synth_eval/single_view.npz``, with
the reference point of :func:`models.v2v_data.eval_reference_points`.

    python scripts/train_v2v.py --model v2v_light --steps 3000 --bank 2000 --device cpu
    python scripts/train_v2v.py --model v2v_full --steps 40000 --workers 12 --device cuda   # AMP on CUDA
    python scripts/train_v2v.py --model v2v_light --resume            # continue checkpoints/v2v_light/last.pt
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
#: The committed held-out set (scripts/make_synth_eval.py); evaluation data of the checkout, not of the package.
DEFAULT_EVAL_PATH = _REPO / "assets" / "synth_eval" / "single_view.npz"

from models.v2v import atomic_torch_save, create_model, model_config, save_weights  # noqa: E402
from models.v2v_data import (  # noqa: E402
    WORKER_CONTEXT,
    CropBank,
    SyntheticV2VDataset,
    V2VDataConfig,
    eval_reference_points,
    load_eval_set,
    render_hand_crop,
)
from models.v2v_infer import RefPointRefiner, V2VEstimator  # noqa: E402
from tracker.core.metrics import sequence_joint_errors  # noqa: E402


class IndexRange(Sampler[int]):
    """Indices ``start, start + 1, ..., stop - 1`` (the sample order of a run, resumable by step)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = int(start), int(stop)

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class _CropRender(Dataset):
    """Renders crops ``0..n-1`` (for building a bank in worker processes)."""

    def __init__(self, n: int, config: V2VDataConfig) -> None:
        self.n, self.config = n, config

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return render_hand_crop(i, self.config)


def _identity(x):
    return x


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device(name)


def build_bank(n: int, config: V2VDataConfig, workers: int, cache: Path | None) -> CropBank:
    if cache is not None and cache.is_file():
        bank = CropBank.load(cache)
        if len(bank) >= n:
            print(f"crop bank: {len(bank)} crops from {cache}", flush=True)
            return bank
    t0 = time.monotonic()
    crops = []
    tty = sys.stdout.isatty()
    cr, end = ("\r", "") if tty else ("", "\n")
    kw = {"num_workers": workers, "multiprocessing_context": WORKER_CONTEXT} if workers > 0 else {}
    loader = DataLoader(_CropRender(n, config), batch_size=None, collate_fn=_identity, **kw)
    for i, c in enumerate(loader):
        crops.append(c)
        if (i + 1) % max(1, n // 20) == 0 or i + 1 == n:
            el = time.monotonic() - t0
            print(f"{cr}crop bank: {i + 1}/{n} rendered, {el:.0f} s, eta {el / (i + 1) * (n - i - 1):.0f} s",
                  end=end, flush=True)  # fmt: skip
    if tty:
        print(flush=True)
    bank = CropBank(crops)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        bank.save(cache)
    return bank


def validate(model: torch.nn.Module, arch: str, es, refs: np.ndarray, device: torch.device, batch: int) -> dict:
    """Mean 3D error (mm) of the model on the eval set through the inference path."""
    was_training = model.training
    t0 = time.monotonic()
    try:
        if arch == "v2v":
            est = V2VEstimator(model, device=device)
            joints = np.full(es.joints.shape, np.nan)
            for s in range(0, len(es), batch):
                e = est.estimate_batch(es.depth[s:s + batch], es.K[s:s + batch], refs[s:s + batch])
                joints[s:s + batch] = e.joints
            err = sequence_joint_errors(joints, es.joints)
            ok = np.isfinite(err).all(1)
            return {"val_mean_mm": float(err[ok].mean()) if ok.any() else float("nan"),
                    "val_median_mm": float(np.median(err[ok])) if ok.any() else float("nan"),
                    "val_failed": int((~ok).sum()), "val_frames": len(es), "val_s": time.monotonic() - t0}
        ref = RefPointRefiner(model, device=device)
        out = np.concatenate([ref.refine_batch(es.depth[s:s + batch], es.K[s:s + batch], refs[s:s + batch])
                              for s in range(0, len(es), batch)])  # fmt: skip
        centre = es.joints.mean(1)
        e0 = np.linalg.norm(refs - centre, axis=1)
        e1 = np.linalg.norm(out - centre, axis=1)
        ok = np.isfinite(e0) & np.isfinite(e1)
        return {"val_mean_mm": float(e1[ok].mean()), "val_com_mean_mm": float(e0[ok].mean()),
                "val_failed": int((~ok).sum()), "val_frames": len(es), "val_s": time.monotonic() - t0}
    finally:
        model.train(was_training)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="v2v_light", help="registered model (models.v2v.MODEL_CONFIGS)")
    ap.add_argument("--steps", type=int, default=2000, help="optimizer steps in total")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--optimizer", choices=("rmsprop", "adam"), default="rmsprop")
    ap.add_argument("--lr", type=float, default=2.5e-4, help="paper: RMSprop 2.5e-4")
    ap.add_argument("--lr-final", type=float, default=None,
                    help="cosine-decay the learning rate to this by the last step (default: constant)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (spawned)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--bank", type=int, default=0, help="pre-render this many crops and cycle them (0: render)")
    ap.add_argument("--bank-cache", type=Path, default=None, help="load/save the crop bank here (.npz)")
    ap.add_argument("--seed", type=int, default=0, help="augmentation and initialisation seed")
    ap.add_argument("--out", type=Path, default=None, help="checkpoint folder (default checkpoints/<model>)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-limit", type=int, default=None, help="validate on this many eval frames (default all)")
    ap.add_argument("--eval-set", type=Path, default=DEFAULT_EVAL_PATH)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--time-limit-min", type=float, default=None, help="stop (and save) after this wall time")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    mcfg = model_config(args.model)
    out = args.out or (_REPO / "checkpoints" / args.model)
    out.mkdir(parents=True, exist_ok=True)
    amp = device.type == "cuda" and not args.no_amp

    model = create_model(args.model, device=device)
    arch = mcfg.arch
    if arch == "v2v":
        dcfg = V2VDataConfig(cube_mm=mcfg.cube_mm, in_grid=mcfg.in_grid)
    else:
        dcfg = V2VDataConfig(refpoint_cube_mm=mcfg.cube_mm, refpoint_grid=mcfg.in_grid)
    if args.optimizer == "rmsprop":
        opt: torch.optim.Optimizer = torch.optim.RMSprop(model.parameters(), lr=args.lr)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    step, history, wall_before = 0, [], 0.0
    last = out / "last.pt"
    if args.resume:
        if not last.is_file():
            raise SystemExit(f"--resume: no checkpoint at {last}")
        ck = torch.load(last, map_location=device, weights_only=True)
        if ck["model_name"] != args.model:
            raise SystemExit(f"--resume: {last} is a {ck['model_name']} checkpoint, not {args.model}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        step, history, wall_before = int(ck["step"]), list(ck["history"]), float(ck["wall_s"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        print(f"resumed {last} at step {step}", flush=True)

    es = load_eval_set(args.eval_set, args.val_limit)
    eval_refs = eval_reference_points(es, dcfg)

    bank = build_bank(args.bank, dcfg, args.workers, args.bank_cache) if args.bank > 0 else None
    total = args.steps * args.batch_size
    ds = SyntheticV2VDataset(dcfg, length=max(total, 1), seed=args.seed, bank=bank, target=arch)
    kw: dict = {}
    if args.workers > 0:
        kw = {"num_workers": args.workers, "multiprocessing_context": WORKER_CONTEXT, "persistent_workers": False,
              "prefetch_factor": 4}
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=IndexRange(step * args.batch_size, total),
                        drop_last=True, pin_memory=device.type == "cuda", **kw)  # fmt: skip

    def lr_at(s: int) -> float:
        if args.lr_final is None:
            return args.lr
        return args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * s / max(1, args.steps)))

    def save_last() -> None:
        atomic_torch_save({"model_name": args.model, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "scaler": scaler.state_dict(), "step": step, "history": history,
                           "wall_s": wall_before + time.monotonic() - t_start, "torch_rng": torch.get_rng_state(),
                           "args": {k: str(v) for k, v in vars(args).items()}}, last)  # fmt: skip

    hist_file = (out / "history.jsonl").open("a")

    def record(entry: dict) -> None:
        history.append(entry)
        hist_file.write(json.dumps(entry) + "\n")
        hist_file.flush()

    print(f"training {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params) on {device}"
          f"{' with AMP' if amp else ''}: steps {step}..{args.steps}, batch {args.batch_size}, "
          f"{args.optimizer} lr {args.lr:g}, data {'bank of %d crops' % len(bank) if bank else 'rendered'}",
          flush=True)  # fmt: skip
    model.train()
    t_start = time.monotonic()
    t_log, loss_acc, n_acc, stopped = time.monotonic(), 0.0, 0, False
    for batch in loader:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = batch["grid"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            pred = model(x)
            if arch == "v2v":
                target = batch["heatmaps"].to(device, non_blocking=True)
                loss = torch.nn.functional.mse_loss(pred.float(), target)
            else:
                target = batch["offset"].to(device, non_blocking=True) / model.offset_scale_mm
                loss = torch.nn.functional.smooth_l1_loss(pred.float() / model.offset_scale_mm, target)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        step += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        wall = wall_before + time.monotonic() - t_start
        if step % args.log_every == 0 or step == args.steps:
            rate = n_acc / max(1e-9, time.monotonic() - t_log)
            eta = (args.steps - step) / max(rate, 1e-9)
            record({"step": step, "loss": loss_acc / n_acc, "lr": lr_at(step), "wall_s": round(wall, 1)})
            print(f"step {step}/{args.steps} ({100 * step / args.steps:.0f}%) | loss {loss_acc / n_acc:.3e} | "
                  f"{rate:.2f} it/s {rate * args.batch_size:.1f} samples/s | wall {wall / 60:.1f} min | "
                  f"eta {eta / 60:.1f} min", flush=True)  # fmt: skip
            t_log, loss_acc, n_acc = time.monotonic(), 0.0, 0
        if args.time_limit_min is not None and wall >= 60 * args.time_limit_min:
            print(f"time limit {args.time_limit_min} min reached at step {step}", flush=True)
            stopped = True
        if step % args.val_every == 0 or step == args.steps or stopped:
            v = validate(model, arch, es, eval_refs, device, 16 if device.type == "cuda" else 4)
            record({"step": step, **v, "wall_s": round(wall, 1)})
            print(f"val @ {step}: " + ", ".join(f"{k} {v[k]:.2f}" if isinstance(v[k], float) else f"{k} {v[k]}"
                                                for k in v), flush=True)  # fmt: skip
        if step % args.ckpt_every == 0 or step == args.steps or stopped:
            save_last()
        if stopped:
            break
    hist_file.close()
    wall = wall_before + time.monotonic() - t_start
    vals = [h for h in history if "val_mean_mm" in h]
    losses = [h for h in history if "loss" in h]
    n_crops = len(bank) if bank else min(step * args.batch_size, 10**6)
    card = {
        "model": args.model,
        "config": mcfg.to_dict(),
        "params": sum(p.numel() for p in model.parameters()),
        "steps": step,
        "batch_size": args.batch_size,
        "samples_seen": step * args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "lr_final": args.lr_final,
        "planned_steps": args.steps,
        "amp": amp,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                 f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"),
        "torch": torch.__version__,
        "wall_time_s": round(wall, 1),
        "data": {
            "source": f"models.synthetic single-view scenes, seeds {dcfg.base_seed}..{dcfg.base_seed + n_crops - 1}",
            "bank_crops": len(bank) if bank else 0,
            "render": "SENSOR_LIKE noise" + f", wall behind the hand in {dcfg.wall_probability:.0%} of crops",
            "reference_point": f"depth centre of mass in a {dcfg.com_region_mm:g} mm region around the joint mean "
                               f"+ N(0, {dcfg.detector_jitter_mm:g} mm)",
            "augmentation": f"rot z +-{dcfg.rotation_deg:g} deg, scale {dcfg.scale}, shift +-"
                            f"{dcfg.translation_mm if arch == 'v2v' else dcfg.refpoint_shift_mm:.1f} mm",
        },
        "eval_set": str(Path(args.eval_set).relative_to(_REPO) if Path(args.eval_set).is_relative_to(_REPO)
                        else args.eval_set),
        "val": vals[-1] if vals else None,
        "final_loss": losses[-1]["loss"] if losses else None,
    }
    save_weights(model, out / f"{args.model}.pt", meta=card)
    (out / f"{args.model}.json").write_text(json.dumps(card, indent=1, default=str) + "\n")
    md = [f"# {args.model}", "", f"- architecture: {mcfg.arch}, grid {mcfg.in_grid}^3, width {mcfg.width}, "
          f"cube {mcfg.cube_mm:g} mm, {card['params'] / 1e6:.2f} M parameters",
          f"- training: {step} steps x batch {args.batch_size} ({step * args.batch_size} samples), {args.optimizer} "
          f"lr {args.lr:g}" + ("" if args.lr_final is None else f" cosine to {args.lr_final:g} at step {args.steps}")
          + f", {'AMP fp16' if amp else 'fp32'}, device {card['device']}, wall {wall / 60:.1f} min",
          f"- data: {card['data']['source']}; {card['data']['render']}; reference point: "
          f"{card['data']['reference_point']}; augmentation: {card['data']['augmentation']}",
          f"- final training loss: {card['final_loss']:.3e}" if card["final_loss"] is not None else "- no loss logged"]
    if vals:
        v = vals[-1]
        what = "mean 3D joint error" if arch == "v2v" else (
            f"reference point error (centre of mass alone: {v.get('val_com_mean_mm', float('nan')):.2f} mm)")
        median = f", median {v['val_median_mm']:.2f} mm" if "val_median_mm" in v else ""
        md.append(f"- validation ({card['eval_set']}, {v['val_frames']} frames): {what} "
                  f"{v['val_mean_mm']:.2f} mm{median}, failed {v['val_failed']}")
    (out / f"{args.model}.md").write_text("\n".join(md) + "\n")
    print(f"saved {out / (args.model + '.pt')} and its card; wall {wall / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
