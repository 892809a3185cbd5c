"""The shipped checkpoints by name: :func:`load_pretrained`, :func:`available`, :func:`resolve_device`.

Every checkpoint in ``models/weights/`` has one name here (:data:`CATALOG`); the weights are read as
package data (:mod:`importlib.resources`), so an installed wheel works like the checkout. One error
type: whatever goes wrong while loading (a missing, truncated or corrupt file, a file of another
kind of model, weights that do not fit the code) raises :class:`tracker.core.errors.ModelError`
whose message names the file and the command that makes it.

    import models
    refiner = models.load_pretrained("refiner_mp21", device=models.resolve_device("auto"))
    mine = models.load_pretrained("refiner_mp21", path="checkpoints/mp21/best.pt")   # own weights, same kind

What each name returns (all in eval mode, float32, on ``device``):

========================  ==============================================  =================================
name                      returns                                         made by
========================  ==============================================  =================================
``v2v_light``             :class:`models.v2v.V2VPoseNet` (21 joints)      ``scripts/train_v2v.py``
``refpoint``              :class:`models.v2v.RefPointNet`                 ``scripts/train_v2v.py``
``refiner_{nyu,icvl,mp21}``  :class:`models.refiner.JointRefiner`         ``scripts/train_refiner.py``
``hamuco``                :class:`models.hamuco.HaMuCo` (``hamuco_img``)  ``scripts/train_hamuco.py``
``prior_{nyu,icvl,mp21}``  :class:`models.prior.PosePrior` (NumPy)       ``scripts/fit_priors.py``
``gestures_shrec{14,28}``  :class:`models.gestures.recognizer.ClassRecognizer`  ``python -m models.gestures train``
``temporal_refiner``       :class:`models.gestures.recognizer.ClassRecognizer`  ``python -m models.gestures train-refiner``
``crossmodal``             :class:`models.crossmodal.CrossModal` (light)   ``scripts/train_crossmodal.py``
========================  ==============================================  =================================

This module imports neither torch nor the networks until a model is loaded.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from tracker.core.errors import AcceleratorError, ConfigError, ModelError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import torch

__all__ = [
    "Kind",
    "Pretrained",
    "CATALOG",
    "available",
    "load_pretrained",
    "resolve_device",
    "shipped_path",
    "read_torch_checkpoint",
]

Kind = Literal["v2v", "refpoint", "refiner", "hamuco", "prior", "gestures", "crossmodal"]


@dataclass(frozen=True)
class Pretrained:
    """One shipped checkpoint.

    Attributes:
        name: the registry name.
        kind: which loader reads it (and what a ``path`` override must hold).
        filename: the file in ``models/weights/``.
        variant: the joint layout of a refiner / prior (``nyu``, ``icvl``, ``mp21``); the
            architecture name of the others.
        make: the command(s) that make the file.
    """

    name: str
    kind: Kind
    filename: str
    variant: str
    make: str


def _refiner(layout: str) -> Pretrained:
    steps = (f"`python scripts/train_refiner.py --layout {layout} --stage pretrain --ship`" if layout == "mp21" else
             f"`python scripts/train_refiner.py --layout {layout} --stage pretrain` then "
             f"`... --stage finetune --init pretrained --ship`")  # fmt: skip
    return Pretrained(f"refiner_{layout}", "refiner", f"refiner_{layout}.pt", layout,
                      f"train it with {steps} (models/weights/refiner_{layout}.md)")  # fmt: skip


def _prior(layout: str) -> Pretrained:
    fit = {"mp21": "mediapipe"}.get(layout, layout)
    return Pretrained(f"prior_{layout}", "prior", f"prior_{layout}.npz", layout,
                      f"fit it with `python scripts/fit_priors.py` (or `python -m models.prior fit --layout {fit} "
                      f"--out FILE`; models/weights/PRIORS.md)")  # fmt: skip


#: Every shipped checkpoint, by name.
CATALOG: Final[dict[str, Pretrained]] = {
    e.name: e
    for e in (
        Pretrained("v2v_light", "v2v", "v2v_light.pt", "v2v_light",
                   "train it with `python scripts/train_v2v.py --model v2v_light` (models/weights/v2v_light.md)"),
        Pretrained("refpoint", "refpoint", "refpoint.pt", "refpoint",
                   "train it with `python scripts/train_v2v.py --model refpoint` (models/weights/refpoint.md)"),
        _refiner("nyu"),
        _refiner("icvl"),
        _refiner("mp21"),
        Pretrained("hamuco", "hamuco", "hamuco.pt", "hamuco_img",
                   "train it with `python -m scripts.train_hamuco --model hamuco_img ...` then "
                   "`python -m scripts.train_hamuco --export --out DIR` (models/weights/hamuco.md)"),
        _prior("nyu"),
        _prior("icvl"),
        _prior("mp21"),
        *(Pretrained(f"gestures_shrec{c}", "gestures", f"gestures_shrec{c}.pt", f"htt_{c}",
                     f"train it with `python -m models.gestures train --data SHREC17_DIR --classes {c} --out DIR` "
                     f"and copy DIR/final.pt (models/weights/gestures_shrec{c}.md)") for c in (14, 28)),
        Pretrained("temporal_refiner", "gestures", "temporal_refiner.pt", "htt_causal_pose",
                   "train it with `python -m models.gestures train-refiner --out DIR` and copy DIR/final.pt "
                   "(models/weights/temporal_refiner.md)"),
        Pretrained("crossmodal", "crossmodal", "crossmodal_light.pt", "crossmodal_light",
                   "train it with `python scripts/train_crossmodal.py make-data --out DATA` then "
                   "`python scripts/train_crossmodal.py train --data DATA --out DIR --light` and "
                   "`python scripts/finetune_crossmodal.py --models DIR/final.pt --data DATA --ship FILE` "
                   "(models/weights/crossmodal_light.md)"),
    )
}  # fmt: skip


def available() -> list[str]:
    """The names :func:`load_pretrained` knows, sorted."""
    return sorted(CATALOG)


def _entry(name: str) -> Pretrained:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelError(f"no pretrained model named {name!r}; available: {', '.join(available())}") from None


def _resource(entry: Pretrained) -> Traversable:
    return importlib.resources.files("models") / "weights" / entry.filename


def shipped_path(name: str) -> Path:
    """Where the shipped file of ``name`` lies on disk (package data; the file may be missing).

    For writing a new shipped checkpoint (training scripts) and for messages; to load one use
    :func:`load_pretrained`.

    Raises:
        ModelError: unknown name.
    """
    res = _resource(_entry(name))
    return res if isinstance(res, Path) else Path(str(res))


# --------------------------------------------------------------------------------------- device


def resolve_device(choice: str = "auto") -> str:
    """The torch device to run models on, resolved once at the entry point.

    Args:
        choice: ``"auto"`` (CUDA when torch sees a CUDA device, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.

    Returns:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        AcceleratorError: CUDA asked for but torch sees no (such) CUDA device.
        ConfigError: any other value.
    """
    if not isinstance(choice, str):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {choice!r}")
    value = choice.strip().lower()
    index: int | None = None
    if value.startswith("cuda:"):
        try:
            index = int(value[5:])
        except ValueError:
            index = -1
        if index < 0:
            raise ConfigError(f"device {choice!r}: expected 'cuda:N' with N a device index >= 0")
    elif value not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {choice!r}")
    if value == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if value == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise AcceleratorError(f"device {choice!r}: torch sees no CUDA device (torch {torch.__version__}; install a "
                               "CUDA build of torch and check nvidia-smi, or use 'cpu' / 'auto')")  # fmt: skip
    if index is not None and index >= torch.cuda.device_count():
        raise AcceleratorError(f"device {choice!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return value


def _torch_device(device: str | torch.device | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    return torch.device(resolve_device(device))


# -------------------------------------------------------------------------------------- reading


def read_torch_checkpoint(file: str | Path) -> dict[str, Any]:
    """The dict of a checkpoint written by one of the ``save_*`` functions of :mod:`models`
    (``torch.load(weights_only=True)`` onto the CPU).

    Raises:
        ModelError: no such file, or not a readable checkpoint (truncated, corrupt, not a torch
            file, not a dict); the message names the file.
    """
    import torch

    file = Path(file)
    if not file.is_file():
        raise ModelError(f"no weights file at {file}")
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, EOFError, RuntimeError (zip), OSError, ...: all mean "corrupt"
        # torch's UnpicklingError text suggests weights_only=False, which is no fix for a corrupt file
        detail = type(e).__name__ if isinstance(e, pickle.UnpicklingError) else f"{type(e).__name__}: {_short(e)}"
        raise ModelError(f"{file} is not a readable torch checkpoint (truncated or corrupt? {detail})") from e
    if not isinstance(blob, dict):
        raise ModelError(f"{file} holds a {type(blob).__name__}, not a handtrack checkpoint (a dict)")
    return blob


def load_state(model: Any, state_dict: Any, path: str | Path, what: str) -> None:
    """Put a checkpoint's weights into ``model`` (floating tensors as float32, whatever they were
    saved as: some checkpoints are stored in float16).

    Raises:
        ModelError: the weights do not fit the network (names, shapes); the message names ``path``.
    """
    try:
        weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}
        model.load_state_dict(weights)
    except (RuntimeError, AttributeError) as e:
        raise ModelError(f"{path} does not fit the {what} network ({_short(e)})") from e


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_v2v(entry: Pretrained, file: Path, device: torch.device) -> Any:
    from models.v2v import load_weights

    model = load_weights(file, device=device)
    arch = model.config.arch
    if arch != entry.kind:
        what = "V2V-PoseNet" if arch == "v2v" else "RefPointNet"
        raise ModelError(f"{file} holds a {what} ({model.model_name}), not a {entry.name} checkpoint")
    return model


def _load_refiner(entry: Pretrained, file: Path, device: torch.device) -> Any:
    from models.refiner import load_weights

    refiner = load_weights(file, device=device)
    if refiner.layout != entry.variant:
        raise ModelError(f"{file} holds a {refiner.layout!r} refiner, not a {entry.variant!r} one ({entry.name})")
    return refiner


def _load_hamuco(entry: Pretrained, file: Path, device: torch.device) -> Any:
    from models.hamuco import load_weights

    return load_weights(file, device=device)


def _load_prior(entry: Pretrained, file: Path, device: torch.device | None) -> Any:
    from models.prior import PosePrior

    prior = PosePrior.load(file)
    layout = {"mediapipe": "mp21", "freihand": "mp21"}.get(prior.layout, prior.layout)
    if layout != entry.variant:
        raise ModelError(f"{file} holds a {prior.layout!r} pose prior ({prior.num_joints} joints), not a "
                         f"{entry.variant!r} one ({entry.name})")  # fmt: skip
    return prior


def _load_crossmodal(entry: Pretrained, file: Path, device: torch.device) -> Any:
    from models.crossmodal import load_weights

    return load_weights(file, device=device)


def _load_gestures(entry: Pretrained, file: Path, device: torch.device) -> Any:
    from models.gestures.recognizer import ClassRecognizer

    return ClassRecognizer.from_checkpoint(file, device)


#: What a file of each kind holds, for messages.
_WHAT: Final[dict[str, str]] = {
    "v2v": "V2V-PoseNet weights",
    "refpoint": "RefPointNet weights",
    "refiner": "joint refiner weights",
    "hamuco": "HaMuCo fusion weights",
    "prior": "pose prior",
    "gestures": "gesture classifier",
    "crossmodal": "cross-modal model weights",
}

_LOADERS: Final[dict[str, Callable[[Pretrained, Path, Any], Any]]] = {
    "v2v": _load_v2v,
    "refpoint": _load_v2v,
    "refiner": _load_refiner,
    "hamuco": _load_hamuco,
    "prior": _load_prior,
    "gestures": _load_gestures,
    "crossmodal": _load_crossmodal,
}


@contextlib.contextmanager
def _on_disk(entry: Pretrained, path: str | Path | None) -> Iterator[Path]:
    if path is not None:
        yield Path(path)
        return
    with importlib.resources.as_file(_resource(entry)) as file:
        yield Path(file)


def load_pretrained(name: str, device: str | torch.device | None = None, *, path: str | Path | None = None) -> Any:
    """Load a shipped checkpoint (or, with ``path``, a file of the same kind), ready for inference.

    Args:
        name: one of :func:`available` (the table in the module docstring).
        device: where the network runs: a torch device, ``"auto"`` / ``"cpu"`` / ``"cuda"`` /
            ``"cuda:N"`` (:func:`resolve_device`), None = CPU. Priors are NumPy and ignore it.
        path: a file to read instead of the shipped one; it must hold the same kind of model
            (e.g. a refiner of the same joint layout).

    Returns:
        The model (see the module docstring), eval mode, float32, on ``device``.

    Raises:
        ModelError: unknown name, or the file is missing, unreadable (truncated, corrupt) or holds
            something else than ``name``'s kind of model; the message names the file and how to
            make it.
        AcceleratorError: ``device`` asks for CUDA and torch sees none.
        ConfigError: ``device`` is not a device name.
    """
    entry = _entry(name)
    torch_device = None if entry.kind == "prior" else _torch_device(device)
    with _on_disk(entry, path) as file:
        source = f"the shipped {entry.name} weights" if path is None else f"{entry.name} weights"
        if not file.is_file():
            raise ModelError(f"{source}: no {_WHAT[entry.kind]} file at {file}; {entry.make}")
        try:
            return _LOADERS[entry.kind](entry, file, torch_device)
        except ModelError as e:
            raise ModelError(f"{source}: {e}; {entry.make}") from e
        except Exception as e:  # a reader that let something through: still a model that cannot be loaded
            raise ModelError(f"{source}: cannot load {file} ({type(e).__name__}: {_short(e)}); {entry.make}") from e
