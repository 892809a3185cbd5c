#!/usr/bin/env python
"""Generate data for and train the learned multi-view fusion (:mod:`models.hamuco`).

Three jobs:

* ``--generate``: render synthetic rig sequences (ring / desk, 8 cameras, one hand, half of the
  training sequences with occluders) and run the real MediaPipe on every view
  (:func:`models.hamuco_data.generate_sequence`), into ``checkpoints/hamuco_data/{train,eval}/``::

      nice python -m scripts.train_hamuco --generate --train-seqs 150 --eval-seqs 12

* supervised training on that data (3D joint loss in world mm + parameter regularisation, plus
  the self-supervised terms), resumable from ``checkpoints/hamuco/last.pt``, progress bar, CPU or
  CUDA (AMP on CUDA)::

      python -m scripts.train_hamuco --steps 3000 [--device cuda] [--resume]

* **self-supervised fine-tuning on your own rig, no 3D labels** (HaMuCo's objective: 2D
  consistency with the multi-view pseudo 2D labels, fusion consistency, self-distillation,
  parameter regularisation), starting from the shipped checkpoint::

      python -m scripts.train_hamuco --self-supervised --detections my_rig_detections.npz --steps 500
      python -m scripts.train_hamuco --self-supervised --source rig:my_rig.toml --frames 600 --steps 500

  ``--detections`` takes an ``.npz`` of per-view MediaPipe (or any 2D detector's) output:
  ``uv`` (N, V, 21, 2) px (NaN = missing), ``conf`` (N, V, 21), optional ``local`` (N, V, 21, 3) mm
  and ``left_prob`` (N, V), and the calibration ``K`` (V, 3, 3), ``R`` (V, 3, 3), ``t`` (V, 3)
  (world -> camera, mm). ``--source`` reads FrameSets from any source ``tracker.io.sources`` parses
  (a rig, a synthetic rig such as ``synthetic:ring``), runs MediaPipe per view in tracking mode and
  saves that file first (``--save-detections``). The result is written to
  ``checkpoints/hamuco_ft/last.pt``; load it with ``models.load_pretrained("hamuco", path=path)``.

``--export`` writes the fp16 shipped weights ``models/weights/hamuco.pt`` + ``hamuco.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import math

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

log = logging.getLogger("train_hamuco")

DATA = _REPO / "checkpoints" / "hamuco_data"


def mediapipe_detector(view: int, model_complexity: int = 1):
    """The real MediaPipe (tracking mode, one hand) for one view of a generated rig sequence."""
    from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands

    return MediaPipeHands(MediaPipeConfig(max_hands=1, model_complexity=model_complexity), view=view)


def generate(train_seqs: int, eval_seqs: int, train_seed0: int = 500_000) -> None:
    """Write eval then training sequences (skipping files that exist), logging progress."""
    from models.hamuco_data import EVAL_SEED_BASE, TRAIN_SEED_MAX, GenerationConfig, generate_sequence

    (DATA / "train").mkdir(parents=True, exist_ok=True)
    (DATA / "eval").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for k in range(eval_seqs):
        seed = EVAL_SEED_BASE + k
        layout = "ring" if k % 2 == 0 else "desk"
        paths = [DATA / "eval" / f"{layout}_{seed}_{tag}.npz" for tag in ("clean", "occ")]
        if all(p.exists() for p in paths):
            continue
        outs = generate_sequence(seed, layout, mediapipe_detector, GenerationConfig(occluder_probability=0.4),
                                 (False, True))
        for p, o in zip(paths, outs):
            with open(p.with_name(p.stem + ".partial"), "wb") as fh:
                np.savez_compressed(fh, **o)
            p.with_name(p.stem + ".partial").rename(p)
        log.info("eval %d/%d seed %d %s: detected %.0f%% / %.0f%% of views (%.0f s)", k + 1, eval_seqs, seed, layout,
                 100 * outs[0]["detected"].mean(), 100 * outs[1]["detected"].mean(), time.time() - t0)
    for k in range(train_seqs):
        seed = train_seed0 + k
        assert seed < TRAIN_SEED_MAX
        layout = "ring" if k % 2 == 0 else "desk"
        occ = k % 4 >= 2
        path = DATA / "train" / f"{layout}_{seed}_{'occ' if occ else 'clean'}.npz"
        if path.exists():
            continue
        (out,) = generate_sequence(seed, layout, mediapipe_detector, GenerationConfig(occluder_probability=0.35), (occ,))
        tmp = path.with_name(path.stem + ".partial")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **out)
        tmp.rename(path)
        log.info("train %d/%d seed %d %s occ=%s: detected %.0f%% of views (%.0f s)", k + 1, train_seqs, seed, layout,
                 occ, 100 * out["detected"].mean(), time.time() - t0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def detections_from_source(spec: str, frames: int, out_path: Path) -> dict[str, np.ndarray]:
    """Run MediaPipe (tracking mode, one detector per view) on ``frames`` FrameSets of a
    ``tracker.io.sources`` source and save the detections + calibration as an ``.npz``."""
    from models.hamuco_data import detections_from_hands
    from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands
    from tracker.io.sources import open_source, parse_source

    device = open_source(parse_source(spec))
    cols: dict[str, list] = {k: [] for k in ("uv", "conf", "score", "left_prob", "local", "detected")}
    cams = None
    detectors: list = []
    try:
        for n in range(frames):
            fs = device.read()
            if fs is None:
                break
            if cams is None:
                cams = [f.camera for f in fs.frames]
                detectors = [MediaPipeHands(MediaPipeConfig(max_hands=1), view=v) for v in range(len(cams))]
            hands = [h for det in detectors for h in det(fs, [])]
            d = detections_from_hands(hands, len(cams))
            for k in cols:
                cols[k].append(d[k])
            if n % 50 == 0:
                log.info("detections: frame set %d/%d", n, frames)
    finally:
        for det in detectors:
            det.close()
        device.close()
    if cams is None:
        raise SystemExit(f"--source {spec}: no frame sets read")
    out = {k: np.stack(v) for k, v in cols.items()}
    out.update(K=np.stack([c.intrinsics.K for c in cams]), R=np.stack([c.extrinsics.R for c in cams]),
               t=np.stack([c.extrinsics.t for c in cams]))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **out)
    log.info("saved %d frame sets of %d views to %s", len(out["uv"]), len(cams), out_path)
    return out


def load_detections(path: Path) -> dict[str, np.ndarray]:
    """A detections ``.npz`` (module docstring) as a sequence dict for :class:`RigDataset`."""
    d = dict(np.load(path, allow_pickle=False))
    missing = {"uv", "conf", "K", "R", "t"} - set(d)
    if missing:
        raise SystemExit(f"{path}: missing arrays {sorted(missing)} (see python -m scripts.train_hamuco --help)")
    d["uv"] = d["uv"].astype(np.float32)
    d["conf"] = np.nan_to_num(d["conf"].astype(np.float32))
    return d


@torch.no_grad()
def validate(model: torch.nn.Module, ds, device: torch.device, views: tuple[int, ...] = (2, 4, 8)) -> dict[str, float]:
    """Fused MPJPE (mm, world) on every frame of ``ds`` with its first k evenly spread views."""
    from models.hamuco_data import view_subset

    model.eval()
    res = {}
    for k in views:
        errs = []
        for i in range(0, len(ds.index), 64):
            items = [(s, t, view_subset(ds.seqs[s]["uv"].shape[1], k)) for s, t in ds.index[i:i + 64]]
            items = [it for it in items if ds.seqs[it[0]]["detected"][it[1], it[2]].any()]
            if not items:
                continue
            b = ds.batch(items).to(device)
            out = model(**b.inputs())
            errs.append((out.joints_world - b.joints_world).norm(dim=-1).mean(-1).cpu())
        res[f"val_{k}v_mm"] = float(torch.cat(errs).mean())
    model.train()
    return res


def train(args: argparse.Namespace) -> int:
    """Supervised (synthetic) or self-supervised (``--detections`` / ``--source``) training."""
    from models.hamuco import create_model, load_weights, self_supervised_loss, supervised_loss
    from models.hamuco_data import RigDataset
    from models.v2v import atomic_torch_save

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp = device.type == "cuda"
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    if args.self_supervised:
        if args.detections is None and args.source is None:
            raise SystemExit("--self-supervised needs --detections FILE.npz or --source SPEC")
        if args.source is not None:
            save = args.save_detections or (args.out / "detections.npz")
            detections_from_source(args.source, args.frames, save)
            args.detections = save
        ds = RigDataset([load_detections(args.detections)])
        val_ds = None
    else:
        ds = RigDataset.from_folder(DATA / "train")
        val_ds = RigDataset.from_folder(DATA / "eval", "*_occ.npz") if (DATA / "eval").exists() else None
    log.info("%d training frame sets", len(ds))

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    if args.resume and last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        model = create_model(ck["model_name"], device=device)
        model.load_state_dict(ck["model"])
        step, history = int(ck["step"]), list(ck["history"])
    else:
        if args.init is not None:
            model = load_weights(args.init, device).train()
            if args.model != model.model_name and not args.self_supervised:
                # e.g. the shipped detections-only model -> hamuco_img: new branches start at zero
                grown = create_model(args.model, device=device)
                missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
                if unexpected:
                    raise SystemExit(f"--init {args.init} does not fit --model {args.model}: {unexpected[:3]}")
                log.info("initialised %s from %s (%s); new: %d tensors", args.model, args.init, model.model_name,
                         len(missing))
                model = grown.train()
        else:
            model = create_model(args.model, device=device)
        step, history = 0, []
        ck = None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        log.info("resumed %s at step %d", last, step)
    model.train()

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / 100)
        return warm * (0.05 * args.lr + 0.95 * args.lr * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))

    def save() -> None:
        atomic_torch_save({"model_name": model.model_name, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "scaler": scaler.state_dict(), "step": step, "history": history,
                           "args": {k: str(v) for k, v in vars(args).items()}}, last)

    t0, acc, n_acc = time.monotonic(), {}, 0
    start = step
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = ds.sample(rng, args.batch_size).to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            outp = model(**batch.inputs())
        outp = type(outp)(**{k: (v.float() if v.is_floating_point() else v) for k, v in vars(outp).items()})
        ss, ss_terms = self_supervised_loss(outp, batch.uv, batch.conf, batch.view_mask, batch.K, batch.R, batch.t)
        if args.self_supervised:
            loss, terms = ss, ss_terms
        else:
            sup, terms = supervised_loss(outp, batch.joints_world, batch.view_mask)
            loss = sup + args.ss_weight * ss
            terms = terms | ss_terms
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        step += 1
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if step % args.log_every == 0 or step == args.steps:
            rate = (step - start) / max(time.monotonic() - t0, 1e-9)
            done = int(30 * step / args.steps)
            entry = {"step": step, **{k: v / n_acc for k, v in acc.items()}}
            history.append(entry)
            log.info("[%s%s] %d/%d %.2f it/s eta %.1f min | %s", "#" * done, "." * (30 - done), step, args.steps, rate,
                     (args.steps - step) / max(rate, 1e-9) / 60,
                     " ".join(f"{k} {v / n_acc:.2f}" for k, v in acc.items()))
            acc, n_acc = {}, 0
        if val_ds is not None and (step % args.val_every == 0 or step == args.steps):
            v = validate(model, val_ds, device)
            history.append({"step": step, **v})
            log.info("val @ %d (occluded eval rigs): %s", step, " ".join(f"{k} {x:.2f}" for k, x in v.items()))
        if step % args.ckpt_every == 0 or step == args.steps:
            save()
        if args.time_limit_min is not None and time.monotonic() - t0 > 60 * args.time_limit_min:
            log.info("time limit reached at step %d", step)
            save()
            break
    log.info("saved %s (step %d)", last, step)
    return 0


def export(args: argparse.Namespace) -> int:
    """``checkpoints/hamuco/last.pt`` -> fp16 ``models/weights/hamuco.pt`` + ``hamuco.json``."""
    from models.hamuco import create_model, save_weights

    ck = torch.load(args.out / "last.pt", map_location="cpu", weights_only=True)
    model = create_model(ck["model_name"])
    model.load_state_dict(ck["model"])
    n_train = len(list((DATA / "train").glob("*.npz")))
    vals = [h for h in ck["history"] if any(k.startswith("val_") for k in h)]
    meta = {"model": ck["model_name"], "steps": int(ck["step"]), "train_sequences": n_train,
            "train_frame_sets": 8 * n_train, "device": ck["args"].get("device", "?"),
            "batch_size": ck["args"].get("batch_size"), "lr": ck["args"].get("lr"),
            "last_val": vals[-1] if vals else None,
            "params": sum(p.numel() for p in model.parameters())}
    dst = _REPO / "models" / "weights" / "hamuco.pt"
    save_weights(model, dst, meta)
    (dst.with_suffix(".json")).write_text(json.dumps(meta, indent=1) + "\n")
    log.info("wrote %s (%.0f kB) and %s", dst, dst.stat().st_size / 1024, dst.with_suffix(".json"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate", action="store_true", help="generate synthetic rig data with MediaPipe")
    ap.add_argument("--train-seqs", type=int, default=150)
    ap.add_argument("--eval-seqs", type=int, default=12)
    ap.add_argument("--export", action="store_true", help="write models/weights/hamuco.pt from OUT/last.pt")
    ap.add_argument("--self-supervised", action="store_true", help="no 3D labels: HaMuCo's self-supervised loss")
    ap.add_argument("--detections", type=Path, default=None, help="per-view 2D detections .npz (self-supervised)")
    ap.add_argument("--source", default=None, help="a tracker.io.sources spec of a rig to run MediaPipe on")
    ap.add_argument("--frames", type=int, default=600, help="frame sets to read from --source")
    ap.add_argument("--save-detections", type=Path, default=None, help="where --source detections go")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (default with --self-supervised: models/weights/hamuco.pt)")
    ap.add_argument("--model", default="hamuco_small")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ss-weight", type=float, default=0.02, help="weight of the self-supervised terms when supervised")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (more can be slower next to MediaPipe)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    ap.add_argument("--out", type=Path, default=None, help="checkpoint folder (checkpoints/hamuco or hamuco_ft)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--time-limit-min", type=float, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.out is None:
        args.out = _REPO / "checkpoints" / ("hamuco_ft" if args.self_supervised else "hamuco")
    if args.self_supervised and args.init is None and not args.resume:
        args.init = _REPO / "models" / "weights" / "hamuco.pt"
    if args.generate:
        generate(args.train_seqs, args.eval_seqs)
        return 0
    if args.export:
        return export(args)
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
