"""The committed synthetic evaluation set is what scripts/make_synth_eval.py draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.synthetic import SENSOR_LIKE, SceneConfig, render_view, sample_scene

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "assets" / "synth_eval"


def test_single_view_set_labels_and_a_regenerated_frame() -> None:
    with np.load(EVAL / "single_view.npz") as d:
        data = {k: d[k] for k in d.files}
    n = len(data["depth"])
    assert data["depth"].dtype == np.uint16 and data["depth"].shape[1:] == (480, 640)
    for key in ("joints_3d", "joints_2d", "visible", "K", "pose", "shape", "action", "handedness"):
        assert len(data[key]) == n, key
    # 2D labels are the projection of the 3D labels with each frame's K
    uvw = np.einsum("nij,nkj->nki", data["K"], data["joints_3d"])
    assert np.allclose(uvw[..., :2] / uvw[..., 2:], data["joints_2d"], atol=1e-6)
    # redraw frame 5 of the first sequence: same labels, same depth (a last-bit difference in
    # the float maths of another CPU may move a pixel across a millimetre step, rarely)
    seeds = json.loads((EVAL / "seeds.json").read_text())["single_view"]
    cfg = seeds[0]["config"]
    scene = sample_scene(seeds[0]["seed"], SceneConfig(num_frames=cfg["num_frames"], layout=cfg["layout"],
                                                       actions=tuple(cfg["actions"])))
    r = render_view(scene, 5, 0, SENSOR_LIKE)
    i = int(np.flatnonzero((data["sequence"] == 0) & (data["frame"] == 5))[0])
    assert np.allclose(r.joints_cam[0], data["joints_3d"][i], atol=1e-6)
    assert np.array_equal(r.visible[0], data["visible"][i])
    differ = r.depth.astype(np.int32) != data["depth"][i]
    assert differ.mean() < 1e-3


def test_multi_view_set_is_consistent() -> None:
    with np.load(EVAL / "multi_view.npz") as d:
        data = {k: d[k] for k in d.files}
    off = data["cam_offset"]
    for n in range(0, len(data["sequence"]), 7):
        s, views = int(data["sequence"][n]), int(data["num_views"][n])
        assert off[s + 1] - off[s] == views
        for v in range(views):
            k, r, t = data["K"][off[s] + v], data["R"][off[s] + v], data["t"][off[s] + v]
            cam = data["joints_world"][n, 0] @ r.T + t
            uv = cam[:, :2] / cam[:, 2:] * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]
            assert np.allclose(uv, data["joints_2d"][n, v, 0], atol=1e-6)
        assert np.isnan(data["joints_2d"][n, views:]).all()
