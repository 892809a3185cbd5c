"""Find MediaPipe's ``.tflite`` files inside the installed mediapipe wheel and open them with LiteRT.

The files are read where the wheel put them (no copy, no download). Locating them does not import
mediapipe (a heavy import): :func:`importlib.util.find_spec` only resolves the package folder.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from tracker.core.errors import ModelError

__all__ = ["load_interpreter", "mediapipe_model_path"]

log = logging.getLogger(__name__)

_FILES = {
    ("palm", 0): "palm_detection/palm_detection_lite.tflite",
    ("palm", 1): "palm_detection/palm_detection_full.tflite",
    ("landmark", 0): "hand_landmark/hand_landmark_lite.tflite",
    ("landmark", 1): "hand_landmark/hand_landmark_full.tflite",
}


def mediapipe_model_path(kind: str, complexity: int) -> Path:
    """Path of a hand model inside the installed mediapipe package.

    Args:
        kind: ``"palm"`` (palm detector) or ``"landmark"`` (hand landmark network).
        complexity: 0 = lite, 1 = full.

    Returns:
        The ``.tflite`` path (not checked for existence; :func:`load_interpreter` does).

    Raises:
        ValueError: unknown kind or complexity.
        ModelError: mediapipe is not installed.
    """
    if (kind, complexity) not in _FILES:
        raise ValueError(
            f"no MediaPipe hand model for kind={kind!r}, complexity={complexity}"
        )
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the mediapipe package is not installed; its wheel ships the hand models "
            "(pip install mediapipe==0.10.14)"
        )
    return (
        Path(next(iter(spec.submodule_search_locations)))
        / "modules"
        / _FILES[(kind, complexity)]
    )


def load_interpreter(path: Path, num_threads: int):
    """Open a ``.tflite`` file with LiteRT's interpreter (XNNPACK on CPU) and allocate its tensors.

    Args:
        path: the model file.
        num_threads: interpreter threads (>= 1).

    Returns:
        An allocated ``ai_edge_litert.interpreter.Interpreter``.

    Raises:
        ModelError: the file is missing or is not a valid TFLite model, or ai-edge-litert is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ModelError(
            "the LiteRT hand stage needs the ai-edge-litert package "
            "(pip install ai-edge-litert==2.3.0)"
        ) from e
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"model file {path} does not exist; reinstall the mediapipe wheel that ships it "
            "(pip install --force-reinstall mediapipe==0.10.14)"
        )
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=int(num_threads))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(
            f"model file {path} is not a valid TFLite model ({e}); reinstall the mediapipe "
            "wheel that ships it (pip install --force-reinstall mediapipe==0.10.14)"
        ) from e
    log.debug("loaded %s with %d threads", path, num_threads)
    return interpreter
