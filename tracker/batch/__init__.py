"""Batch processing of recording archives: every input tracked into one export, locally or on Ray.

::

    handtrack batch archive/ --output out/ [--engine local|ray] [--workers N] [--format jsonl|csv|npz]
    python -m tracker.batch ...                                   # the same command

* :mod:`tracker.batch.inputs`: INPUT arguments (files, image folders, folders and globs of
  recordings) -> inputs -> jobs with unique, stable export names.
* :mod:`tracker.batch.worker`: :class:`BatchWorker`, one per worker process: models loaded once,
  one input after another, each through the CLI's own source, loop and export writer, written to a
  temporary name and renamed when complete.
* :mod:`tracker.batch.engines`: the local process pool and Ray actors behind one interface.
* :mod:`tracker.batch.runner`: the scheduler, the manifest (``DIR/manifest.jsonl``), resume, progress.
* :mod:`tracker.batch.command`: the command line (``handtrack``'s options and config file, plus
  the batch's own) and its exit codes.
"""

from __future__ import annotations

from tracker.batch.command import BatchExit, main
from tracker.batch.engines import LocalEngine, RayEngine, make_engine
from tracker.batch.inputs import expand_inputs, plan_jobs
from tracker.batch.runner import MANIFEST_NAME, Manifest, batch_config, read_manifest, run_batch
from tracker.batch.worker import BatchWorker, Job, Outcome

__all__ = [
    "BatchExit",
    "BatchWorker",
    "Job",
    "LocalEngine",
    "MANIFEST_NAME",
    "Manifest",
    "Outcome",
    "RayEngine",
    "batch_config",
    "expand_inputs",
    "main",
    "make_engine",
    "plan_jobs",
    "read_manifest",
    "run_batch",
]
