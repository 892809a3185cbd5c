#!/usr/bin/env python
"""Make (or check) the committed synthetic evaluation set under ``assets/synth_eval/``.

Two files, both drawn by the data engine (:mod:`models.synthetic`) from fixed seeds that no
training script uses (training draws seeds below :data:`EVAL_SEED_BASE`):

* ``single_view.npz``: RGB-D sequences as a RealSense user would record them (depth with
  sensor-like noise, :data:`models.synthetic.SENSOR_LIKE`), one hand each, every action:
  ``depth`` (N, H, W) uint16 mm (0 = no reading), ``joints_3d`` (N, 21, 3) mm camera frame,
  ``joints_2d`` (N, 21, 2) px, ``visible`` (N, 21), ``K`` (N, 3, 3), ``sequence`` / ``frame``
  (N,) ids, ``action`` and ``handedness`` (N,) strings, ``pose`` (N, 26) and ``shape`` (N, 18)
  hand-model parameters. RGB images are not stored (they would dominate the size); render any
  frame again with ``render_view(sample_scene(seed, config), t, 0, SENSOR_LIKE)``.
* ``multi_view.npz``: rig sequences (desk and ring layouts, 2-8 cameras, some with two hands),
  labels only: per camera ``K`` (C, 3, 3), ``R`` (C, 3, 3), ``t`` (C, 3) world -> camera mm and
  ``cam_offset`` (S+1,) (cameras of sequence s are ``cam_offset[s]:cam_offset[s+1]``); per frame
  and hand ``joints_world`` (N, 2, 21, 3) mm (NaN for an absent second hand), per frame, view
  and hand ``joints_2d`` (N, 8, 2, 21, 2) and ``visible`` (N, 8, 2, 21) (unused views/hands NaN /
  False), plus ids, actions and handedness.

``seeds.json`` lists every sequence's seed and scene config. Regenerating is deterministic:
``--check`` rebuilds both files in a temporary folder and compares every array bit for bit.

    python scripts/make_synth_eval.py            # (re)write assets/synth_eval/
    python scripts/make_synth_eval.py --check    # exit 1 unless a rebuild is bit-identical
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.motion import ACTIONS  # noqa: E402
from models.synthetic import SENSOR_LIKE, SceneConfig, render_view, sample_scene  # noqa: E402

OUT = _REPO / "assets" / "synth_eval"
#: Evaluation seeds start here; training scripts must draw theirs below it.
EVAL_SEED_BASE = 1_000_000
SINGLE_FRAMES = 12
MULTI_FRAMES = 8
MAX_VIEWS = 8
MAX_HANDS = 2


def single_view_configs() -> list[tuple[int, SceneConfig]]:
    """(seed, config) of the single-view sequences: two per action."""
    out = []
    for k, action in enumerate(ACTIONS * 2):
        out.append((EVAL_SEED_BASE + k, SceneConfig(num_frames=SINGLE_FRAMES, layout="single", actions=(action,))))
    return out


def multi_view_configs() -> list[tuple[int, SceneConfig]]:
    """(seed, config) of the rig sequences: desk and ring layouts with 2, 3, 4 and 8 cameras."""
    out = []
    k = 0
    for layout in ("desk", "ring"):
        for views in (2, 3, 4, 8):
            for hands in (1, 2):
                out.append((EVAL_SEED_BASE + 500 + k, SceneConfig(num_frames=MULTI_FRAMES, layout=layout,
                                                                  num_views=views, num_hands=hands)))
                k += 1
    return out


def make_single_view() -> dict[str, np.ndarray]:
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("depth", "joints_3d", "joints_2d", "visible", "K", "sequence",
                                                         "frame", "action", "handedness", "pose", "shape")}
    for s, (seed, cfg) in enumerate(single_view_configs()):
        scene = sample_scene(seed, cfg)
        hand = scene.hands[0]
        for t in range(len(scene)):
            r = render_view(scene, t, 0, SENSOR_LIKE)
            cols["depth"].append(r.depth)
            cols["joints_3d"].append(r.joints_cam[0])
            cols["joints_2d"].append(r.joints_2d[0])
            cols["visible"].append(r.visible[0])
            cols["K"].append(scene.cameras[0].intrinsics.K)
            cols["sequence"].append(np.int32(s))
            cols["frame"].append(np.int32(t))
            cols["action"].append(np.array(hand.motion.actions[t]))
            cols["handedness"].append(np.array(hand.handedness))
            cols["pose"].append(hand.motion.pose_vectors()[t])
            cols["shape"].append(hand.shape)
    return {k: np.stack(v) for k, v in cols.items()}


def make_multi_view() -> dict[str, np.ndarray]:
    ks, rs, ts, offsets = [], [], [], [0]
    frames: dict[str, list[np.ndarray]] = {k: [] for k in ("joints_world", "joints_2d", "visible", "sequence",
                                                          "frame", "num_views", "num_hands", "action", "handedness")}
    for s, (seed, cfg) in enumerate(multi_view_configs()):
        scene = sample_scene(seed, cfg)
        for cam in scene.cameras:
            ks.append(cam.intrinsics.K)
            rs.append(cam.extrinsics.R)
            ts.append(cam.extrinsics.t)
        offsets.append(offsets[-1] + len(scene.cameras))
        for t in range(len(scene)):
            jw = np.full((MAX_HANDS, 21, 3), np.nan)
            j2 = np.full((MAX_VIEWS, MAX_HANDS, 21, 2), np.nan)
            vis = np.zeros((MAX_VIEWS, MAX_HANDS, 21), bool)
            nh = len(scene.hands)
            jw[:nh] = scene.joints_world(t)
            for v in range(len(scene.cameras)):
                r = render_view(scene, t, v, SENSOR_LIKE)
                j2[v, :nh] = r.joints_2d
                vis[v, :nh] = r.visible
            frames["joints_world"].append(jw)
            frames["joints_2d"].append(j2)
            frames["visible"].append(vis)
            frames["sequence"].append(np.int32(s))
            frames["frame"].append(np.int32(t))
            frames["num_views"].append(np.int32(len(scene.cameras)))
            frames["num_hands"].append(np.int32(nh))
            frames["action"].append(np.array([h.motion.actions[t] for h in scene.hands] + [""] * (MAX_HANDS - nh)))
            frames["handedness"].append(np.array([h.handedness for h in scene.hands] + [""] * (MAX_HANDS - nh)))
    out = {k: np.stack(v) for k, v in frames.items()}
    out.update(K=np.stack(ks), R=np.stack(rs), t=np.stack(ts), cam_offset=np.array(offsets, np.int32))
    return out


def seeds_manifest() -> dict[str, object]:
    def entry(seed: int, cfg: SceneConfig) -> dict[str, object]:
        return {"seed": seed, "config": dataclasses.asdict(cfg)}

    return {"single_view": [entry(*c) for c in single_view_configs()],
            "multi_view": [entry(*c) for c in multi_view_configs()],
            "render": dataclasses.asdict(SENSOR_LIKE)}


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    np.savez_compressed(out / "single_view.npz", **make_single_view())
    np.savez_compressed(out / "multi_view.npz", **make_multi_view())
    (out / "seeds.json").write_text(json.dumps(seeds_manifest(), indent=1) + "\n")
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(out.glob("*")))
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s: {sizes}")


def check(reference: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        bad = []
        for name in ("single_view.npz", "multi_view.npz"):
            with np.load(reference / name) as a, np.load(Path(tmp) / name) as b:
                if set(a.files) != set(b.files):
                    bad.append(f"{name}: keys differ")
                for key in a.files:
                    x, y = a[key], b[key]
                    same = x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
                    if not same:
                        bad.append(f"{name}:{key}")
        if (reference / "seeds.json").read_text() != (Path(tmp) / "seeds.json").read_text():
            bad.append("seeds.json")
    if bad:
        print("NOT bit-identical: " + ", ".join(bad))
        return 1
    print("bit-identical: every array of single_view.npz and multi_view.npz, and seeds.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with --out")
    args = ap.parse_args(argv)
    if args.check:
        return check(args.out)
    write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
