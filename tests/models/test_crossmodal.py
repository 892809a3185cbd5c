"""The cross-modal latent network: shapes with any modality present, the KL / product-of-experts maths
against closed forms, the point-set distances, one training step, and weights-only save / load."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from models.crossmodal import (
    LANDMARK_FEATURES,
    CrossModal,
    CrossModalConfig,
    chamfer,
    crossmodal_loss,
    kl_normal,
    kl_standard,
    product_of_experts,
    sliced_wasserstein,
)
from tracker.core.joints import NUM_JOINTS


def _inputs(b: int, c: CrossModalConfig, n: int = 200, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"landmarks": torch.randn(b, LANDMARK_FEATURES, generator=g), "points": torch.randn(b, n, 3, generator=g)}
    if c.crop:
        out["image"] = torch.rand(b, 3, c.crop, c.crop, generator=g)
    return out


@pytest.mark.parametrize("config", [CrossModalConfig.light(), CrossModalConfig(alignment="kl", crop=0),
                                    CrossModalConfig(alignment="none", latent=16, crop=32)], ids=["light-poe", "kl-landmarks-only", "none"])  # fmt: skip
def test_shapes_and_finiteness_for_rgb_depth_and_both(config):
    torch.manual_seed(0)
    net = CrossModal(config).eval()
    x = _inputs(3, config)
    rgb = {k: v for k, v in x.items() if k != "points"}
    for inputs, keys in ((rgb, {"rgb"}), ({"points": x["points"]}, {"depth"}), (x, {"rgb", "depth", "joint"})):
        out = net(**inputs)
        assert keys <= set(out) and out["pose"].shape == (3, NUM_JOINTS, 3) and out["log_size"].shape == (3,)
        assert out["cloud"].shape == (3, config.cloud_points, 3) and out["z"].shape == (3, config.latent)
        assert all(torch.isfinite(t).all() for k, t in out.items() if torch.is_tensor(t))
    assert "rgb_pose" in net(**x)
    with pytest.raises(ValueError):
        net()
    if config.crop:
        with pytest.raises(ValueError, match="crop"):
            net(landmarks=x["landmarks"])


def test_points_encoder_ignores_point_order():
    net = CrossModal(CrossModalConfig.light()).eval()
    pts = torch.randn(2, 100, 3)
    perm = pts[:, torch.randperm(100)]
    torch.testing.assert_close(net.depth(pts)[0], net.depth(perm)[0])


def test_kl_matches_closed_forms_and_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    lv1, lv2 = torch.randn(4, 5, generator=g) * 0.5, torch.randn(4, 5, generator=g) * 0.5
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu1, (0.5 * lv1).exp()),
                                            torch.distributions.Normal(mu2, (0.5 * lv2).exp())).sum(-1)  # fmt: skip
    torch.testing.assert_close(kl_normal(mu1, lv1, mu2, lv2), ref)
    torch.testing.assert_close(kl_standard(mu1, lv1), kl_normal(mu1, lv1, torch.zeros_like(mu1), torch.zeros_like(lv1)))
    # 1-D by hand: KL(N(1, 4) || N(0, 1)) = 0.5 (4 + 1 - 1 - ln 4)
    assert float(kl_standard(torch.tensor([1.0]), torch.tensor([math_log(4.0)]))) == pytest.approx(0.5 * (4 - math_log(4.0)))
    assert float(kl_normal(mu1, lv1, mu1, lv1).abs().max()) < 1e-6


def math_log(x: float) -> float:
    return float(np.log(x))


def test_product_of_experts_is_precision_weighted():
    mu_a, mu_b = torch.tensor([[2.0]]), torch.tensor([[-1.0]])
    lv_a, lv_b = torch.log(torch.tensor([[1.0]])), torch.log(torch.tensor([[0.5]]))  # precisions 1 and 2
    mu, lv = product_of_experts([mu_a, mu_b], [lv_a, lv_b], prior=False)
    assert float(mu) == pytest.approx((2.0 * 1 + -1.0 * 2) / 3) and float(lv.exp()) == pytest.approx(1 / 3)
    mu, lv = product_of_experts([mu_a, mu_b], [lv_a, lv_b])  # + the N(0, 1) expert
    assert float(mu) == pytest.approx(0.0 / 4) and float(lv.exp()) == pytest.approx(1 / 4)
    same, lv_same = product_of_experts([mu_a, mu_a], [lv_a, lv_a], prior=False)
    assert float(same) == pytest.approx(2.0) and float(lv_same.exp()) == pytest.approx(0.5)


def test_point_set_distances():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 64, 3, generator=g)
    assert float(chamfer(a, a).max()) == 0.0
    assert float(sliced_wasserstein(a, a[:, torch.randperm(64)], generator=g).max()) < 1e-6
    b = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    c = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
    # a -> b: 0 and min(1, sqrt 5) = 1 -> mean 0.5; b -> a: 0 and 2 -> mean 1
    assert float(chamfer(b, c)) == pytest.approx(0.5 + 1.0)
    t = torch.tensor([3.0, 0.0, 0.0])
    sw = float(sliced_wasserstein(a, a + t, projections=4000, generator=g).mean())
    assert sw == pytest.approx(3.0 * 0.5, rel=0.05)  # E|u_x| over unit directions = 1/2
    with pytest.raises(ValueError):
        sliced_wasserstein(a, a[:, :10])


@pytest.mark.parametrize("alignment", ["none", "kl", "poe"])
def test_one_training_step_lowers_the_loss(alignment):
    torch.manual_seed(0)
    c = CrossModalConfig(alignment=alignment, latent=16, crop=32, image_channels=(8, 16), hidden=64,
                         point_channels=(16, 32), cloud_points=64)  # fmt: skip
    net = CrossModal(c)
    x = _inputs(8, c)
    pose, log_size = torch.randn(8, NUM_JOINTS, 3) * 0.5, torch.full((8,), float(np.log(85.0)))
    cloud = torch.randn(8, 64, 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same latent sample and projections before and after
        return crossmodal_loss(net(**x), pose, log_size, cloud, alignment, generator=torch.Generator().manual_seed(3))[0]

    net.eval()  # batch norm in eval: the comparison is of the weights alone
    before = loss()
    net.train()
    opt.zero_grad()
    crossmodal_loss(net(**x), pose, log_size, cloud, alignment)[0].backward()
    opt.step()
    net.eval()
    with torch.no_grad():
        assert float(loss()) < float(before)


def test_save_and_load_with_weights_only():
    net = CrossModal(CrossModalConfig.light()).eval()
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "config": net.config.to_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    cfg = ck["config"]
    cfg["image_channels"], cfg["point_channels"] = tuple(cfg["image_channels"]), tuple(cfg["point_channels"])
    again = CrossModal(CrossModalConfig(**cfg)).eval()
    again.load_state_dict(ck["model"])
    x = _inputs(2, net.config)
    torch.testing.assert_close(again(**x)["pose"], net(**x)["pose"])


def test_paired_samples_from_a_rendered_clip_with_the_real_landmarker():
    """One generated clip through LiteRT MediaPipe: every sample's shapes, and targets that rebuild the
    true joints (pose x size + palm centre)."""
    from models.crossmodal_data import CrossModalDataConfig, hand_targets, make_clip_samples
    from tracker.stages.landmarks import LandmarkConfig
    from tracker.stages.litert import LiteRTHands

    cfg = CrossModalDataConfig(crop=48, points=128, cloud_points=64, frames=4)
    samples, missed = make_clip_samples(4, lambda: LiteRTHands(LandmarkConfig(backend="litert", max_hands=1)), cfg)
    assert len(samples) + missed == 4 and samples
    for s in samples:
        assert s["image"].shape == (48, 48, 3) and s["image"].dtype == np.uint8
        assert s["landmarks"].shape == (LANDMARK_FEATURES,) and np.isfinite(s["landmarks"]).all()
        assert s["points"].shape == (128, 3) and s["cloud"].shape == (64, 3)
        assert np.abs(s["points"]).max() <= 1.26 and np.abs(s["cloud"]).max() <= 1.26  # inside the 250 mm cube
        pose, log_size, root = hand_targets(s["joints_cam"].astype(np.float64))
        np.testing.assert_allclose(pose, s["pose"], atol=1e-5)
        np.testing.assert_allclose(s["pose"] * np.exp(s["log_size"]) + root, s["joints_cam"], atol=1e-2)
        assert 40 < np.exp(s["log_size"]) < 140  # a hand size in mm


def test_residual_pose_starts_from_mediapipes_landmarks():
    """``mediapipe_pose`` normalises the world landmarks like the training targets; with ``residual``
    the decoded pose is MediaPipe's plus the decoder's correction."""
    from models.crossmodal import mediapipe_pose
    from models.crossmodal_data import hand_targets

    rng = np.random.default_rng(0)
    local_mm = rng.normal(0, 40, (2, NUM_JOINTS, 3))
    lm = np.concatenate([rng.random((2, 42)), local_mm.reshape(2, -1) / 1000.0, rng.random((2, 2))], axis=1)
    got = mediapipe_pose(torch.tensor(lm, dtype=torch.float64)).numpy()
    for k in range(2):
        np.testing.assert_allclose(got[k], hand_targets(local_mm[k])[0], atol=1e-9)
    c = CrossModalConfig(latent=8, crop=0, hidden=32, point_channels=(8,), cloud_points=16)
    torch.manual_seed(0)
    with_res, without = CrossModal(c).eval(), CrossModal(dataclasses_replace(c, residual=False)).eval()
    without.load_state_dict(with_res.state_dict())
    x = torch.tensor(lm, dtype=torch.float32)
    torch.testing.assert_close(with_res(landmarks=x)["pose"], without(landmarks=x)["pose"] + mediapipe_pose(x))


def dataclasses_replace(obj, **kw):  # noqa: ANN001, ANN201
    import dataclasses

    return dataclasses.replace(obj, **kw)
