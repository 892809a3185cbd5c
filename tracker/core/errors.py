"""The exceptions of handtrack: one root, :class:`HandtrackError`, and one family per kind of failure.

Each family is what a caller (the CLI, an application using :class:`tracker.HandTracker`, a batch
run) needs to tell apart; the CLI (:mod:`tracker.cli`) maps each family to its exit code in one table
(:data:`tracker.cli.EXIT_CODES`). Modules raise the most specific class they have; messages say
what failed and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "HandtrackError",
    "ConfigError",
    "DeviceError",
    "DeviceNotFoundError",
    "UnsupportedSourceError",
    "DeviceDisconnectedError",
    "RecordingError",
    "CalibrationError",
    "ViewError",
    "OutputError",
    "AcceleratorError",
    "ModelError",
    "EstimatorError",
]


class HandtrackError(Exception):
    """Root of every error handtrack raises on purpose (bad input, missing hardware or files)."""


class ConfigError(HandtrackError, ValueError):
    """An option or configuration value is invalid (out of range, unknown name, wrong type)."""


class DeviceError(HandtrackError, RuntimeError):
    """A source (camera, recording, folder, rig) cannot deliver frames."""


class DeviceNotFoundError(DeviceError):
    """The camera, file or folder asked for does not exist or cannot be opened."""


class UnsupportedSourceError(DeviceError):
    """The source exists but is not a kind handtrack can read."""


class DeviceDisconnectedError(DeviceError):
    """A live camera stopped delivering frames (unplugged, crashed driver)."""


class RecordingError(DeviceError):
    """A recording exists but cannot be decoded (corrupt, truncated, unknown codec)."""


class CalibrationError(HandtrackError, ValueError):
    """A calibration / intrinsics file is missing, malformed or does not fit the cameras."""


class ViewError(HandtrackError, RuntimeError):
    """The live view or a rendered video cannot be created (no display, no GL, bad video path)."""


class OutputError(HandtrackError, OSError):
    """An output file (export, video) cannot be created or written (read-only folder, full disk)."""


class AcceleratorError(HandtrackError, RuntimeError):
    """The requested torch device (e.g. CUDA) is not usable."""


class ModelError(HandtrackError, RuntimeError):
    """A model's weights are missing, corrupt or do not match the code; the message names the file
    and how to make it."""


class EstimatorError(HandtrackError, RuntimeError):
    """An estimator cannot run (e.g. MediaPipe's graph failed to start)."""
