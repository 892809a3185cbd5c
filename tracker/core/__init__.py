"""The leaf of handtrack that every package may use: data structures, the joint tables, camera
geometry, metrics and the exceptions. Imports nothing of the project.

* :mod:`tracker.core.structures`: cameras (with their geometry: project, unproject, world <-> camera),
  frames, frame sets, hand poses, results.
* :mod:`tracker.core.joints`: the 21-joint order (defined once) and the tables of other layouts.
* :mod:`tracker.core.errors`: :class:`HandtrackError` and its families.
* :mod:`tracker.core.metrics`: joint errors, PCK / success rates, Procrustes alignment.
* :mod:`tracker.core.data_root`: where the shared data sets live.
"""
