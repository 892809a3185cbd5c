"""``handtrack batch`` / ``python -m tracker.batch``: track every input of an archive into one export each.

Examples::

  handtrack batch archive/ --output out/                          # every recording under archive/, local pool
  handtrack batch 'archive/**/*.mp4' frames/ --output out/ --format csv --workers 2
  handtrack batch archive/ --output out/ --config run.toml --gestures --frames 600
  handtrack batch /data/archive --output /data/out --engine ray --address auto --gpus-per-worker 0.5

The tracking options are ``handtrack``'s own (the same parser, :func:`tracker.cli.build_parser`, and
the same ``--config`` file, :func:`tracker.cli.config_from_args`), so an input's export equals
``handtrack --source INPUT --no-view --export FILE`` with the same options. Options that belong to a
single run of one source (``--source``, ``--export``, ``--save-video``, recording, streams, webcam
size, ``--speed``, ``--loop``) are refused. Exit codes: :class:`BatchExit` and, for an error that
stops the whole batch before or while it runs, ``handtrack``'s (:class:`tracker.cli.Exit`).
"""

from __future__ import annotations

import argparse
import enum
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.batch.engines import ENGINES, make_engine
from tracker.batch.inputs import FORMATS, expand_inputs, plan_jobs
from tracker.batch.runner import MANIFEST_NAME, BatchProgress, BatchSummary, Manifest, batch_config, run_batch
from tracker.batch.worker import Job, load_calibration
from tracker.cli import Exit, build_parser as build_run_parser, config_from_args, exit_code
from tracker.core.errors import ConfigError, HandtrackError, OutputError

if TYPE_CHECKING:
    from tracker.config import TrackerConfig

__all__ = ["BatchExit", "SINGLE_RUN_OPTIONS", "build_parser", "main"]

log = logging.getLogger("handtrack")


class BatchExit(enum.IntEnum):
    """Exit codes of a batch, besides ``handtrack``'s for an error that stops the whole batch
    (2 usage, 6 calibration, 7 output folder, 8 CUDA, 9 model: :class:`tracker.cli.Exit`)."""

    OK = 0  # every input exported (now or by an earlier run)
    FAILED = 10  # some inputs failed; DIR/manifest.jsonl names them and why (the others are exported)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: running inputs stopped, the manifest is up to date; run again to resume


#: ``handtrack`` options (argparse destinations) that belong to a single run of one source.
SINGLE_RUN_OPTIONS = ("source", "width", "height", "speed", "loop", "save_video", "export", "record",
                      "record_quality", "record_only", "osc", "websocket", "lsl")  # fmt: skip

_EPILOG = """exit codes:
  0    every input exported (now or by an earlier run)
  10   some inputs failed: DIR/manifest.jsonl says which and why (the others are exported)
  130  Ctrl-C / SIGTERM: the manifest is up to date; run the same command again to resume
  an error that stops the whole batch exits with handtrack's code: 2 usage (also Ray missing),
  6 calibration, 7 output folder, 8 CUDA, 9 model"""


def build_parser() -> argparse.ArgumentParser:
    """``handtrack``'s parser (:func:`tracker.cli.build_parser`) with the batch's arguments; the
    single-run options (:data:`SINGLE_RUN_OPTIONS`) are hidden from the help and refused by :func:`main`."""
    p = build_run_parser()
    p.prog = "handtrack batch"
    p.description = ("Track hands in every INPUT (video files, handtrack .mcap recordings, RealSense .bag/.db3\n"
                     "recordings, image folders, folders or glob patterns of them) with handtrack's options and\n"
                     "write one export per input to --output DIR, with a manifest (DIR/manifest.jsonl).\n"
                     "Running the same command again skips the inputs already exported.")
    p.epilog = _EPILOG
    for action in p._actions:  # argparse has no public way to hide an option it was given
        if action.dest in SINGLE_RUN_OPTIONS:
            action.help = argparse.SUPPRESS
    p.add_argument("inputs", nargs="*", metavar="INPUT", default=[],
                   help="a recording file, an image folder, a folder of recordings (searched recursively) or "
                        "a quoted glob pattern ('archive/**/*.mp4')")  # fmt: skip
    b = p.add_argument_group("batch")
    b.add_argument("-o", "--output", type=Path, metavar="DIR", default=None,
                   help="folder of the exports (NAME.jsonl|csv|npz after each input) and manifest.jsonl")  # fmt: skip
    b.add_argument("--format", choices=tuple(FORMATS), default="jsonl", help="export format (default jsonl)")
    b.add_argument("--overwrite", action="store_true", default=False,
                   help="redo inputs whose export is already in DIR (default: skip them)")  # fmt: skip
    b.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (default): a process pool on this machine; ray: Ray actors, locally or on a cluster "
                        "(pip install 'handtrack[ray]')")  # fmt: skip
    b.add_argument("--workers", type=int, metavar="N", default=None,
                   help="workers, each with its own models (default: local, one per CPU core; ray, one per CPU of "
                        "the cluster, or per --gpus-per-worker GPUs)")  # fmt: skip
    b.add_argument("--address", metavar="ADDR", default=None,
                   help="ray: the cluster to join (auto: the one this node belongs to, or HEAD:6379); default: "
                        "RAY_ADDRESS when set (as under ray job submit), else a Ray started for this batch")  # fmt: skip
    b.add_argument("--gpus-per-worker", type=float, metavar="G", default=None,
                   help="ray: GPUs each worker asks for (0.5: two workers share a GPU); torch models run there")
    return p


def _refuse_single_run_options(args: argparse.Namespace) -> None:
    given = [f"--{dest.replace('_', '-')}" for dest in SINGLE_RUN_OPTIONS if dest in vars(args)]
    if given:
        raise ConfigError(f"{', '.join(given)}: single-run options; a batch reads the INPUT arguments and writes one "
                          "export per input to --output DIR (--format jsonl|csv|npz)")  # fmt: skip


def _exit_of(summary: BatchSummary) -> int:
    if summary.fatal is not None:
        return summary.fatal.exit_code
    if summary.interrupted:
        return BatchExit.INTERRUPTED
    return BatchExit.FAILED if summary.count("failed") else BatchExit.OK


def main(argv: list[str] | None = None) -> int:
    """The ``handtrack batch`` command. Returns the exit code (:class:`BatchExit`, :class:`tracker.cli.Exit`)."""
    from tracker.runtime.quiet import quiet_native_logs

    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("numba").setLevel(logging.INFO)
    try:
        _refuse_single_run_options(args)
        config = batch_config(config_from_args(args))
        if getattr(args, "print_config", False):
            from tracker.config import config_to_toml

            sys.stdout.write(config_to_toml(config))
            return Exit.OK
        if not args.inputs or args.output is None:
            raise ConfigError("a batch needs INPUT arguments and --output DIR (handtrack batch --help)")
        load_calibration(config.source.calibration)  # a bad --calib stops the batch before it starts (exit 6)
        inputs = expand_inputs(args.inputs)
        if not inputs:
            raise ConfigError(f"no inputs found in {' '.join(args.inputs)}")
        try:
            args.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {args.output}: {exc.strerror or exc}") from exc
        jobs = plan_jobs(inputs, args.output, args.format)
        stderr_tty = sys.stderr.isatty()  # measured before the log filter turns fd 2 into a pipe
        with quiet_native_logs(enabled=not verbose):
            return _run(args, config, jobs, stderr_tty, logging.DEBUG if verbose else logging.WARNING)
    except HandtrackError as exc:
        log.error("%s", exc)
        return exit_code(exc)
    except KeyboardInterrupt:  # while the engine starts (Ray, the pool)
        log.error("interrupted")
        return BatchExit.INTERRUPTED


def _run(args: argparse.Namespace, config: TrackerConfig, jobs: list[Job], stderr_tty: bool,
         worker_log_level: int) -> int:  # fmt: skip
    """Start the engine, run the jobs with signal handling, report; returns the exit code."""
    log.info("batch: %d inputs -> %s (%s), engine %s", len(jobs), args.output, args.format, args.engine)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:  # a second Ctrl-C: stop waiting at once
            raise KeyboardInterrupt
        stop.set()

    workers = args.workers if args.workers is None else min(args.workers, len(jobs))
    engine = make_engine(args.engine, config, workers, args.address, args.gpus_per_worker, worker_log_level,
                         inputs=len(jobs))  # fmt: skip
    # installed after the engine: ray.init() puts in a SIGTERM handler of its own
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = BatchProgress(len(jobs), tty=stderr_tty)
    try:
        with Manifest(args.output, engine.name) as manifest:
            summary = run_batch(jobs, engine, manifest, overwrite=args.overwrite, stop=stop, progress=progress)
    finally:
        progress.close()
        try:
            engine.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    done, failed = summary.count("done"), summary.count("failed")
    rate = f"{done / summary.seconds:.2f} inputs/s, {summary.frames / summary.seconds:.1f} frames/s" \
        if summary.seconds > 0 else ""
    log.info("batch: %d done, %d skipped, %d failed, %d interrupted, %d frames in %.1f s (%s, %d %s workers); "
             "manifest %s", done, summary.count("skipped"), failed, summary.count("interrupted"), summary.frames,
             summary.seconds, rate, engine.workers, engine.name, args.output / MANIFEST_NAME)  # fmt: skip
    if summary.fatal is not None:
        log.error("%s", summary.fatal.error)
    elif summary.interrupted:
        log.error("interrupted: run the same command again to resume")
    return _exit_of(summary)
