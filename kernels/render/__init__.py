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

from kernels.render.intersect import (
    KIND_CONE,
    KIND_SLAB,
    NEAR_MM,
    cast_rays,
    hit_t,
    joint_visibility,
    normal_at,
    primary_hit,
    primary_normal,
    primary_setup,
    signed_distance,
)
from kernels.render.sensor import depth_edges, finish, noisy_depth
from kernels.render.shading import (
    MAT_ALBEDO,
    MAT_COLS,
    MAT_NAIL,
    MAT_SKIN,
    MAT_TEX_A,
    MAT_TEX_B,
    MAT_VOLAR,
    P_AMBIENT,
    P_COLS,
    P_CREASE,
    P_DIFFUSE,
    P_DORSAL,
    P_HALF,
    P_LIGHT,
    P_NAIL,
    P_SHADOW,
    P_SHADOW_MM,
    P_SHININESS,
    P_SPEC_CUT,
    P_SPECULAR,
    crease_map,
    shade,
)
from kernels.render.zbuffer import screen_bounds, zbuffer

__all__ = [
    "NEAR_MM",
    "KIND_CONE",
    "KIND_SLAB",
    "MAT_ALBEDO",
    "MAT_SKIN",
    "MAT_VOLAR",
    "MAT_TEX_A",
    "MAT_TEX_B",
    "MAT_NAIL",
    "MAT_COLS",
    "P_LIGHT",
    "P_AMBIENT",
    "P_DIFFUSE",
    "P_SPECULAR",
    "P_SHININESS",
    "P_DORSAL",
    "P_NAIL",
    "P_CREASE",
    "P_SHADOW",
    "P_SHADOW_MM",
    "P_SPEC_CUT",
    "P_HALF",
    "P_COLS",
    "hit_t",
    "signed_distance",
    "normal_at",
    "primary_setup",
    "primary_hit",
    "primary_normal",
    "screen_bounds",
    "zbuffer",
    "crease_map",
    "shade",
    "finish",
    "cast_rays",
    "joint_visibility",
    "depth_edges",
    "noisy_depth",
]
