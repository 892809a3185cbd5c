"""Ray-casting kernels of the hand renderer: intersection, z-buffer, shading and the sensor model.

The renderer (:func:`models.render.render`) draws hands made of convex primitives (round cones and a
rounded slab, :mod:`models.hand_surface`) by casting one ray per pixel centre:

* :mod:`kernels.render.intersect`: the primitives and their exact ray intersections, normals and
  signed distances; the precomputed rays from the camera centre; per-ray queries (:func:`cast_rays`,
  :func:`joint_visibility`);
* :mod:`kernels.render.zbuffer`: conservative screen bounds (:func:`screen_bounds`) and the z-buffer
  (:func:`zbuffer`: depth, primitive index and normal per pixel);
* :mod:`kernels.render.shading`: skin creases (:func:`crease_map`) and shading with contact shadows and
  antialiased edges (:func:`shade`), with the material table (``MAT_*``) and parameter (``P_*``) layouts;
* :mod:`kernels.render.sensor`: the depth camera's readings (:func:`finish`, :func:`noisy_depth`,
  :func:`depth_edges`).

The geometry arguments of the kernels are ``minv`` ``(N, 3, 3)``, ``org`` ``(N, 3)``, ``la``, ``lb``
``(N, 3)``, ``ra``, ``rb`` ``(N,)`` float64 and ``kind`` ``(N,)`` int8 (see
:func:`models.hand_surface.pack` and :mod:`kernels.render.intersect`).

Conventions (:mod:`tracker.core.structures`): camera frame mm (x right, y down, z forward), pinhole
``u = fx * X / Z + cx``; pixel ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``; the ray of
image point ``(u, v)`` is ``((u - cx) / fx, (v - cy) / fy, 1)`` from the camera centre, so the ray
parameter of a hit is its depth Z in mm. Only hits with ``Z > NEAR_MM`` count.

Parallel kernels split the image by rows (``prange``); each row is written by one iteration only,
so results are race-free and identical whatever the number of threads.

Every kernel is ``@njit(cache=True)``: compiled on first use and kept in ``__pycache__``. Numba
checks a cached kernel against its own file only, so after editing a kernel that others call from
another module of this package (e.g. :mod:`intersect`, called by :mod:`zbuffer` and :mod:`shading`),
delete ``kernels/render/__pycache__`` to recompile its callers.
"""

import sys

from kernels.render.intersect import *  # noqa: F403 - the package exports its modules' __all__
from kernels.render.sensor import *  # noqa: F403
from kernels.render.shading import *  # noqa: F403
from kernels.render.zbuffer import *  # noqa: F403

# (the modules by their full names: ``zbuffer`` in this namespace is the function of that name)
__all__ = [name for part in ("intersect", "zbuffer", "shading", "sensor")
           for name in sys.modules[f"kernels.render.{part}"].__all__]
