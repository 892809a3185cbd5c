"""From the command line's INPUT arguments to the batch's jobs: which inputs, and the export of each.

An INPUT is

* a file: one input (a video, a handtrack recording ``.mcap``, a RealSense recording ``.bag`` /
  ``.db3``: anything ``handtrack --source FILE`` plays; a file it cannot play fails in the batch
  and is recorded in the manifest);
* a folder holding images: one input, an image folder (``handtrack --source FOLDER``);
* any other folder: a collection, searched recursively for recordings (:data:`RECORDING_SUFFIXES`)
  and image folders, each one input;
* a glob pattern (``'archive/**/*.mp4'``, quoted so that the shell leaves it alone): every match,
  each as above.

A path that does not exist and matches nothing is still an input: it fails (not found) and the
manifest says so. Inputs found twice are kept once. Exports are named after their input's stem in
the output folder (``take1.mp4`` -> ``take1.jsonl``); inputs sharing a stem get a short hash of
their path added (``take1-3f2a9c01.jsonl``), so names stay the same from one run to the next.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from devices.image_folder import IMAGE_EXTENSIONS, natural_key
from devices.video import VIDEO_EXTENSIONS
from tracker.batch.worker import Job
from tracker.io.sources import MCAP_SUFFIX
from tracker.io.sources import RECORDING_SUFFIXES as REALSENSE_SUFFIXES

__all__ = ["RECORDING_SUFFIXES", "FORMATS", "expand_inputs", "plan_jobs", "is_image_folder"]

log = logging.getLogger(__name__)

#: File suffixes a collection folder is searched for: videos, handtrack recordings, RealSense recordings.
RECORDING_SUFFIXES: frozenset[str] = frozenset(VIDEO_EXTENSIONS | {MCAP_SUFFIX} | REALSENSE_SUFFIXES)

#: ``--format`` -> the export suffix (the writers of :mod:`tracker.sinks.export`).
FORMATS: dict[str, str] = {"jsonl": ".jsonl", "csv": ".csv", "npz": ".npz"}

_GLOB_CHARS = frozenset("*?[")


def is_image_folder(folder: Path) -> bool:
    """True when ``folder`` holds image files directly (it plays as one image-folder input)."""
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
               for p in folder.iterdir())  # fmt: skip


def _collection(folder: Path) -> list[str]:
    """The inputs inside a folder of recordings, recursively, in natural order; hidden entries skipped."""
    found: list[str] = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            found += [str(p)] if is_image_folder(p) else _collection(p)
        elif p.suffix.lower() in RECORDING_SUFFIXES:
            found.append(str(p))
    return found


def _one(path: Path) -> list[str]:
    if path.is_dir():
        if is_image_folder(path):
            return [str(path)]
        found = _collection(path)
        if not found:
            log.warning("%s: no recordings or image folders in it", path)
        return found
    return [str(path)]


def expand_inputs(args: Iterable[str]) -> list[str]:
    """The batch's inputs from the INPUT arguments (module docstring), duplicates removed, in order.

    A pattern or folder that yields nothing is logged; a missing plain path is kept (it fails later
    and is recorded).
    """
    inputs: list[str] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.exists() or not _GLOB_CHARS & set(arg):
            inputs += _one(path)
            continue
        matches = sorted(glob.glob(str(path), recursive=True), key=natural_key)
        if not matches:
            log.warning("%s matches no file or folder", arg)
        for match in matches:
            inputs += _one(Path(match))
    seen: set[str] = set()
    unique = []
    for item in inputs:
        key = str(Path(item).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _export_stem(item: str) -> str:
    path = Path(item)
    return path.name if path.is_dir() else path.stem


def plan_jobs(inputs: Sequence[str], output: Path, fmt: str) -> list[Job]:
    """One :class:`~tracker.batch.worker.Job` per input, exporting to ``output/NAME.<fmt>``
    (module docstring: names are unique and stable).

    Raises:
        KeyError: ``fmt`` is not one of :data:`FORMATS`.
    """
    suffix = FORMATS[fmt]
    stems = [_export_stem(i) or "input" for i in inputs]
    shared = {s for s, n in Counter(stems).items() if n > 1}
    jobs = []
    for index, (item, stem) in enumerate(zip(inputs, stems, strict=True)):
        if stem in shared:
            digest = hashlib.sha1(str(Path(item).resolve()).encode("utf-8")).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        jobs.append(Job(index, item, output / f"{stem}{suffix}"))
    return jobs
