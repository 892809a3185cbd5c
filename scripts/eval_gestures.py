#!/usr/bin/env python
"""Evaluate a gesture model on SHREC'17 subjects it was not trained on (a ``--fold`` model of
``python -m models.gestures train``), plus few-shot custom gestures and online detection.

Parts (all on the fold's held-out subjects of ``../shared/data/shrec17_train``, never on the subjects
the model trained on):

1. **classification**: top-1 accuracy on every held-out sequence (14 or 28 classes, as the model).
2. **custom gestures from 5 examples** (``models.gestures.custom``), methods ``prototype`` and
   ``head``, each with descriptor weight 0 (the network's embedding alone) and 1 (the default): (a) the 14 SHREC gestures enrolled from 5 random sequences each of the held-out
   subjects, tested on their other sequences (gestures the network knows, people it does not);
   (b) novel gestures: the data engine's actions (open_close, pinch, point, grasp, wave, count), 5
   generated examples each, 15 test sequences each (motions the network never saw).
3. **online detection** (``models.gestures.online``, default settings; ``--online-gestures``
   sequences drawn evenly over the classes): streams of held-out sequences separated by
   idle hands (1-2 s, the last pose with 1.5 mm jitter) and by free motion (2 s of the data engine's
   ``random`` action placed where the hand is); an event *hits* a gesture when its span overlaps the
   gesture's and its label is right. Reported: recall (gestures hit), precision (events that hit),
   and false events per minute in the idle and free-motion parts.

Usage::

    python scripts/eval_gestures.py --model DIR/final.pt --fold 0 [--classes 14] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.gestures.custom import DESCRIPTOR_WEIGHT, enrol  # noqa: E402
from models.gestures.data import SHREC_14, load_shrec, subject_split  # noqa: E402
from models.gestures.online import OnlineConfig, detect_sequence  # noqa: E402
from models.gestures.recognizer import ClassRecognizer  # noqa: E402
from models.gestures.sequences import GestureSequence  # noqa: E402
from tracker.core.data_root import data_root  # noqa: E402

ACTIONS = ("open_close", "pinch", "point", "grasp", "wave", "count")


def generated(action: str, seed: int, frames: int = 60) -> GestureSequence:
    """One data-engine hand performing ``action`` for ``frames`` frames at 30 fps (camera frame)."""
    from models.synthetic import SceneConfig, sample_scene

    scene = sample_scene(seed, SceneConfig(num_frames=frames, actions=(action,)))
    return GestureSequence(scene.hands[0].joints, np.arange(frames) / 30.0, label=action)


def classification(rec: ClassRecognizer, val: list) -> dict:
    pred = rec.classify([x.sequence for x in val])
    y = np.array([x.label for x in val])
    p = np.array([r.label_id - 1 for r in pred])
    per_class = {rec.names[c]: float((p[y == c] == c).mean()) for c in sorted(set(y.tolist()))}
    return {"accuracy": float((p == y).mean()), "n": len(y), "per_class": per_class}


def _subset(items: list, limit: int, seed: int) -> list:
    """At most ``limit`` items, drawn evenly over the labels (the online runs cost ~frames x windows)."""
    if len(items) <= limit:
        return items
    rng = np.random.default_rng(seed)
    labels = sorted({label for _, label in items})
    per = max(1, limit // len(labels))
    out = []
    for lab in labels:
        own = [x for x in items if x[1] == lab]
        out += [own[i] for i in rng.permutation(len(own))[:per]]
    return out


def few_shot(rec_path: str, groups: dict[str, list[GestureSequence]], shots: int, seed: int,
             streams_too: bool = False, limit: int = 10**9) -> dict:  # fmt: skip
    """Enrol ``shots`` examples per gesture, classify the rest (both methods); with ``streams_too``
    also online detection of the rest in streams with the default (head) set."""
    rng = np.random.default_rng(seed)
    enrol_set, test = {}, []
    for name, seqs in groups.items():
        order = rng.permutation(len(seqs))
        enrol_set[name] = [seqs[i] for i in order[:shots]]
        test += [(name, seqs[i]) for i in order[shots:]]
    out = {"gestures": len(groups), "shots": shots, "test": len(test)}
    for method in ("prototype", "head"):
        for weight in (0.0, 1.0):
            gs = enrol(enrol_set, base=rec_path, method=method, descriptor_weight=weight)
            pred = gs.classify([s for _, s in test])
            out[f"{method}_w{weight:g}"] = float(np.mean([p.label == name for p, (name, _) in zip(pred, test)]))
            if streams_too and method == "head" and weight == DESCRIPTOR_WEIGHT:
                out["online"] = online(gs, _subset([(s, name) for name, s in test], limit, seed), seed)
    return out


def _idle(pose: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    return pose[None] + rng.normal(0.0, 1.5, (frames, *pose.shape))


def streams(items: list[tuple[GestureSequence, str]], rng: np.random.Generator, per_stream: int = 8):
    """Yield (joints (T, 21, 3), gestures [(label, start, end)], background mask (T,) kind: 0 gesture, 1 idle, 2 free)."""
    order = rng.permutation(len(items))
    for s in range(0, len(order), per_stream):
        parts, kinds, spans, t = [], [], [], 0
        last = None
        for i in order[s : s + per_stream]:
            seq, label = items[i]
            j = seq.joints
            if last is not None:
                offset = np.nanmean(last[:, 0], axis=0) - np.nanmean(j[:1, 0], axis=0)
                j = j + offset  # continue where the hand was
            gap = _idle(j[0], int(rng.integers(30, 61)), rng)
            parts.append(gap)
            kinds.append(np.ones(len(gap), int))
            t += len(gap)
            if rng.random() < 0.5:  # free motion before this gesture
                free = generated("random", int(rng.integers(10**6)), 60).joints
                free = free - np.nanmean(free[:1, 0], axis=0) + np.nanmean(j[:1, 0], axis=0)
                parts.append(free)
                kinds.append(np.full(len(free), 2))
                t += len(free)
                parts.append(_idle(j[0], 15, rng))
                kinds.append(np.ones(15, int))
                t += 15
            parts.append(j)
            kinds.append(np.zeros(len(j), int))
            spans.append((label, t, t + len(j) - 1))
            t += len(j)
            last = j[-1:]
        tail = _idle(last[0], 45, rng)
        parts.append(tail)
        kinds.append(np.ones(45, int))
        yield np.concatenate(parts), spans, np.concatenate(kinds)


def online(rec, items: list[tuple[GestureSequence, str]], seed: int) -> dict:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    hits = events_n = good_events = 0
    gestures = 0
    false_idle = false_free = 0
    idle_frames = free_frames = 0
    for joints, spans, kinds in streams(items, rng):
        seq = GestureSequence(joints, np.arange(len(joints)) / 30.0)
        events = detect_sequence(rec, seq, OnlineConfig())
        events_n += len(events)
        gestures += len(spans)
        idle_frames += int((kinds == 1).sum())
        free_frames += int((kinds == 2).sum())
        used = set()
        for label, a, b in spans:
            for k, e in enumerate(events):
                if k not in used and e.label == label and e.start_frame <= b and e.end_frame >= a:
                    used.add(k)
                    hits += 1
                    break
        for k, e in enumerate(events):
            overl = [lab for lab, a, b in spans if e.start_frame <= b and e.end_frame >= a]
            if k in used:
                good_events += 1
            elif not overl:
                mid = (e.start_frame + e.end_frame) // 2
                if kinds[mid] == 2:
                    false_free += 1
                else:
                    false_idle += 1
    return {"gestures": gestures, "events": events_n, "recall": hits / max(gestures, 1),
            "precision": good_events / max(events_n, 1),
            "false_per_min_idle": false_idle / max(idle_frames / 1800.0, 1e-9),
            "false_per_min_free": false_free / max(free_frames / 1800.0, 1e-9)}  # fmt: skip


def _print_online(title: str, o: dict) -> None:
    print(f"{title}: {o['gestures']} gestures, {o['events']} events: recall {100 * o['recall']:.1f} %, precision "
          f"{100 * o['precision']:.1f} %, false events/min idle {o['false_per_min_idle']:.2f}, free motion "
          f"{o['false_per_min_free']:.2f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a checkpoint trained with --fold")
    ap.add_argument("--fold", type=int, required=True, help="the fold the model held out")
    ap.add_argument("--data", default=None, help="SHREC'17 folder (default: DATA_ROOT/shrec17_train)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("--online-gestures", type=int, default=112,
                    help="gestures (evenly over the classes) in the online streams (default 112)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else data_root() / "shrec17_train"
    if not data.is_dir():
        print(f"no SHREC'17 data at {data}: nothing to evaluate", file=sys.stderr)
        return 0
    rec = ClassRecognizer.from_checkpoint(args.model)
    classes = rec.num_classes
    _, val = subject_split(load_shrec(data, classes), args.fold)
    report = {"model": args.model, "fold": args.fold, "classes": classes,
              "val_subjects": sorted({x.subject for x in val})}  # fmt: skip
    report["classification"] = classification(rec, val)
    print(f"classification ({classes} classes, subjects {report['val_subjects']}): "
          f"{100 * report['classification']['accuracy']:.2f} % of {len(val)}")  # fmt: skip
    val14 = val if classes == 14 else subject_split(load_shrec(data, 14), args.fold)[1]
    groups = {SHREC_14[c]: [x.sequence for x in val14 if x.label == c] for c in range(14)}
    limit = args.online_gestures
    report["few_shot_shrec"] = few_shot(args.model, groups, args.shots, args.seed, streams_too=True, limit=limit)
    gen = {a: [generated(a, 10_000 + 100 * k + i) for i in range(args.shots + 15)] for k, a in enumerate(ACTIONS)}
    report["few_shot_generated"] = few_shot(args.model, gen, args.shots, args.seed, streams_too=True, limit=limit)
    items = _subset([(x.sequence, rec.names[x.label]) for x in val], limit, args.seed)
    report["online"] = online(rec, items, args.seed)
    for key in ("few_shot_shrec", "few_shot_generated"):
        r = report[key]
        scores = ", ".join(f"{k} {100 * v:.1f} %" for k, v in r.items() if k.startswith(("prototype", "head")))
        print(f"{key}: {r['gestures']} gestures x {r['shots']} examples, {r['test']} tests: {scores}")
        _print_online(f"  online ({key})", r["online"])
    _print_online("online (the classifier)", report["online"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
