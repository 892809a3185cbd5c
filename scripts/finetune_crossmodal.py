#!/usr/bin/env python
"""Does the cross-modal model's RGB branch transfer to real photos, and does fine-tuning on real photos help?

The development split of real photos (``realworld_rgb_hgcnn``: 200 images of one subject, 3D ground truth)
is run once through the project's RGB pipeline (static images, LiteRT MediaPipe); every detected hand
gives the cross-modal model's RGB inputs (:meth:`tracker.stages.crossmodal.CrossModalEstimator.inputs`)
and a target from the ground truth (joints relative to the palm centre in hand sizes, in the frame of
the viewing ray through the palm; :func:`models.crossmodal_data.to_ray_frame`'s convention). Then, per
model (``--models``: checkpoints of ``scripts/train_crossmodal.py``), the shape error of its RGB
decoding against MediaPipe's own world landmarks: PA-MPJPE (similarity-aligned) and root-relative
(wrist) MPJPE, mm, as ``scripts/evaluate_rgb.py`` measures them.

``--finetune``: K-fold over contiguous blocks of the image sequence (``--folds``): the RGB branch and the
decoders are fine-tuned on the other blocks (``--steps``, alternating a real batch (RGB loss) with a
synthetic batch of ``--data`` (the full RGB-D loss, so the depth branch and the alignment are kept)),
and scored on the held-out block only, alone and blended with MediaPipe's shape (``--blends``, the live
stage's ``blend_rgb``). ``--ship FILE`` fine-tunes on all 200 images and writes FILE
(report the K-fold numbers for it, never its fit).

    python scripts/finetune_crossmodal.py --models checkpoints/xm/final.pt   # zero-shot
    python scripts/finetune_crossmodal.py --models checkpoints/xm/final.pt --finetune --data checkpoints/xm_pack  # blocks, blends
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "scripts"))

from evaluate_rgb import STATIC_DT_S, load_realworld, match_hands, run_pipeline  # noqa: E402

from models.crossmodal import load_weights, save_weights  # noqa: E402
from models.crossmodal_data import hand_targets  # noqa: E402
from tracker.core.data_root import data_root  # noqa: E402
from tracker.core.geometry import rotation_to_ray  # noqa: E402
from tracker.core.joints import PALM_ROOT  # noqa: E402
from tracker.core.metrics import joint_errors, procrustes_align, root_relative  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameSet  # noqa: E402
from tracker.stages.crossmodal import CrossModalEstimator, blend_shapes  # noqa: E402


def real_samples(limit: int | None) -> dict[str, np.ndarray]:
    """Inputs and targets of every detected hand of the real-world set (module docstring)."""
    samples = load_realworld(data_root() / "realworld_rgb_hgcnn", limit)
    hands = run_pipeline(samples, video=False, dt_s=STATIC_DT_S, estimator="mediapipe")
    stage = CrossModalEstimator()
    rows: dict[str, list] = {k: [] for k in ("landmarks", "image", "pose", "log_size", "truth", "mp_local", "index")}
    for i, (smp, dets) in enumerate(zip(samples, hands)):
        match = match_hands(dets, smp.hands)[0] if dets else None
        if match is None or dets[match].joints_local is None:
            continue
        hand, truth = dets[match], smp.hands[0].joints_3d
        fs = FrameSet.single(Frame(smp.load_rgb(), 0.0, i, Camera(smp.name, smp.intrinsics)))
        lm, img, _ = stage.inputs(fs, hand)
        pose, log_size, palm = hand_targets(truth)
        rows["landmarks"].append(lm)
        rows["image"].append(img)
        rows["pose"].append((pose @ rotation_to_ray(palm)).astype(np.float32))  # R.T @ p: the ray frame
        rows["log_size"].append(np.float32(log_size))
        rows["truth"].append(truth)
        rows["mp_local"].append(hand.joints_local)
        rows["index"].append(i)
    return {k: np.stack(v) for k, v in rows.items()}


def shapes(model, real: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The RGB decoding of the samples ``idx``, mm (ray frame, palm-centre origin)."""
    import torch

    model.eval()
    with torch.inference_mode():
        img = torch.from_numpy(real["image"][idx]).permute(0, 3, 1, 2).float() / 255.0
        out = model(landmarks=torch.from_numpy(real["landmarks"][idx]), image=img if model.config.crop else None)
        return (out["pose"] * torch.exp(out["log_size"])[:, None, None]).double().numpy()


def errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean PA-MPJPE and root-relative (wrist) MPJPE (mm) of shapes ``pred`` (ray frame) against the
    true joints ``truth`` (camera frame): the ray's rotation turns the prediction into the camera's axes
    first (Procrustes does not need it), as the metric lift does."""
    pa = [joint_errors(procrustes_align(p, t), t).mean() for p, t in zip(pred, truth)]
    rr = []
    for p, t in zip(pred, truth):
        rot = rotation_to_ray(t[list(PALM_ROOT)].mean(axis=0))
        rr.append(joint_errors(root_relative(p @ rot.T), root_relative(t)).mean())
    return {"pa_mm": float(np.mean(pa)), "rr_mm": float(np.mean(rr)), "n": len(pa)}


def finetune(model, real: dict[str, np.ndarray], train_idx: np.ndarray, synth: dict | None, steps: int,
             lr: float, seed: int):  # noqa: ANN001, ANN201  # fmt: skip
    """A copy of ``model`` fine-tuned (module docstring)."""
    import torch

    from models.crossmodal import crossmodal_loss
    from train_crossmodal import batch_tensors, on_device

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = copy.deepcopy(model).train()
    params = [p for name, p in net.named_parameters() if not name.startswith("depth.")]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    real_t = on_device({k: real[k] for k in ("image", "landmarks", "pose", "log_size")} |
                        {"points": np.zeros((len(real["pose"]), 1, 3), np.float32),
                         "cloud": np.zeros((len(real["pose"]), 1, 3), np.float32)}, "cpu")  # fmt: skip
    synth_t = on_device(synth, "cpu") if synth is not None else None
    for step in range(steps):
        b = batch_tensors(real_t, torch.from_numpy(rng.choice(train_idx, 32)), "cpu", augment=True)
        out = net(landmarks=b["landmarks"], image=b["image"] if net.config.crop else None)
        loss, _ = crossmodal_loss(out, b["pose"], b["log_size"], None, net.config.alignment)
        if synth_t is not None:
            s = batch_tensors(synth_t, torch.from_numpy(rng.integers(0, len(synth["pose"]), 32)), "cpu", augment=True)
            o = net(landmarks=s["landmarks"], image=s["image"] if net.config.crop else None, points=s["points"])
            loss = loss + crossmodal_loss(o, s["pose"], s["log_size"], s["cloud"], net.config.alignment)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument("--data", type=Path, default=None, help="synthetic data (a pack dir or shards) mixed into fine-tuning")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--blends", type=float, nargs="*", default=[0.25, 0.5, 0.75],
                    help="weights of the model's shape against MediaPipe's to score on the held-out blocks")
    ap.add_argument("--ship", type=Path, default=None, help="fine-tune the first model on all images, write it here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    real = real_samples(args.limit)
    n = len(real["pose"])
    truth = real["truth"]
    res: dict = {"hands": n, "mediapipe": errors(real["mp_local"], truth), "models": {}}
    print(f"{n} real hands; MediaPipe world landmarks: {res['mediapipe']}")
    synth = None
    if args.finetune and args.data is not None:
        from train_crossmodal import load_part

        synth = load_part(args.data, "train")
    blocks = np.array_split(np.arange(n), args.folds)
    for path in args.models:
        model = load_weights(path)
        r = {"zero_shot": errors(shapes(model, real, np.arange(n)), truth)}
        if args.finetune:
            held_mp, held_ft, held_zero = [], [], []
            for k, block in enumerate(blocks):
                train_idx = np.concatenate([b for j, b in enumerate(blocks) if j != k])
                net = finetune(model, real, train_idx, synth, args.steps, args.lr, seed=k)
                ft = shapes(net, real, block)
                held_ft.append(errors(ft, truth[block]))
                zs = shapes(model, real, block)
                for w in args.blends:  # the live stage's blend with MediaPipe's shape (blend_rgb)
                    for name, pred in (("blend", ft), ("zero_shot_blend", zs)):
                        r.setdefault(f"{name}_{w:g}", []).append(
                            errors(blend_shapes(pred, real["mp_local"][block], w), truth[block])["pa_mm"])
                held_zero.append(errors(zs, truth[block]))
                held_mp.append(errors(real["mp_local"][block], truth[block]))
                print(f"  {path.name} fold {k}: held-out PA fine-tuned {held_ft[-1]['pa_mm']:.2f}, zero-shot "
                      f"{held_zero[-1]['pa_mm']:.2f}, MediaPipe {held_mp[-1]['pa_mm']:.2f} mm", flush=True)  # fmt: skip
            r["folds"] = {"finetuned": held_ft, "zero_shot": held_zero, "mediapipe": held_mp}
            for w in args.blends:
                for name in ("blend", "zero_shot_blend"):
                    print(f"  {name} {w:g}: held-out PA per block {np.round(r[f'{name}_{w:g}'], 2).tolist()}, "
                          f"mean {np.mean(r[f'{name}_{w:g}']):.2f} mm")
            r["finetuned_pa_mm"] = float(np.mean([f["pa_mm"] for f in held_ft]))
            r["finetuned_rr_mm"] = float(np.mean([f["rr_mm"] for f in held_ft]))
        res["models"][str(path)] = r
        print(f"{path}: {json.dumps(r if not args.finetune else {k: v for k, v in r.items() if k != 'folds'})}")
    if args.ship is not None:
        model = load_weights(args.models[0])
        net = finetune(model, real, np.arange(n), synth, args.steps, args.lr, seed=0)
        meta = dict(getattr(model, "meta", {}) or {})
        meta["finetuned_real"] = {"set": "realworld_rgb_hgcnn", "images": int(n), "steps": args.steps, "lr": args.lr}
        save_weights(net, args.ship, meta)
        print(f"wrote {args.ship}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
