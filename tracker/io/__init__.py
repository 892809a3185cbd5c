"""Reading and writing what comes from outside: ``--source`` strings -> devices (:mod:`~tracker.io.sources`),
intrinsics files (:mod:`~tracker.io.intrinsics`), aniposelib-layout calibrations
(:mod:`~tracker.io.calibration`), rig files (:mod:`~tracker.io.rig_file`), 2D keypoint files
(:mod:`~tracker.io.keypoints`) and the TOML writer they share (:mod:`~tracker.io.toml_writer`)."""
