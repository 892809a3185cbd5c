"""Multi-camera rigs: per-view hands -> one world-frame hand.

* :mod:`~tracker.fusion.triangulate`: weighted DLT / RANSAC over views (Numba kernels), cross-view hand
  association, :class:`~tracker.fusion.triangulate.RigTriangulator`;
* :mod:`~tracker.fusion.learned`: the HaMuCo-style fusion network as a stage;
* :mod:`~tracker.fusion.rig`: the rig stages (MediaPipe per view, fusion anchored to the reference
  camera, world joints last);
* :mod:`~tracker.fusion.triangulate_cli`: the offline triangulator for keypoint files.
"""
