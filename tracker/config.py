"""One configuration tree for every option of handtrack, and its TOML file overlay.

:class:`TrackerConfig` holds the settings of every part (source, MediaPipe landmarks, metric lift,
depth estimators, rig fusion, identities, prior, refiner, smoothing, gestures, grip, torch device,
outputs) as
frozen dataclasses; the parts' own config classes are its nodes, so each option is defined once,
next to the code that uses it. :func:`tracker.build.build_pipeline` turns a config into a pipeline;
the CLI (:mod:`tracker.cli`), the library API (:class:`tracker.HandTracker`) and batch runs use the
same tree.

A TOML file overlays the defaults table by table (``handtrack --config run.toml``; CLI flags then
override the file; ``--print-config`` writes the effective configuration)::

    device = "cpu"
    smoothing = "high"                 # a preset (off, low, medium, high) or a table:
                                       # [smoothing] min_cutoff = 1.0  beta = 0.02
    [source]
    source = "clip.mp4"
    hfov_deg = 70.0

    [landmarks]
    max_hands = 1
    model_complexity = 0               # 0 lite, 1 full

    [prior]
    enabled = true

    [gestures]
    model = "shrec14"                  # or a custom gesture set "my_gestures.npz"

    [grip]
    enabled = true

Keys are the dataclass fields below (nested tables for nested dataclasses); an unknown key, a
value of the wrong type or one out of range is a :class:`~tracker.core.errors.ConfigError` that
names the key. Paths are strings (relative paths are relative to the config file); ``"none"``
sets an optional value to None.
"""

from __future__ import annotations

import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tracker.core.errors import ConfigError
from tracker.fusion.triangulate import TriangulationConfig
from tracker.io.toml_writer import toml_value
from tracker.post.gestures import GestureConfig
from tracker.post.grip import GripConfig
from tracker.post.one_euro import SMOOTHING_PRESETS, OneEuroParams, parse_smoothing
from tracker.post.temporal_refine import TemporalRefineConfig
from tracker.stages.crossmodal import CrossModalStageConfig
from tracker.stages.depth_lift import DepthLiftConfig
from tracker.stages.identity import IdentityConfig
from tracker.stages.landmarks import LandmarkConfig
from tracker.stages.lift import LiftConfig
from tracker.stages.v2v import V2VStageConfig

__all__ = [
    "SourceConfig",
    "DepthConfig",
    "FusionConfig",
    "PriorConfig",
    "RefineConfig",
    "OutputConfig",
    "TrackerConfig",
    "load_config",
    "config_from_dict",
    "config_to_toml",
    "override",
    "parse_address",
]

Speed = Literal["auto", "realtime", "max"]
Estimator = Literal["fused", "v2v", "mediapipe", "crossmodal"]
FusionMethod = Literal["ransac", "dlt", "learned"]
TorchDevice = Literal["auto", "cpu", "cuda"]


def _finite_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from (see ``handtrack --help`` for the source names).

    Attributes:
        source: ``auto``, ``demo``, ``webcam[:N]``, ``realsense[:SERIAL]``, ``rig:RIG.toml``,
            ``synthetic[:...]``, a video / recording file or an image folder.
        calibration: camera intrinsics file (JSON, OpenCV YAML/XML, aniposelib TOML); None = a
            default from ``hfov_deg``, flagged approximate.
        hfov_deg: horizontal field of view assumed without a calibration, degrees in (1, 179).
        width, height: webcam resolution to request, px.
        fps: webcam frame rate to request; image-folder playback rate, frames per second.
        speed: playback pace of files: ``realtime`` (recorded pace), ``max``, or ``auto``
            (realtime with a window, max without).
        loop: play a file again when it ends.
    """

    source: str = "auto"
    calibration: Path | None = None
    hfov_deg: float = 60.0
    width: int = 640
    height: int = 480
    fps: float = 30.0
    speed: Speed = "auto"
    loop: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.hfov_deg, (int, float)) and 1.0 < self.hfov_deg < 179.0):
            raise ConfigError(f"hfov must be a field of view in (1, 179) degrees, got {self.hfov_deg!r}")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"width and height must be >= 1 px, got {self.width}x{self.height}")
        _finite_positive("fps", self.fps)


@dataclass(frozen=True)
class DepthConfig:
    """Estimators that use a depth image (RGB-D sources; ignored without depth).

    Attributes:
        estimator: ``fused`` (MediaPipe's joints placed with the depth image, V2V-PoseNet for hands
            RGB misses), ``v2v`` (V2V-PoseNet for every hand), ``mediapipe`` (ignore depth) or
            ``crossmodal`` (the cross-modal model's shape, RGB alone or fused with the depth points,
            then placed like ``fused``; also on RGB-only sources, where it replaces MediaPipe's shape).
        lift: the depth lift of the ``fused`` estimator.
        v2v: the V2V-PoseNet stage (its ``mode``, ``max_hands`` and ``device`` are set by the
            builder from ``estimator``, ``landmarks.max_hands`` and ``TrackerConfig.device``).
        crossmodal: the cross-modal stage (its ``device`` is set by the builder).
    """

    estimator: Estimator = "fused"
    lift: DepthLiftConfig = field(default_factory=DepthLiftConfig)
    v2v: V2VStageConfig = field(default_factory=V2VStageConfig)
    crossmodal: CrossModalStageConfig = field(default_factory=CrossModalStageConfig)


@dataclass(frozen=True)
class FusionConfig:
    """Multi-camera rigs: how the views' hands become one world-frame hand.

    Attributes:
        method: ``ransac`` (robust to a view's bad detection), ``dlt`` (weighted least squares over
            all views) or ``learned`` (the HaMuCo-style fusion network).
        weights: the learned fusion's checkpoint; None = the shipped one.
        workers: threads running the views' MediaPipe graphs.
        triangulation: thresholds of the triangulator (its ``method`` follows ``method``).
        reference_view: the camera whose frame fused hands' ``joints_3d`` / ``joints_2d`` use.
        single_view_lift: place hands that only one camera sees from that view alone (metric lift).
        single_view_uncertainty_mm: the uncertainty such hands get, mm.
    """

    method: FusionMethod = "ransac"
    weights: Path | None = None
    workers: int = 2
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    reference_view: int = 0
    single_view_lift: bool = False
    single_view_uncertainty_mm: float = 40.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"fusion workers must be >= 1, got {self.workers}")
        if self.reference_view < 0:
            raise ConfigError(f"reference_view must be >= 0, got {self.reference_view}")
        _finite_positive("single_view_uncertainty_mm", self.single_view_uncertainty_mm)


@dataclass(frozen=True)
class PriorConfig:
    """The PCA pose prior stage (pulls 3D joints towards plausible hand poses).

    Attributes:
        enabled: None (default) = on where it was validated (README "Pose prior and joint refiner in
            the live pipeline"): single-view pipelines, on hands of frames without a depth image or
            with the ``mediapipe`` estimator (the RGB path; depth estimators and rigs are left
            alone); True = on every hand; False = off.
        path: a 21-joint prior ``.npz``; None = the shipped ``prior_mp21``.
        strength: blend weight in [0, 1]; None = the prior's recommended one (0.75 for the shipped prior).
        confidence_gain: in [0, 1]: how much low-confidence joints are pulled more.
    """

    enabled: bool | None = None
    path: Path | None = None
    strength: float | None = None
    confidence_gain: float = 0.5

    def __post_init__(self) -> None:
        for name in ("strength", "confidence_gain"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"prior {name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class RefineConfig:
    """The masked joint refiner stage.

    Attributes:
        enabled: run it.
        path: an ``mp21`` refiner checkpoint; None = the shipped one.
    """

    enabled: bool = False
    path: Path | None = None


def parse_address(text: str, what: str, need_host: bool = False, min_port: int = 0) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT`` (host 127.0.0.1: only this machine) -> ``(host, port)``.

    Args:
        text: the address.
        what: the option's name, for messages (``--osc``).
        need_host: refuse a bare port.
        min_port: lowest port accepted (0 lets the system pick a free one).

    Raises:
        ConfigError: not an address, no host where ``need_host``, an IPv6 address without brackets,
            or a port outside ``min_port..65535``.
    """
    text = str(text).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        if need_host:
            raise ConfigError(f"{what} needs HOST:PORT (e.g. 127.0.0.1:9000), got {text!r}")
        host, port_text = "", text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{what} {text!r}: write an IPv6 address in brackets, e.g. [::1]:9000")
    host = host or "127.0.0.1"
    if not port_text.isdigit() or not min_port <= int(port_text) <= 65535:
        raise ConfigError(f"{what} {text!r}: expected [HOST:]PORT with a port in {min_port}..65535, "
                          "e.g. 127.0.0.1:9000")  # fmt: skip
    return host, int(port_text)


@dataclass(frozen=True)
class OutputConfig:
    """What the CLI does with the results (the library API returns them instead).

    Attributes:
        view: open the live VisPy window (falls back to headless without a display).
        save_video: write the rendered view to ``.mp4`` / ``.avi`` or PNG frames; None = off.
        export: write joints per frame to ``.jsonl``, ``.csv`` or ``.npz`` (``-``: JSON Lines on
            standard output); None = off.
        frames: stop after this many frames; None = until the source ends.
        record: record the session (every view's colour and depth, cameras, results) to this
            ``.mcap`` file; None = off.
        record_quality: None = lossless colour (PNG); 1..100 = JPEG of that quality.
        record_only: capture and record without tracking (needs ``record``).
        osc: stream joints as OSC over UDP to ``HOST:PORT``; None = off.
        websocket: serve joints (and the browser viewer) on ``[HOST:]PORT`` (host 127.0.0.1 unless
            given); None = off.
        lsl: publish a Lab Streaming Layer stream.
    """

    view: bool = True
    save_video: Path | None = None
    export: Path | None = None
    frames: int | None = None
    record: Path | None = None
    record_quality: int | None = None
    record_only: bool = False
    osc: str | None = None
    websocket: str | None = None
    lsl: bool = False

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if self.record_quality is not None and not 1 <= self.record_quality <= 100:
            raise ConfigError(f"record_quality must be a JPEG quality in 1..100, got {self.record_quality}")
        if self.record_only and self.record is None:
            raise ConfigError("record_only needs a recording file (--record FILE.mcap)")
        if self.osc is not None:
            parse_address(self.osc, "osc", need_host=True, min_port=1)
        if self.websocket is not None:
            parse_address(self.websocket, "websocket")


@dataclass(frozen=True)
class TrackerConfig:
    """Every option of handtrack (module docstring).

    Attributes:
        source: where frames come from.
        landmarks: MediaPipe hand landmarks (hands, model, thresholds, mirrored images; the runtime:
            MediaPipe's graph or LiteRT).
        lift: metric 3D from one RGB view (hand scale).
        depth: depth estimators.
        fusion: multi-camera rigs.
        identity: hand identities across frames.
        prior: the pose prior stage.
        refiner: the masked joint refiner stage.
        temporal_refine: causal refinement of the 3D joints by the gesture network's pose block.
        smoothing: One Euro filter on the 2D and 3D joints; None = off.
        gestures: online gesture detection per hand (a model or gesture set; None = off).
        grip: pinch / grab state per hand.
        device: where torch models run: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        output: CLI outputs.
    """

    source: SourceConfig = field(default_factory=SourceConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    refiner: RefineConfig = field(default_factory=RefineConfig)
    temporal_refine: TemporalRefineConfig = field(default_factory=TemporalRefineConfig)
    smoothing: OneEuroParams | None = SMOOTHING_PRESETS["medium"]
    gestures: GestureConfig = field(default_factory=GestureConfig)
    grip: GripConfig = field(default_factory=GripConfig)
    device: TorchDevice = "auto"
    output: OutputConfig = field(default_factory=OutputConfig)


# ------------------------------------------------------------------------------------------- overlay


def override(config: Any, **changes: Any) -> Any:
    """A copy of a config node with dotted-path changes, e.g.
    ``override(cfg, **{"landmarks.max_hands": 1, "device": "cpu"})``.

    Raises:
        ConfigError: an unknown key or an invalid value.
    """
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    names = {f.name for f in fields(config)}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ConfigError(f"unknown option {key!r} for {type(config).__name__} (known: {', '.join(sorted(names))})")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = override(direct.get(head, getattr(config, head)), **sub)
    try:
        return replace(config, **direct)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{type(config).__name__}: {exc}") from exc


def _hint_of(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _is_optional(hint: Any) -> tuple[bool, Any]:
    """``(True, T)`` for ``T | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) < len(typing.get_args(hint)):
            return True, (args[0] if len(args) == 1 else typing.Union[tuple(args)])
    return False, hint


def _coerce(value: Any, hint: Any, key: str, base: Path | None, current: Any) -> Any:
    """A TOML value as the field's type (dataclass tables recurse)."""
    optional, inner = _is_optional(hint)
    if optional and isinstance(value, str) and value.strip().lower() == "none":
        return None
    if inner is OneEuroParams:
        if isinstance(value, str):
            try:
                return parse_smoothing(value)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from exc
        if isinstance(value, dict):
            return _from_dict(OneEuroParams, value, key, base, current if current is not None else OneEuroParams())
    if isinstance(inner, type) and is_dataclass(inner):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        return _from_dict(inner, value, key, base, current if current is not None else inner())
    if typing.get_origin(inner) is Literal:
        allowed = typing.get_args(inner)
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if inner is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a path string, got {value!r}")
        if value == "-":  # standard output (``export = "-"``)
            return Path("-")
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() or base is None else base / p
    if inner is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number, got {value!r}")
        return value
    if inner is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if inner is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if typing.get_origin(inner) is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(value)
    return value


def _from_dict(cls: type, data: dict[str, Any], prefix: str, base: Path | None, current: Any) -> Any:
    names = {f.name for f in fields(cls)}
    changes = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"unknown option {dotted!r} (known in this table: {', '.join(sorted(names))})")
        changes[key] = _coerce(value, _hint_of(cls, key), dotted, base, getattr(current, key))
    try:
        return replace(current, **changes)
    except ConfigError as exc:
        raise ConfigError(f"{prefix or 'config'}: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{prefix or 'config'}: {exc}") from exc


def config_from_dict(data: dict[str, Any], base: TrackerConfig | None = None, relative_to: Path | None = None
                     ) -> TrackerConfig:
    """``base`` (default: the defaults) overlaid with a nested dict as read from TOML.

    Args:
        data: tables and keys of :class:`TrackerConfig`.
        base: the configuration to overlay.
        relative_to: folder relative paths in ``data`` are resolved against (None = as given).

    Raises:
        ConfigError: an unknown key, a wrong type or an invalid value (the message names the key).
    """
    return _from_dict(TrackerConfig, data, "", relative_to, base if base is not None else TrackerConfig())


def load_config(path: str | os.PathLike[str], base: TrackerConfig | None = None) -> TrackerConfig:
    """Read a TOML configuration file over ``base`` (default: the defaults).

    Raises:
        ConfigError: the file is missing, not TOML, or holds an invalid option.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    try:
        return config_from_dict(data, base, p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc


# ------------------------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    if isinstance(value, Path):  # absolute: the file may be read from another folder ("-" = stdout)
        return str(value) if str(value) == "-" else os.path.abspath(value)
    return value


def _table_lines(node: Any, prefix: str) -> list[str]:
    scalars: list[str] = []
    tables: list[str] = []
    for f in fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if is_dataclass(value):
            tables += ["", f"[{key}]"] + _table_lines(value, key)
        elif value is None:
            if f.name == "smoothing":
                scalars.append(f'{f.name} = "off"')
            else:
                scalars.append(f'# {f.name} = none')
        else:
            scalars.append(f"{f.name} = {toml_value(_plain(value))}")
    # TOML: a table's own keys must come before its sub-tables
    return scalars + tables


def config_to_toml(config: TrackerConfig) -> str:
    """The whole configuration as TOML text that :func:`load_config` reads back to an equal config
    (paths made absolute; options that are None are written as comments)."""
    header = "# handtrack configuration (handtrack --config FILE); every option, effective values\n"
    return header + "\n".join(_table_lines(config, "")).lstrip("\n") + "\n"

