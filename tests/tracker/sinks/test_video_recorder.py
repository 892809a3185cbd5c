"""Tests of tracker.sinks.video: recording frames to .mp4/.avi/PNGs, and the path check made before models load."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.core.errors import OutputError
from tracker.sinks.video import VideoRecorder, check_video_path

SIZE = (160, 96)  # (W, H) of the test frames; multiples of 16 so no codec pads them


def frames(n: int) -> list[np.ndarray]:
    """``n`` RGB frames, each a dark background with a coloured square that moves 16 px per frame."""
    w, h = SIZE
    out = []
    for i in range(n):
        rgb = np.full((h, w, 3), 30, np.uint8)
        rgb[24:72, 16 + 16 * i : 64 + 16 * i] = (220, 60, 40)
        out.append(rgb)
    return out


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, RGB, through OpenCV's reader."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def writes_despite_permissions(folder: Path) -> bool:
    """True where this process can write into ``folder`` although its mode forbids it (root, some
    file systems): there a read-only folder cannot be made, and what is checked is what really
    happens (a probe file is written and removed)."""
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


# ------------------------------------------------------------------------------------ recording


@pytest.mark.parametrize(("suffix", "max_error"), [(".mp4", 12.0), (".avi", 12.0)])
def test_video_file_plays_back_every_frame(tmp_path: Path, suffix: str, max_error: float) -> None:
    """5 frames in, 5 frames of the same size out of OpenCV's reader, each within a mean 12 grey
    levels (of 255) of what was written (both codecs are lossy), and the square where it was."""
    written = frames(5)
    path = tmp_path / "sub" / f"view{suffix}"  # the missing folder is created
    with VideoRecorder(path, fps=25.0) as rec:
        assert rec.is_video
        for f in written:
            rec.write(f)
    rec.close()  # idempotent
    assert rec.frames_written == 5
    back = read_video(path)
    assert len(back) == 5
    for original, decoded in zip(written, back, strict=True):
        assert decoded.shape == original.shape
        assert np.abs(decoded.astype(float) - original).mean() < max_error
    assert np.abs(back[3][48, 16 + 16 * 3 + 24].astype(float) - (220, 60, 40)).max() < 40  # centre of the square


def test_png_frames_are_lossless_and_numbered(tmp_path: Path) -> None:
    written = frames(3)
    out = tmp_path / "pngs"
    with VideoRecorder(out) as rec:
        assert not rec.is_video
        for f in written:
            rec.write(f[..., :3])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    back = cv2.cvtColor(cv2.imread(str(out / names[1])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, written[1])  # lossless, RGB order kept

    with VideoRecorder(tmp_path / "shots" / "take.png") as rec:
        rec.write(np.dstack([written[0], np.full(written[0].shape[:2], 255, np.uint8)]))  # alpha dropped
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "shots" / "take_000000.png"))[..., ::-1], written[0])


def test_recorder_misuse(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"unsupported extension \.gif: use \.mp4, \.avi, \.png or a folder"):
        VideoRecorder(tmp_path / "view.gif")
    with pytest.raises(ValueError, match="fps"):
        VideoRecorder(tmp_path / "view.mp4", fps=0)
    rec = VideoRecorder(tmp_path / "view.mp4")
    with pytest.raises(ValueError, match="uint8"):
        rec.write(np.zeros((10, 10), np.uint8))
    rec.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="size changed"):
        rec.write(np.zeros((32, 64, 3), np.uint8))
    rec.close()
    with pytest.raises(RuntimeError, match="closed"):
        rec.write(np.zeros((64, 64, 3), np.uint8))


# ----------------------------------------------------------------------------------- path check


@pytest.mark.parametrize("name", ["view.mp4", "view.AVI", "shot.png", "frames", "a/b/c/view.mp4"])
def test_good_paths_pass_without_creating_anything(tmp_path: Path, name: str) -> None:
    check_video_path(tmp_path / name)
    check_video_path(str(tmp_path / name))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".mkv", ".gif", ".mov", ".jpg"])
def test_unsupported_extension_is_named(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(OutputError) as info:
        check_video_path(tmp_path / f"view{suffix}")
    message = str(info.value)
    assert f"unsupported extension {suffix}: use .mp4, .avi, .png or a folder" in message
    assert "codec" not in message.lower()


def test_read_only_folder_is_refused_before_writing(tmp_path: Path) -> None:
    """A folder with mode 0o500: the check and the recorder both say "folder ... is not writable",
    for a file in it and for a folder that would have to be made in it; never a codec.

    Run as root (or on a file system that ignores modes) the folder stays writable: only the
    assertions that it is refused are skipped there, and recording into it must then work."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if writes_despite_permissions(locked):
            check_video_path(locked / "view.mp4")  # writable after all: no false alarm
            with VideoRecorder(locked / "view.mp4") as rec:
                rec.write(frames(1)[0])
            assert len(read_video(locked / "view.mp4")) == 1
            pytest.skip("this process writes into a 0o500 folder (root?): a read-only folder cannot be made here")
        with pytest.raises(OutputError, match=f"folder {locked} is not writable") as info:
            check_video_path(locked / "view.mp4")
        assert "codec" not in str(info.value).lower()
        with pytest.raises(OutputError, match=f"folder {locked / 'pngs'} cannot be created: {locked} is not writable"):
            check_video_path(locked / "pngs" / "shot.png")
        with pytest.raises(OutputError, match="not writable"):
            VideoRecorder(locked / "view.avi")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_a_file_in_the_way_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a folder"):
        check_video_path(blocker / "view.mp4")
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a folder"):
        check_video_path(blocker / "deeper" / "frames")


def test_existing_read_only_video_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.mp4"
    path.write_bytes(b"")
    path.chmod(0o400)
    try:
        if os.access(path, os.W_OK):
            pytest.skip("this process may write a 0o400 file (root?)")
        with pytest.raises(OutputError, match="exists and is not writable"):
            check_video_path(path)
    finally:
        path.chmod(0o600)
