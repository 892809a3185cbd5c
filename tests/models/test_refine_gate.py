"""The post-processor's no-harm safeguards: test-time gate, per-segment centring, size normalisation."""

import numpy as np
import pytest

from models.benchmark_data import benchmark_params, load_ground_truth, prediction_paths
from models.depth_datasets import read_labels, uvd_to_xyz
from models.refine import run_steps
from models.refine_gate import (
    GateBands,
    GateError,
    GateReference,
    calibrate_gate,
    evaluate_gate,
    ramp,
    sequence_shape,
    shipped_gate,
)
from models.registry import load_pretrained
from tracker.core.metrics import sequence_joint_errors

RNG = np.random.default_rng(0)
TEMPLATE = RNG.normal(0, 40, (14, 3))  # one rigid "hand" of the NYU layout, mm


def hand_sequence(n: int = 60, seed: int = 0, noise: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) (N, 14, 3) mm: the template turning slowly, 450 mm in front of the camera."""
    rng = np.random.default_rng(seed)
    angle = 0.02 * np.arange(n) + rng.uniform(0, 6)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    clean = np.einsum("nij,kj->nki", rot, TEMPLATE) + [0.0, 0.0, 450.0]
    return clean, clean + rng.normal(0, noise, clean.shape)


@pytest.fixture(scope="module")
def reference() -> GateReference:
    clean, _ = hand_sequence(200, seed=1)
    inputs = [hand_sequence(80, seed=s)[1] for s in range(2, 6)]
    corrections = [RNG.normal(0, 1.5, x.shape) for x in inputs]
    return calibrate_gate("nyu", clean, inputs, corrections, source="test")


def test_gate_trusts_inputs_like_the_training_data(reference):
    _, noisy = hand_sequence(80, seed=9)
    g = evaluate_gate(noisy, reference, RNG.normal(0, 1.5, noisy.shape))
    assert g.weight == 1.0 and abs(g.log_scale) < 0.05
    moved = evaluate_gate(noisy + [40.0, -25.0, 100.0], reference)  # a translation is no reason to distrust
    assert moved.weight == 1.0


@pytest.mark.parametrize("scale,expected", [(1.1, 1.0), (0.92, 1.0), (1.6, 0.0), (0.6, 0.0)])
def test_gate_falls_back_on_another_skeleton_scale(reference, scale, expected):
    _, noisy = hand_sequence(80, seed=9)
    centre = noisy.mean(axis=1, keepdims=True)
    g = evaluate_gate((noisy - centre) * scale + centre, reference)
    assert g.weight == pytest.approx(expected)
    assert g.log_scale == pytest.approx(np.log(scale), abs=0.05)


def test_gate_falls_back_on_a_constant_per_joint_offset(reference):
    _, noisy = hand_sequence(80, seed=9)
    offset = np.random.default_rng(3).normal(0, 15.0, (14, 3))  # another joint convention, every frame
    g = evaluate_gate(noisy + offset, reference)
    assert g.shape > reference.shape_worst + reference.bands.shape[1]
    assert g.weight == 0.0


def test_gate_falls_back_when_the_refiner_disagrees_far_more_than_in_training(reference):
    _, noisy = hand_sequence(80, seed=9)
    assert evaluate_gate(noisy, reference, RNG.normal(0, 1.5, noisy.shape)).weight == 1.0
    g = evaluate_gate(noisy, reference, RNG.normal(0, 6.0, noisy.shape))
    assert g.disagreement > 3.0 and g.weight == 0.0


def test_ramp_and_reference_errors(tmp_path, reference):
    assert ramp(0.1, (0.2, 0.4)) == 1.0 and ramp(0.3, (0.2, 0.4)) == pytest.approx(0.5) and ramp(9, (0.2, 0.4)) == 0.0
    reference.save(tmp_path / "g.json")
    back = GateReference.load(tmp_path / "g.json")
    assert back == reference
    with pytest.raises(GateError):
        GateBands(scale=(0.4, 0.2))
    with pytest.raises(GateError):
        GateReference("nyu", (1.0, 2.0), 0.0)
    (tmp_path / "bad.json").write_text("{}")
    from tracker.core.errors import ModelError

    with pytest.raises(ModelError, match="not a gate reference"):
        GateReference.load(tmp_path / "bad.json")


class _ConstantOffset:
    """A refiner that moves every joint of every frame by the same vector: a learned offset."""

    def refine(self, xyz, confidence=None):
        return xyz + np.array([3.0, -2.0, 4.0])


class _Shrink:
    """A refiner that halves each frame's deviation from the clean template (knows the answer)."""

    def __init__(self, clean: np.ndarray) -> None:
        self.clean = clean

    def refine(self, xyz, confidence=None):
        flip = np.array([1.0, np.sign(benchmark_params("nyu").fy), 1.0])
        return xyz + 0.5 * (self.clean * flip - xyz)


def test_centring_removes_a_learned_offset_but_keeps_frame_corrections(reference):
    clean, noisy = hand_sequence(80, seed=9)
    out = run_steps(noisy, "nyu", ("refiner",), refiner=_ConstantOffset(), blend=1.0, gate=reference).xyz
    np.testing.assert_allclose(out, noisy, atol=1e-9)  # a constant correction cannot move the file
    uncentred = run_steps(noisy, "nyu", ("refiner",), refiner=_ConstantOffset(), blend=1.0, gate=False,
                          centre=False).xyz  # fmt: skip
    np.testing.assert_allclose(uncentred - noisy, np.broadcast_to([3.0, 2.0, 4.0], noisy.shape), atol=1e-9)
    res = run_steps(noisy, "nyu", ("refiner",), refiner=_Shrink(clean), blend=1.0, gate=reference)
    err = lambda y: sequence_joint_errors(y, clean).mean()  # noqa: E731
    assert err(res.xyz) < 0.6 * err(noisy)
    assert [(step, first) for step, first, _ in res.gates] == [("refiner", 0)]


def test_refiner_step_falls_back_on_a_bigger_skeleton(reference):
    clean, noisy = hand_sequence(80, seed=9)
    centre = noisy.mean(axis=1, keepdims=True)
    big = (noisy - centre) * 1.6 + centre
    out = run_steps(big, "nyu", ("refiner", "prior"), refiner=_Shrink(clean), blend=1.0, strength=1.0,
                    prior=load_pretrained("prior_nyu"), gate=reference)  # fmt: skip
    np.testing.assert_allclose(out.xyz, big, atol=1e-9)
    assert all(g.weight == 0.0 for _, _, g in out.gates)


@pytest.mark.parametrize("dataset", ["nyu", "icvl"])
def test_shipped_gate_references(dataset):
    g = shipped_gate(dataset)
    assert g.layout == dataset and g.correction_mm > 0 and 0 < g.shape_worst < 0.3


@pytest.mark.skipif(not prediction_paths("nyu"), reason="NYU development data absent (../shared/data)")
def test_shipped_pipeline_on_real_files_falls_back_far_from_training():
    """V2V-PoseNet's last 300 development frames: the default steps help; the same file 1.6x larger or
    with a 15 mm constant offset per joint comes back (nearly) unchanged."""
    params = benchmark_params("nyu")
    gt = uvd_to_xyz(load_ground_truth("nyu")[-300:], *params)
    src = next(p for p in prediction_paths("nyu") if "V2V" in p.name)
    x = uvd_to_xyz(read_labels(src, "nyu")[2140:2440], *params)
    err = lambda y: sequence_joint_errors(y, gt).mean()  # noqa: E731
    assert err(run_steps(x, "nyu", ("refiner", "temporal")).xyz) < err(x)
    centre = x.mean(axis=1, keepdims=True)
    for far in ((x - centre) * 1.6 + centre, x + np.random.default_rng(4).normal(0, 15.0, (14, 3))):
        res = run_steps(far, "nyu", ("refiner",))
        assert res.gates[0][2].weight == 0.0
        np.testing.assert_allclose(res.xyz, far, atol=1e-6)
    assert sequence_shape(x, shipped_gate("nyu"))[1] < shipped_gate("nyu").shape_worst + 0.08


def test_blend_and_strength_out_of_range_are_errors(reference):
    from models.refine import RefineError

    _, noisy = hand_sequence(10, seed=9)
    with pytest.raises(RefineError, match="blend"):
        run_steps(noisy, "nyu", ("refiner",), refiner=_ConstantOffset(), blend=1.5, gate=reference)
    with pytest.raises(RefineError, match="strength"):
        run_steps(noisy, "nyu", ("prior",), strength=-0.1, gate=reference)
    with pytest.raises(RefineError, match="unknown dataset"):
        run_steps(noisy, "msra", ("prior",))
