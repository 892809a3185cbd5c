"""The ChArUco board: its definition, a printable image of it, and finding its corners in images.

Board frame: origin at the board's outer top-left corner, x along the squares across, y down, z into
the board, millimetres. Pixels in OpenCV's convention (integer coordinates at pixel centres, as
``cv2.calibrateCamera`` and the aniposelib files use).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tracker.core.errors import CalibrationError

__all__ = ["BoardConfig", "BoardDetection", "BoardDetector", "detect_views", "detect_framesets"]


@dataclass(frozen=True)
class BoardConfig:
    """A ChArUco board (OpenCV >= 4.6 pattern).

    Attributes:
        squares_x, squares_y: chessboard squares across and down (``7x5`` has 6 x 4 = 24 inner corners).
        square_mm: side of a chessboard square in mm, as printed (measure it).
        marker_mm: side of an ArUco marker in mm (smaller than ``square_mm``).
        dictionary: an OpenCV predefined dictionary name (``"DICT_4X4_50"``, ``"DICT_5X5_100"``, ...).

    Board frame: origin at the board's outer top-left corner, x along the squares across, y down,
    z into the board (mm); corner ``i`` of OpenCV's numbering is :meth:`corners_mm` ``[i]``.

    Raises:
        CalibrationError: (a ``ValueError``) fewer than 2x2 squares, a marker not smaller than a
            square, an unknown dictionary or one with fewer markers than the board needs.
    """

    squares_x: int = 7
    squares_y: int = 5
    square_mm: float = 30.0
    marker_mm: float = 22.0
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise CalibrationError(f"a ChArUco board needs at least 2x2 squares, got {self.squares_x}x{self.squares_y}")
        if not 0 < self.marker_mm < self.square_mm:
            raise CalibrationError(f"marker side must be in (0, square side), got marker {self.marker_mm} mm, "
                                   f"square {self.square_mm} mm")  # fmt: skip
        if not (self.dictionary.startswith("DICT_") and hasattr(cv2.aruco, self.dictionary)):
            names = sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))
            raise CalibrationError(f"unknown ArUco dictionary {self.dictionary!r}; use one of {', '.join(names)}")
        markers = (self.squares_x * self.squares_y) // 2
        size = len(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList)
        if markers > size:
            raise CalibrationError(f"a {self.squares_x}x{self.squares_y} board needs {markers} markers but "
                                   f"{self.dictionary} has {size}: choose a larger dictionary")  # fmt: skip

    @property
    def num_corners(self) -> int:
        """Inner chessboard corners, the points calibration uses."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    def board(self) -> cv2.aruco.CharucoBoard:
        """The OpenCV board object (lengths in mm)."""
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), float(self.square_mm),
                                      float(self.marker_mm), dictionary)  # fmt: skip

    def corners_mm(self) -> np.ndarray:
        """``(num_corners, 3)`` float64 inner corners in the board frame, mm (z = 0)."""
        return np.asarray(self.board().getChessboardCorners(), dtype=np.float64).reshape(-1, 3)

    def image(self, pixels_per_mm: float = 300 / 25.4, margin_mm: float = 10.0) -> np.ndarray:
        """A printable greyscale uint8 image of the board: ``pixels_per_mm`` (300 dpi by default)
        and a white margin of ``margin_mm`` around it. Print at 100 % and check ``square_mm``."""
        margin = int(round(margin_mm * pixels_per_mm))
        w = int(round(self.squares_x * self.square_mm * pixels_per_mm)) + 2 * margin
        h = int(round(self.squares_y * self.square_mm * pixels_per_mm)) + 2 * margin
        return self.board().generateImage((w, h), marginSize=margin, borderBits=1)

    def describe(self) -> str:
        """One line naming the board, e.g. ``charuco 7x5 square 30 mm marker 22 mm DICT_4X4_50``."""
        return (f"charuco {self.squares_x}x{self.squares_y} square {self.square_mm:g} mm "
                f"marker {self.marker_mm:g} mm {self.dictionary}")  # fmt: skip


@dataclass(frozen=True)
class BoardDetection:
    """ChArUco corners found in one image.

    Attributes:
        ids: ``(K,)`` int corner indices into :meth:`BoardConfig.corners_mm`.
        corners_px: ``(K, 2)`` float64 pixel positions (OpenCV convention).

    Raises:
        CalibrationError: (a ``ValueError``) the shapes do not match.
    """

    ids: np.ndarray
    corners_px: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.ids) != 1 or np.shape(self.corners_px) != (len(self.ids), 2):
            raise CalibrationError(f"a detection needs ids (K,) and corners (K, 2), got {np.shape(self.ids)} "
                                   f"and {np.shape(self.corners_px)}")  # fmt: skip


class BoardDetector:
    """Finds ChArUco corners in an image: ``detector(image) -> BoardDetection | None``
    (OpenCV 5 ``cv2.aruco.CharucoDetector``).

    Args:
        board: the board to look for.
        min_corners: fewer corners than this (or all on one line) count as not seen.

    Raises:
        CalibrationError: (a ``ValueError``) ``min_corners < 4``.
    """

    def __init__(self, board: BoardConfig, min_corners: int = 6) -> None:
        if min_corners < 4:
            raise CalibrationError(f"a board pose needs at least 4 corners, got min_corners={min_corners}")
        self.board = board
        self.min_corners = min_corners
        self._board = board.board()
        self._detector = cv2.aruco.CharucoDetector(self._board)

    def __call__(self, image: np.ndarray) -> BoardDetection | None:
        """Detect the board in an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            return None
        ids = ids.reshape(-1).astype(np.int32)
        if self._board.checkCharucoCornersCollinear(ids):
            return None
        return BoardDetection(ids, corners.reshape(-1, 2).astype(np.float64))


def detect_views(
    images: Sequence[Iterable[np.ndarray]], detector: BoardDetector
) -> tuple[list[list[BoardDetection | None]], list[tuple[int, int]]]:
    """Detect the board in synchronised image sequences, one per camera, read in lockstep.

    Args:
        images: per camera an iterable of images (a list, a generator reading a video, ...);
            reading stops when the shortest ends.
        detector: the board detector.

    Returns:
        ``detections[c][f]`` (None where not seen) and each camera's image size ``(width, height)``.

    Raises:
        CalibrationError: a camera gave no image, or its image size changed.
    """
    return detect_framesets(zip(*images), len(images), detector)


def detect_framesets(
    framesets: Iterable[Sequence[np.ndarray]], n_cams: int, detector: BoardDetector
) -> tuple[list[list[BoardDetection | None]], list[tuple[int, int]]]:
    """:func:`detect_views` on synchronised frame sets (one image per camera each), kept one at a
    time (a live camera or a long video is never held in memory).

    Raises:
        CalibrationError: a camera gave no image, or its image size changed.
    """
    detections: list[list[BoardDetection | None]] = [[] for _ in range(n_cams)]
    sizes: list[tuple[int, int] | None] = [None] * n_cams
    for frame in framesets:
        for c, image in enumerate(frame):
            size = (int(image.shape[1]), int(image.shape[0]))
            if sizes[c] is None:
                sizes[c] = size
            elif sizes[c] != size:
                raise CalibrationError(f"camera {c}: image size changed from {sizes[c]} to {size}; "
                                       "calibrate at one resolution")  # fmt: skip
            detections[c].append(detector(image))
    if any(s is None for s in sizes):
        missing = [c for c, s in enumerate(sizes) if s is None]
        raise CalibrationError(f"no images from camera(s) {missing}: every camera needs a frame sequence")
    return detections, [s for s in sizes if s is not None]
