"""Causal temporal refinement of hand joints with HTT's pose block, and its training.

The pose head of :class:`models.htt.HTT` outputs each frame's *clean* normalised shape from noisy,
partly missing clips: a temporal denoiser. Applied to the **last** frame of a window of the stream
it is causal (a centred band lets that frame attend only to itself and the frames before it; a
``causal`` band makes every frame so). The network refines the hand's *shape* (joints relative to
the palm root, in hand sizes); the root itself (where the hand is) passes through unchanged.

Two networks can refine: a gesture network (its pose head learned SHREC'17's skeletons, at the time
scale of whole gestures), or the **temporal refiner** trained here (:func:`train_refiner`, shipped
as ``temporal_refiner``): a causal pose block only, trained on windows of ``CLIP_FRAMES``
consecutive 30 fps frames of the data engine's hands (MediaPipe's joint layout, every action) with
the noise a live tracker has: per-joint Gaussian noise, a per-frame shift of the whole hand (3x in
depth: a monocular lift's wobble) and joints missing over spans.

Joints: mm, camera frame (OpenCV axes), 21 joints, NaN = missing (a missing joint gets the
network's estimate when the frame has a root).
"""

from __future__ import annotations

import numpy as np

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from models.gestures.features import CLIP_FRAMES, clip_features, normalise
from tracker.core.joints import NUM_JOINTS

log = logging.getLogger(__name__)
FPS = 30.0

__all__ = ["refine_last", "RefinerTrainConfig", "train_refiner", "noisy_windows"]


def refine_last(model, windows: list[tuple[np.ndarray, float]], device="cpu") -> np.ndarray:  # noqa: ANN001
    """The refined last frame of each window.

    Args:
        model: an :class:`~models.htt.HTT` with a pose block, eval mode.
        windows: ``(joints (T, 21, 3) mm, duration s)``, T <= ``model.config.max_frames``.
        device: where the model runs.

    Returns:
        ``(N, 21, 3)`` mm; a window whose last frame has no root comes back unchanged.

    Raises:
        ValueError: the model has no pose block.
    """
    import torch

    if model.pose_head is None:
        raise ValueError("this gesture network has no pose block (trained with --no-pose-block)")
    if not windows:
        return np.zeros((0, NUM_JOINTS, 3))
    out = np.stack([np.asarray(j[-1], np.float64) for j, _ in windows])
    by_length: dict[int, list[int]] = {}
    for i, (j, _) in enumerate(windows):
        by_length.setdefault(len(j), []).append(i)
    with torch.no_grad():
        for idx in by_length.values():
            feats = [clip_features(windows[i][0], windows[i][1]) for i in idx]
            x = torch.from_numpy(np.stack([f for f, _ in feats])).to(device)
            v = torch.from_numpy(np.stack([m for _, m in feats])).to(device)
            pose = model(x, v)["pose"][:, -1].float().cpu().numpy().reshape(-1, NUM_JOINTS, 3)
            for k, i in enumerate(idx):
                _, root, s, valid = normalise(windows[i][0])
                if valid[-1]:
                    out[i] = root[-1] + s * pose[k].astype(np.float64)
    return out


@dataclass(frozen=True)
class RefinerTrainConfig:
    """The temporal refiner's training run (module docstring).

    Attributes:
        sequences: data-engine sequences of ``frames`` frames generated once (seeds from ``seed``).
        steps: optimiser steps of ``batch`` random windows.
        noise_mm: per-joint noise sigma drawn up to this, mm.
        shift_mm: per-frame whole-hand shift sigma (x, y; 3x in z) drawn up to this, mm.
        drop_p: chance that a window has 1-5 joints missing over a span.
    """

    sequences: int = 3000
    frames: int = 96
    steps: int = 6000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    noise_mm: float = 8.0
    shift_mm: float = 6.0
    drop_p: float = 0.3
    seed: int = 0
    dim: int = 96
    layers: int = 3
    window: int = 8


def noisy_windows(clean: np.ndarray, rng: np.random.Generator, config: RefinerTrainConfig,
                  frames: int = CLIP_FRAMES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Random windows of clean sequences ``(N, T, 21, 3)`` -> (noisy ``(B, frames, 21, 3)``, features,
    target shape relative to the noisy root and size ``(B, frames, 21, 3)``) for a batch of
    ``config.batch``."""
    k = rng.integers(0, len(clean), config.batch)
    start = rng.integers(0, clean.shape[1] - frames + 1, config.batch)
    win = np.stack([clean[a, b : b + frames] for a, b in zip(k, start)])
    sig = rng.uniform(0, config.noise_mm, (config.batch, 1, 1, 1))
    shift = rng.uniform(0, config.shift_mm, (config.batch, 1, 1, 1))
    noisy = win + rng.normal(size=win.shape) * sig
    noisy = noisy + rng.normal(size=(config.batch, frames, 1, 3)) * shift * np.array([1.0, 1.0, 3.0])
    for b in np.flatnonzero(rng.random(config.batch) < config.drop_p):
        lost = rng.choice(NUM_JOINTS, size=rng.integers(1, 6), replace=False)
        a = rng.integers(0, frames)
        noisy[b, a : rng.integers(a + 1, frames + 1), lost] = np.nan
    feats, targets = [], []
    for n, c in zip(noisy, win):
        f, _ = clip_features(n, frames / FPS)
        _, root, s, _ = normalise(n)
        feats.append(f)
        targets.append((c - root[:, None]) / s)
    return noisy, np.stack(feats), np.stack(targets).astype(np.float32)


def train_refiner(out: str | os.PathLike[str], config: RefinerTrainConfig = RefinerTrainConfig(),
                  device: str = "cpu", progress: bool = True) -> dict:  # fmt: skip
    """Train the temporal refiner; writes ``out/final.pt`` (:func:`models.gestures.train.save_model`
    format, class name ``refiner``) and ``out/history.json``. Returns the history and timing.

    Validation: the L1 of the last frame's shape (hand sizes) and its MPJPE (mm) on 200 held-out
    sequences (other seeds) against the noisy input's.
    """
    import torch

    from models.gestures.train import save_model
    from models.htt import HTT, HTTConfig
    from models.synthetic import SceneConfig, sample_scene

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    def generate(first: int, n: int) -> np.ndarray:
        return np.stack([sample_scene(first + i, SceneConfig(num_frames=config.frames)).hands[0].joints
                         for i in range(n)])  # fmt: skip

    t0 = time.perf_counter()
    train_set = generate(1_000_000 + config.seed * 100_000, config.sequences)
    val_set = generate(2_000_000, 200)
    log.info("generated %d + %d sequences in %.0f s", len(train_set), len(val_set), time.perf_counter() - t0)
    model_cfg = HTTConfig(num_classes=1, dim=config.dim, ff=2 * config.dim, pose_layers=config.layers,
                          action_layers=0, window=config.window, max_frames=CLIP_FRAMES, dropout=0.0,
                          causal=True)  # fmt: skip
    model = HTT(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))
    val_rng = np.random.default_rng(12345)
    val_batches = [noisy_windows(val_set, val_rng, config) for _ in range(4)]
    history = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, unit="step", desc="temporal refiner")
    seconds = 0.0
    for step in range(config.steps):
        t1 = time.perf_counter()
        model.train()
        _, feats, target = noisy_windows(train_set, rng, config)
        pose = model(torch.from_numpy(feats).to(device))["pose"].view(config.batch, CLIP_FRAMES, NUM_JOINTS, 3)
        loss = (pose - torch.from_numpy(target).to(device)).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seconds += time.perf_counter() - t1
        if bar is not None:
            bar.update(1)
        if (step + 1) % 500 == 0 or step + 1 == config.steps:
            model.eval()
            errs, raw = [], []
            with torch.no_grad():
                for noisy, feats_v, target_v in val_batches:
                    p = model(torch.from_numpy(feats_v).to(device))["pose"][:, -1].cpu().numpy()
                    p = p.reshape(-1, NUM_JOINTS, 3)
                    errs.append(np.abs(p - target_v[:, -1]).mean())
                    _, root, s, _ = zip(*(normalise(n) for n in noisy))
                    raw_shape = np.stack([(n[-1] - r[-1]) / sz for n, r, sz in zip(noisy, root, s)])
                    raw.append(np.nanmean(np.abs(raw_shape - target_v[:, -1])))
            rec = {"step": step + 1, "loss": float(loss.detach()), "val_l1": float(np.mean(errs)),
                   "val_l1_input": float(np.mean(raw)), "seconds": round(seconds, 1)}  # fmt: skip
            history.append(rec)
            log.info("%s", rec)
            if bar is not None:
                bar.set_postfix(val=round(rec["val_l1"], 4), input=round(rec["val_l1_input"], 4))
    if bar is not None:
        bar.close()
    meta = {"train": asdict(config), "seconds": round(seconds, 1), "steps": config.steps, "device": str(device),
            "data": "models.synthetic data-engine hands (every action), generated", "val": history[-1]}  # fmt: skip
    save_model(model.eval(), out / "final.pt", ["refiner"], meta)
    (out / "history.json").write_text(json.dumps({"history": history, "meta": meta}, indent=1))
    return {"history": history, "seconds": seconds}
