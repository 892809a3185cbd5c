"""Per-frame estimators, in pipeline order: MediaPipe landmarks (:mod:`~tracker.stages.landmarks`),
metric 3D from one view (:mod:`~tracker.stages.lift`), the RGB-D depth lift
(:mod:`~tracker.stages.depth_lift`), V2V-PoseNet on depth (:mod:`~tracker.stages.v2v`), identities
(:mod:`~tracker.stages.identity`); :mod:`~tracker.stages.chirality` tells left from right by geometry."""
