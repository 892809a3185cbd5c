"""Shared fixtures: the repository root, the shipped weights, synthetic scenes / frame sets from the data
engine (:mod:`models.synthetic`), hand-pose and frame-set factories, and a cpu/cuda ``device``.

Markers (registered in ``pyproject.toml``): ``gpu`` items are skipped here when CUDA is not available
(torch is imported only when such an item was collected), ``slow`` marks tests over ~5 s, ``hardware``
tests skip themselves when no camera is attached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` items when torch sees no CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout (holds ``run_tracker.py``, ``scripts/``, ``bench/``)."""
    return ROOT


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The shipped weights (package data of :mod:`models`); they are committed, so they must be there."""
    path = Path(str(files("models").joinpath("weights")))
    assert path.is_dir(), f"shipped weights folder missing: {path}"
    return path


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> str:
    """A torch device name: every test using it runs on the CPU and, where CUDA is present, on the GPU."""
    return str(request.param)


@functools.lru_cache(maxsize=32)
def _scene(seed: int, items: tuple[tuple[str, Any], ...]) -> Any:
    from models.synthetic import SceneConfig, sample_scene

    return sample_scene(seed, SceneConfig(**dict(items)))


@functools.lru_cache(maxsize=64)
def _frameset(seed: int, t: int, sensor: bool, with_depth: bool, items: tuple[tuple[str, Any], ...]) -> FrameSet:
    from models.render import RenderConfig
    from models.synthetic import SENSOR_LIKE, render_frameset

    return render_frameset(_scene(seed, items), t, SENSOR_LIKE if sensor else RenderConfig(), with_depth)


@pytest.fixture(scope="session")
def synthetic_scene() -> Callable[..., Any]:
    """``synthetic_scene(seed, **scene_config)`` -> :class:`models.synthetic.Scene` (cached: don't modify).

    Keyword arguments are :class:`models.synthetic.SceneConfig` fields, e.g. ``num_frames=3,
    layout="ring", num_views=4``.
    """

    def make(seed: int, **config: Any) -> Any:
        return _scene(seed, tuple(sorted(config.items())))

    return make


@pytest.fixture(scope="session")
def synthetic_frameset() -> Callable[..., FrameSet]:
    """``synthetic_frameset(seed, t=0, sensor=True, with_depth=True, **scene_config)`` -> a rendered
    :class:`FrameSet` with ground truth on every frame (RGB uint8, depth uint16 mm).

    ``sensor`` renders with :data:`models.synthetic.SENSOR_LIKE` noise (else the clean default). Frame sets
    are cached across tests: read them, don't modify their arrays.
    """

    def make(seed: int, t: int = 0, sensor: bool = True, with_depth: bool = True, **config: Any) -> FrameSet:
        return _frameset(seed, t, sensor, with_depth, tuple(sorted(config.items())))

    return make


@pytest.fixture(scope="session")
def blank_frameset() -> Callable[..., FrameSet]:
    """``blank_frameset(timestamp=0.0, index=0)``: one black 64x48 view (fx = fy = 50 px), for stages that
    only need a frame set to pass along."""

    def make(timestamp: float = 0.0, index: int = 0) -> FrameSet:
        camera = Camera("c", Intrinsics(50.0, 50.0, 32.0, 24.0, 64, 48))
        return FrameSet.single(Frame(np.zeros((48, 64, 3), np.uint8), timestamp, index, camera))

    return make


@pytest.fixture(scope="session")
def make_hand() -> Callable[..., HandPose]:
    """``make_hand(joints_2d=0.0, confidence=1.0, timestamp=0.0, joints_3d=None, **fields)`` -> HandPose.

    A scalar fills the whole ``(21, 2)`` / ``(21,)`` / ``(21, 3)`` array; arrays are used as given. Other
    keyword arguments are :class:`HandPose` fields (``track_id``, ``handedness``, ``view``...).
    """

    def make(joints_2d: float | np.ndarray = 0.0, confidence: float | np.ndarray = 1.0, timestamp: float = 0.0,
             joints_3d: float | np.ndarray | None = None, **fields: Any) -> HandPose:
        def fill(value: float | np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
            if value is None:
                return None
            return np.full(shape, float(value)) if np.isscalar(value) else np.asarray(value, np.float64)

        return HandPose(fill(joints_2d, (NUM_JOINTS, 2)), fill(confidence, (NUM_JOINTS,)), timestamp,
                        joints_3d=fill(joints_3d, (NUM_JOINTS, 3)), **fields)  # fmt: skip

    return make
