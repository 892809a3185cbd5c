"""Small rotation helpers shared by the metric lift (:mod:`tracker.stages.lift`) and the models."""

from __future__ import annotations

import numpy as np

__all__ = ["rotation_to_ray"]


def rotation_to_ray(direction: np.ndarray) -> np.ndarray:
    """Rotation ``(3, 3)`` taking the optical axis +z to the unit vector of ``direction`` (3,), camera
    frame (the smallest rotation: about ``z x direction``). A point ``p`` in the ray's frame is
    ``R @ p`` in the camera frame; ``R.T @ p`` goes back."""
    ray = np.asarray(direction, dtype=np.float64).reshape(3)
    ray = ray / np.linalg.norm(ray)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, ray)
    s = np.linalg.norm(axis)
    if s < 1e-12:
        return np.eye(3)
    axis /= s
    c = float(ray @ z)
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)
