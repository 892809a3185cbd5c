"""The registry of shipped checkpoints (``models.load_pretrained``): every name loads on every device,
and every broken file (missing, truncated, random bytes, another kind of model) is one ModelError
that names the file and how to make it."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from models import registry
from models.crossmodal import LANDMARK_FEATURES, CrossModal
from models.gestures.recognizer import ClassRecognizer
from models.hamuco import HaMuCo
from models.prior import PosePrior
from models.refiner import JointRefiner, JointRefinerNet, RefinerConfig, save_refiner
from models.v2v import RefPointNet, V2VPoseNet
from tracker.core.errors import AcceleratorError, ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[2]

CROSSMODAL_PARAMS = 310_384  # models/weights/crossmodal_light.md

#: Every shipped checkpoint -> (class, parameter count / prior (joints, k)). The counts are the
#: weight cards' (models/weights/*.md): the file rebuilds the architecture it was trained with.
SHIPPED: dict[str, tuple[type, int | tuple[int, int]]] = {
    "v2v_light": (V2VPoseNet, 855_573),
    "refpoint": (RefPointNet, 111_731),
    "refiner_nyu": (JointRefiner, 102_148),
    "refiner_icvl": (JointRefiner, 102_276),
    "refiner_mp21": (JointRefiner, 102_596),
    "hamuco": (HaMuCo, 286_020),
    "prior_nyu": (PosePrior, (14, 29)),
    "prior_icvl": (PosePrior, (16, 13)),
    "prior_mp21": (PosePrior, (21, 19)),
    "gestures_shrec14": (ClassRecognizer, 337_518),
    "gestures_shrec28": (ClassRecognizer, 338_876),
    "temporal_refiner": (ClassRecognizer, 258_304),
    "crossmodal": (CrossModal, CROSSMODAL_PARAMS),
}

#: A file of another kind for each name (the loader must refuse it, not crash later).
WRONG_KIND = {
    "v2v_light": "refpoint",
    "refpoint": "hamuco",
    "refiner_nyu": "refiner_icvl",
    "refiner_icvl": "prior_icvl",
    "refiner_mp21": "prior_mp21",
    "hamuco": "refiner_mp21",
    "prior_nyu": "prior_mp21",
    "prior_icvl": "v2v_light",
    "prior_mp21": "refiner_mp21",
    "gestures_shrec14": "refiner_mp21",
    "gestures_shrec28": "hamuco",
    "temporal_refiner": "refpoint",
    "crossmodal": "refiner_mp21",
}


def _parameters(model: object) -> list[torch.Tensor]:
    net = model.net if isinstance(model, JointRefiner) else model.model if isinstance(model, ClassRecognizer) else model
    return list(net.parameters())


def test_available_lists_every_shipped_checkpoint() -> None:
    assert models.available() == sorted(SHIPPED)
    assert set(WRONG_KIND) == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_checkpoint_loads(name: str, device: str) -> None:
    """A missing shipped file fails here (never skipped): the checkout and the wheel ship them all.
    ``device`` (tests/conftest.py): cpu, and cuda where there is one."""
    assert registry.shipped_path(name).is_file(), f"shipped checkpoint {name} missing"
    cls, size = SHIPPED[name]
    model = models.load_pretrained(name, device)
    assert isinstance(model, cls)
    if cls is PosePrior:
        assert (model.num_joints, model.k) == size
        return
    params = _parameters(model)
    assert sum(p.numel() for p in params) == size
    assert all(p.device.type == device and p.dtype == torch.float32 for p in params)
    if isinstance(model, JointRefiner):
        assert model.layout == name.removeprefix("refiner_") and not model.net.training
        x = np.random.default_rng(0).normal(0, 40, (2, model.config.num_joints, 3)) + [0, 0, 500]
        out = model.refine(x)  # inputs go to the device, outputs come back as CPU NumPy
        assert isinstance(out, np.ndarray) and out.shape == x.shape and np.isfinite(out).all()
        return
    if isinstance(model, ClassRecognizer):
        assert not model.model.training
        assert model.num_classes == (1 if name == "temporal_refiner" else int(name.removeprefix("gestures_shrec")))
        clip = np.random.default_rng(0).normal(0, 40, (32, 21, 3)) + [0, 0, 500]
        p = model.probabilities([(clip, 1.0)])
        assert p.shape == (1, model.num_classes) and np.isfinite(p).all()
        return
    assert not model.training
    if isinstance(model, CrossModal):
        c = model.config.crop
        with torch.inference_mode():
            out = model(landmarks=torch.rand(2, LANDMARK_FEATURES, device=device), points=torch.rand(2, 256, 3, device=device),
                        image=torch.rand(2, 3, c, c, device=device) if c else None)  # fmt: skip
        assert out["pose"].shape == (2, 21, 3) and torch.isfinite(out["pose"]).all()
        return
    if isinstance(model, (V2VPoseNet, RefPointNet)):
        g = model.in_grid
        with torch.inference_mode():
            y = model((torch.rand(1, 1, g, g, g, device=device) > 0.9).float())
        assert y.shape == ((1, 21, g // 2, g // 2, g // 2) if isinstance(model, V2VPoseNet) else (1, 3))
        assert torch.isfinite(y).all()


def test_path_loads_a_users_own_checkpoint_of_the_same_kind(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = JointRefinerNet(RefinerConfig("mp21", dim=32, depth=1, heads=4))
    save_refiner(net, tmp_path / "mine.pt", blend=0.25)
    mine = models.load_pretrained("refiner_mp21", path=tmp_path / "mine.pt")
    assert mine.blend == 0.25 and mine.config.dim == 32


def test_missing_shipped_file_is_a_model_error_saying_how_to_make_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.CATALOG["refiner_mp21"]
    monkeypatch.setitem(registry.CATALOG, "refiner_mp21", dataclasses.replace(entry, filename="absent.pt"))
    with pytest.raises(ModelError, match=r"absent\.pt.*scripts/train_refiner\.py --layout mp21"):
        models.load_pretrained("refiner_mp21")
    with pytest.raises(ModelError, match="no pose prior file at .*nothing.npz.*fit_priors"):
        models.load_pretrained("prior_mp21", path="/nonexistent/nothing.npz")


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])
    return dst


def _random_bytes(src: Path, dst: Path) -> Path:
    dst.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return dst


def _empty(src: Path, dst: Path) -> Path:
    dst.write_bytes(b"")
    return dst


@pytest.mark.parametrize("corrupt", [_truncated, _random_bytes, _empty], ids=["truncated", "random", "empty"])
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_corrupt_files_are_model_errors_naming_the_file(name: str, corrupt, tmp_path: Path) -> None:
    src = registry.shipped_path(name)
    bad = corrupt(src, tmp_path / f"bad_{name}{src.suffix}")
    with pytest.raises(ModelError) as info:
        models.load_pretrained(name, path=bad)
    message = str(info.value)
    assert str(bad) in message and name in message
    assert "train it with" in message or "fit it with" in message


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_checkpoint_of_another_kind_is_refused(name: str) -> None:
    other = registry.shipped_path(WRONG_KIND[name])
    with pytest.raises(ModelError, match=re.escape(str(other))):
        models.load_pretrained(name, path=other)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match="v2v_light"):
        models.load_pretrained("v2v_huge")


def test_resolve_device() -> None:
    assert models.resolve_device("cpu") == "cpu"
    assert models.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert models.resolve_device() == models.resolve_device("auto")
    for bad in ("gpu", "cuda:x", "", "cuda:-1"):
        with pytest.raises(ConfigError):
            models.resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(AcceleratorError, match="no CUDA device"):
            models.resolve_device("cuda")
        with pytest.raises(AcceleratorError):
            models.load_pretrained("refiner_mp21", "cuda")


def test_import_models_and_the_stages_imports_no_torch() -> None:
    code = ("import sys, models, tracker.fusion.rig, tracker.stages.v2v, tracker.post.refiner, tracker.post.prior; "
            "models.available(); print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
