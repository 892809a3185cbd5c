"""``python -m models.gestures``: train, evaluate and use the gesture models.

Commands::

    python -m models.gestures train --data DIR --classes 14|28 --out DIR [--fold K] [--epochs N] [--device auto]
    python -m models.gestures train-refiner --out DIR [--steps N]
    python -m models.gestures predict --dataset shrec17 --data DIR --list LIST --classes 14|28 --output PRED.csv
    python -m models.gestures enrol --examples DIR --output SET.npz
    python -m models.gestures predict --gesture-set SET.npz --input FILE.npz [FILE.npz ...] --output PRED.csv
    python -m models.gestures detect --gesture-set SET.npz|--classes 14 --input FILE.npz --output EVENTS.csv

Exit codes: 0 ok, 2 usage, 3 bad input (missing / malformed data, list or sequence file), 9 model
file missing or corrupt. Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from dataclasses import replace
from pathlib import Path

from tracker.core.errors import HandtrackError, ModelError

log = logging.getLogger("models.gestures")

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL = 0, 2, 3, 9
HTT_DIM = 96  # HTTConfig.dim, without importing torch for --help


def _device(choice: str) -> str:
    from models.registry import resolve_device

    return resolve_device(choice)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from models.gestures.data import SHREC_14, SHREC_28, Augment, load_shrec
    from models.gestures.train import TrainConfig, train
    from models.htt import HTTConfig

    examples = load_shrec(args.data, args.classes)
    model = HTTConfig(pose_layers=0 if args.no_pose_block else HTTConfig.pose_layers,
                      action_token=not args.pooling, dim=args.dim, ff=2 * args.dim)  # fmt: skip
    augment = Augment.none() if args.no_augment else Augment()
    if args.noise is not None and not args.no_augment:
        augment = replace(augment, noise_mm=args.noise)
    config = TrainConfig(classes=args.classes, epochs=args.epochs, fold=args.fold, seed=args.seed, model=model,
                         augment=augment, lr=args.lr,
                         batch=args.batch, background=args.background)  # fmt: skip
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(SHREC_14 if args.classes == 14 else SHREC_28)
    result = train(examples, config, args.out, names, _device(args.device), progress=not args.quiet)
    val = result["val"]
    msg = f"trained {result['steps']} steps in {result['seconds']:.0f} s -> {Path(args.out) / 'final.pt'}"
    if val:
        msg += f"; held-out subjects: accuracy {100 * val['accuracy']:.2f} % on {val['n']} sequences"
        if "background_rejected" in val:
            msg += (f", background rejected {100 * val['background_rejected']:.1f} %, gestures taken for "
                    f"background {100 * val['gestures_rejected']:.1f} %")
    print(msg)
    return EXIT_OK


def cmd_train_refiner(args: argparse.Namespace) -> int:
    import torch

    from models.gestures.denoise import RefinerTrainConfig, train_refiner

    if args.threads:
        torch.set_num_threads(args.threads)
    config = RefinerTrainConfig(steps=args.steps, sequences=args.sequences, seed=args.seed)
    result = train_refiner(args.out, config, _device(args.device), progress=not args.quiet)
    last = result["history"][-1]
    print(f"trained {config.steps} steps in {result['seconds']:.0f} s -> {Path(args.out) / 'final.pt'}; held-out "
          f"last-frame shape L1 {last['val_l1']:.4f} hand sizes (input {last['val_l1_input']:.4f})")  # fmt: skip
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from models.gestures.recognizer import load_recognizer
    from models.gestures.sequences import load_sequence, read_shrec, read_shrec_list, shrec_path

    if args.dataset:
        if args.dataset != "shrec17" or not (args.data and args.list and args.classes):
            raise SystemExit("predict --dataset shrec17 needs --data DIR --list LIST --classes 14|28")
        rec = load_recognizer(args.weights or f"shrec{args.classes}", _device(args.device))
        if rec.num_classes != args.classes:
            raise ModelError(f"{args.weights}: a {rec.num_classes}-class model, but --classes {args.classes}")
        entries = read_shrec_list(args.list)
        seqs = [read_shrec(shrec_path(args.data, e)) for e in entries]
        results = rec.classify(seqs)
        rows = [(i + 1, r.label_id, f"{r.score:.6f}") for i, r in enumerate(results)]
        header = ("line", "label", "score")
    else:
        if not (args.gesture_set and args.input):
            raise SystemExit("predict needs --dataset shrec17 ... or --gesture-set SET.npz --input FILE.npz ...")
        rec = load_recognizer(args.gesture_set, _device(args.device))
        results = rec.classify([load_sequence(p, args.fps) for p in args.input])
        rows = [(str(p), r.label, f"{r.score:.6f}") for p, r in zip(args.input, results)]
        header = ("file", "label", "score")
    _write_csv(args.output, header, rows)
    print(f"{len(rows)} predictions -> {args.output}")
    return EXIT_OK


def cmd_enrol(args: argparse.Namespace) -> int:
    from models.gestures.custom import enrol_folder

    gesture_set = enrol_folder(args.examples, base=args.base, device=_device(args.device), fps=args.fps)
    gesture_set.save(args.output)
    print(f"{len(gesture_set.names)} gestures ({', '.join(gesture_set.names)}) -> {args.output}")
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    from models.gestures.online import OnlineConfig, detect_sequence
    from models.gestures.recognizer import load_recognizer
    from models.gestures.sequences import load_sequence

    spec = args.gesture_set or f"shrec{args.classes}"
    rec = load_recognizer(spec, _device(args.device))
    config = OnlineConfig() if args.threshold is None else replace(OnlineConfig(), threshold=args.threshold)
    rows = []
    for path in args.input:
        for e in detect_sequence(rec, load_sequence(path, args.fps), config):
            rows.append((e.label, e.start_frame, e.end_frame, f"{e.score:.6f}"))
    _write_csv(args.output, ("label", "start_frame", "end_frame", "score"), rows)
    print(f"{len(rows)} gestures -> {args.output}")
    return EXIT_OK


def _write_csv(path: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.gestures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the network on SHREC'17")
    t.add_argument("--data", required=True, help="SHREC'17 folder (gesture_*/..., train_gestures.txt)")
    t.add_argument("--classes", type=int, choices=(14, 28), default=14)
    t.add_argument("--out", required=True, help="output folder (resumes from its last.pt)")
    t.add_argument("--fold", type=int, default=None, help="hold out the subjects of fold K of 5 (0..4)")
    t.add_argument("--epochs", type=int, default=150)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    t.add_argument("--dim", type=int, default=HTT_DIM, help=f"token width (default {HTT_DIM}; feed-forward 2x)")
    t.add_argument("--noise", type=float, default=None, help="augmentation: joint noise sigma up to this, mm")
    t.add_argument("--no-pose-block", action="store_true", help="ablation: no pose block")
    t.add_argument("--pooling", action="store_true", help="ablation: mean pooling instead of the action token")
    t.add_argument("--no-augment", action="store_true", help="ablation: no augmentation")
    t.add_argument("--background", type=float, default=0.15,
                   help="no-gesture examples per epoch as a fraction of the training set (0: no 'none' class)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("train-refiner", help="train the causal temporal refiner on the data engine's hands")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--steps", type=int, default=6000)
    r.add_argument("--sequences", type=int, default=3000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_train_refiner)

    q = sub.add_parser("predict", help="classify SHREC'17 sequences or files against a gesture set")
    q.add_argument("--dataset", choices=("shrec17",))
    q.add_argument("--data")
    q.add_argument("--list")
    q.add_argument("--classes", type=int, choices=(14, 28))
    q.add_argument("--weights", help="a gesture checkpoint instead of the shipped one")
    q.add_argument("--gesture-set")
    q.add_argument("--input", nargs="+")
    q.add_argument("--fps", type=float, default=None, help="frame rate of inputs without timestamps")
    q.add_argument("--output", required=True)
    q.set_defaults(func=cmd_predict)

    e = sub.add_parser("enrol", help="make a custom gesture set from a few examples per gesture")
    e.add_argument("--examples", required=True, help="folder of <gesture name>/*.npz (3-10 per gesture)")
    e.add_argument("--output", required=True)
    e.add_argument("--base", default="shrec14", help="the network used as the embedding (default shrec14)")
    e.add_argument("--fps", type=float, default=None)
    e.set_defaults(func=cmd_enrol)

    d = sub.add_parser("detect", help="find gestures in a continuous stream")
    d.add_argument("--gesture-set")
    d.add_argument("--classes", type=int, choices=(14, 28), default=14)
    d.add_argument("--input", nargs="+", required=True)
    d.add_argument("--fps", type=float, default=None)
    d.add_argument("--threshold", type=float, default=None, help="minimum event score (default: the detector's)")
    d.add_argument("--output", required=True)
    d.set_defaults(func=cmd_detect)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_MODEL
    except (HandtrackError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
