"""Training of the gesture network (:class:`models.htt.HTT`) on SHREC'17, resumable, CPU or CUDA.

Recipe: AdamW (lr ``lr``, weight decay ``weight_decay``), linear warm-up for 5 % of the steps then
cosine decay, batches of ``batch`` augmented clips (:mod:`models.gestures.data`), loss = cross-entropy
with label smoothing + ``pose_weight`` x per-frame L1 of the pose head (:func:`models.htt.htt_loss`).
With ``fold`` set, the subjects of that fold are held out and scored after every ``eval_every``
epochs (the validation numbers of the model card); without it, every subject trains (the shipped
models). With ``background`` > 0 the model has one more class, :data:`~models.gestures.data.BACKGROUND`
("none"), trained on that fraction of fresh no-gesture examples per epoch
(:func:`~models.gestures.data.background_sequence`: idle hands, free motion, the edges of takes): the
online detector's rejection. ``out/last.pt`` holds everything needed to resume (model, optimiser, scheduler, RNG state,
history); ``out/final.pt`` the model alone (:func:`save_model`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from models.gestures.data import BACKGROUND, Augment, Example, background_examples, make_batch, subject_split
from models.gestures.features import CLIP_FRAMES
from models.htt import HTT, HTTConfig, htt_loss
from tracker.core.errors import ModelError

__all__ = ["TrainConfig", "train", "evaluate", "predict_proba", "save_model", "load_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints)."""

    classes: int = 14
    epochs: int = 150
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    pose_weight: float = 0.5
    label_smoothing: float = 0.1
    seed: int = 0
    fold: int | None = None
    folds: int = 5
    eval_every: int = 10
    background: float = 0.15
    model: HTTConfig = field(default_factory=HTTConfig)
    augment: Augment = field(default_factory=Augment)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"]["speed"] = list(self.augment.speed)
        d["augment"]["scale"] = list(self.augment.scale)
        return d


def _tensors(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


@torch.no_grad()
def predict_proba(model: HTT, examples: list, device: torch.device, batch: int = 256) -> np.ndarray:
    """Class probabilities ``(N, C)`` of un-augmented whole-sequence clips (``Example`` or sequences)."""
    from models.gestures.data import Example as _Ex

    model.eval()
    rng = np.random.default_rng(0)
    out = []
    items = [x if isinstance(x, _Ex) else _Ex(x, 0, 0) for x in examples]
    for i in range(0, len(items), batch):
        b = _tensors(make_batch(items[i : i + batch], Augment.none(), rng), device)
        out.append(torch.softmax(model(b["features"], b["valid"])["logits"], -1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes))


def evaluate(model: HTT, examples: list[Example], device: torch.device, classes: int | None = None,
             background: list[Example] | None = None) -> dict:  # fmt: skip
    """Top-1 accuracy over the first ``classes`` classes (the gestures; default all) and the confusion
    matrix on un-augmented clips; with ``background`` examples also the share of them whose most likely
    class is the background class (the last) and the share of gestures taken for background."""
    p = predict_proba(model, examples, device)
    c = classes or model.config.num_classes
    y = np.array([x.label for x in examples])
    pred = p[:, :c].argmax(1)
    confusion = np.zeros((c, c), int)
    np.add.at(confusion, (y, pred), 1)
    out = {"accuracy": float((pred == y).mean()) if len(y) else float("nan"), "n": int(len(y)),
           "confusion": confusion.tolist()}  # fmt: skip
    if background and model.config.num_classes > c:
        pb = predict_proba(model, background, device)
        out["background_rejected"] = float((pb.argmax(1) == c).mean())
        out["gestures_rejected"] = float((p.argmax(1) == c).mean()) if len(y) else float("nan")
    return out


def save_model(model: HTT, path: str | os.PathLike[str], class_names: list[str], meta: dict | None = None) -> Path:
    """Write the inference checkpoint: weights, architecture, class names, metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(), "class_names": list(class_names),
                "meta": meta or {}}, path)  # fmt: skip
    return path


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[HTT, list[str], dict]:
    """Read a checkpoint written by :func:`save_model` (or a training ``last.pt``).

    Raises:
        ModelError: missing, corrupt or not a gesture checkpoint (names the file).
    """
    from models.registry import read_torch_checkpoint, load_state

    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ModelError(f"{path}: not a gesture model checkpoint (no 'config' / 'model'); "
                         "train one with: python -m models.gestures train")  # fmt: skip
    try:
        model = HTT(HTTConfig(**ckpt["config"]))
    except TypeError as e:
        raise ModelError(f"{path}: unknown gesture model configuration ({e})") from e
    load_state(model, ckpt["model"], path, "gesture model")
    names = list(ckpt.get("class_names") or [str(i + 1) for i in range(model.config.num_classes)])
    return model.to(device).eval(), names, dict(ckpt.get("meta") or {})


def train(examples: list[Example], config: TrainConfig, out: str | os.PathLike[str], class_names: list[str],
          device: str | torch.device = "cpu", progress: bool = True) -> dict:  # fmt: skip
    """Train (or resume from ``out/last.pt``) and write ``out/final.pt`` + ``out/history.json``.

    Returns:
        ``{"history": [...], "val": {...} | None, "seconds": float, "steps": int}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    bg = config.background > 0
    model_cfg = replace(config.model, num_classes=config.classes + int(bg),
                        max_frames=max(config.model.max_frames, CLIP_FRAMES))  # fmt: skip
    if bg:
        class_names = [*class_names, BACKGROUND]
    if config.fold is not None:
        train_set, val_set = subject_split(examples, config.fold, config.folds)
    else:
        train_set, val_set = list(examples), []
    val_bg = background_examples(val_set, 400, config.classes, np.random.default_rng(1)) if bg and val_set else None
    model = HTT(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil((len(train_set) + round(config.background * len(train_set)) * bg) / config.batch))
    total = config.epochs * steps_per_epoch
    warm = max(1, int(0.05 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    history: list[dict] = []
    start_epoch, seconds = 0, 0.0
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        if ck.get("train") != config.to_dict():
            raise ModelError(f"{last} was written by another training configuration; use a new --out folder")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        history, start_epoch, seconds = ck["history"], ck["epoch"], ck["seconds"]
        log.info("resumed from %s at epoch %d", last, start_epoch)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, initial=start_epoch, unit="epoch", desc=f"train {config.classes} classes")
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        epoch_set = train_set
        if bg:
            epoch_set = train_set + background_examples(train_set, round(config.background * len(train_set)),
                                                        config.classes, rng)  # fmt: skip
        order = rng.permutation(len(epoch_set))
        losses = []
        for i in range(0, len(order), config.batch):
            batch = _tensors(make_batch([epoch_set[j] for j in order[i : i + config.batch]], config.augment, rng), device)
            res = model(batch["features"], batch["valid"])
            pose_w = config.pose_weight if model_cfg.pose_layers else 0.0
            loss, parts = htt_loss(res, batch["labels"], batch["pose"], batch["pose_valid"], pose_w,
                                   config.label_smoothing)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        seconds += time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": float(sched.get_last_lr()[0]),
               "seconds": round(seconds, 1)}  # fmt: skip
        if val_set and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            ev = evaluate(model, val_set, device, config.classes, val_bg)
            rec["val_accuracy"] = ev["accuracy"]
            if "background_rejected" in ev:
                rec["val_background_rejected"] = ev["background_rejected"]
        history.append(rec)
        if bar is not None:
            bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k in ("loss", "val_accuracy")})
            bar.update(1)
        log.debug("epoch %s", rec)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "history": history,
                    "epoch": epoch + 1, "seconds": seconds, "train": config.to_dict(),
                    "config": model_cfg.to_dict()}, last.with_suffix(".tmp"))  # fmt: skip
        os.replace(last.with_suffix(".tmp"), last)
    if bar is not None:
        bar.close()
    val = evaluate(model, val_set, device, config.classes, val_bg) if val_set else None
    meta = {"train": config.to_dict(), "seconds": round(seconds, 1), "steps": total, "device": str(device),
            "train_sequences": len(train_set), "val": {k: v for k, v in (val or {}).items() if k != "confusion"},
            "val_subjects": sorted({x.subject for x in val_set})}  # fmt: skip
    save_model(model, out / "final.pt", class_names, meta)
    (out / "history.json").write_text(json.dumps({"history": history, "val": val, "meta": meta}, indent=1))
    return {"history": history, "val": val, "seconds": seconds, "steps": total}
