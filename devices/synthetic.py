"""A live source of synthetic hands: the data engine (:mod:`models.synthetic`) as a device.

Streams a drawn :class:`models.synthetic.Scene` frame by frame: one RGB-D view, or a rig of N
views delivered together as one :class:`tracker.core.structures.FrameSet`. Every frame carries its
:class:`tracker.core.structures.GroundTruth` (3D joints in that camera's frame mm, 2D px, visibility,
handedness, action), so the whole pipeline can be run and scored without a camera.
"""

from __future__ import annotations

import logging
from tracker.core.structures import FrameSet

from devices._common import DeviceBase, Pacer

__all__ = ["SyntheticDevice"]

log = logging.getLogger(__name__)


class SyntheticDevice(DeviceBase):
    """Renders a synthetic scene on demand.

    Args:
        seed: seed of the scene (same seed and config: the same frames, bit for bit).
        config: a :class:`models.synthetic.SceneConfig` (default: one RGB-D view, 60 frames).
        render_config: a :class:`models.render.RenderConfig` (noise, supersampling).
        realtime: release frames at the scene's frame rate (like a camera) instead of as fast as
            they render; ``live`` follows it, so the loop treats a realtime source as a camera
            (latest frame wins) and a fast one as a recording (every frame).
        loop: start again at frame 0 after the last frame instead of ending the stream.
        with_depth: attach the depth image (False: RGB only, like a webcam).
        view: render only this camera of a rig scene: each read gives a frame set of one frame,
            bit-identical to that view in the whole rig's frame set (one camera of a synthetic
            rig, e.g. for :class:`devices.rig.RigDevice`); None renders every view.

    Raises:
        ValueError: ``view`` outside the scene's cameras.
    """

    def __init__(self, seed: int = 0, config: object | None = None, render_config: object | None = None,
                 realtime: bool = False, loop: bool = False, with_depth: bool = True, view: int | None = None) -> None:
        from models.render import RenderConfig
        from models.synthetic import SceneConfig

        self.seed = int(seed)
        self.config = config if config is not None else SceneConfig()
        self.render_config = render_config if render_config is not None else RenderConfig()
        self.realtime = realtime
        self.live = realtime
        self.loop = loop
        self.with_depth = with_depth
        views = 1 if self.config.layout == "single" else self.config.num_views
        if view is not None and not 0 <= view < views:
            raise ValueError(f"view {view} outside the scene's {views} camera(s) (0..{views - 1})")
        self.view = view
        self.name = f"synthetic:{self.config.layout}:{self.seed}" + ("" if view is None else f"@{view}")
        self.scene = None
        self._t = 0
        self._pass = 0
        self._pacer = Pacer()

    @property
    def frame_count(self) -> int:
        """Frames in one pass of the scene."""
        return self.config.num_frames

    def open(self) -> None:
        """Draw the scene (cheap: parameters and joints only; frames render in :meth:`read`)."""
        from models.synthetic import sample_scene

        if self.scene is None:
            self.scene = sample_scene(self.seed, self.config)
            log.info("%s: %d view(s), %d hand(s), %d frames at %g FPS", self.name, len(self.scene.cameras),
                     len(self.scene.hands), len(self.scene), self.scene.fps)
        self._t = 0
        self._pass = 0
        self._pacer = Pacer()

    def read(self) -> FrameSet | None:
        """The next frame set (all views, with ground truth), or None at the end of the scene.

        Raises:
            RuntimeError: the device is not open.
        """
        from models.synthetic import render_frame, render_frameset

        if self.scene is None:
            raise self._not_open()
        if self._t >= len(self.scene):
            if not self.loop:
                return None
            self._t = 0
            self._pass += 1
        t = self._t
        self._t += 1
        stamp = (self._pass * len(self.scene) + t) / self.scene.fps
        if self.realtime:
            self._pacer.wait(stamp)
        # looping keeps frame indices and timestamps increasing, like a camera's
        index = self._pass * len(self.scene) + t
        if self.view is None:
            return render_frameset(self.scene, t, self.render_config, self.with_depth, timestamp=stamp, index=index)
        return FrameSet.single(render_frame(self.scene, t, self.view, self.render_config, self.with_depth, stamp, index))

    def close(self) -> None:
        """Release the scene (safe to call twice)."""
        self.scene = None

