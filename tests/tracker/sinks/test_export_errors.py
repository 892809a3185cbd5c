"""Export failures on real files, pipes and devices: a full disk (``/dev/full``), a file-size limit that
cuts a write in half (``RLIMIT_FSIZE``), a FIFO whose reader quits, unwritable paths; and the CSV
layout checked column by column for one known frame."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tracker.core.errors import OutputError
from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import FrameResult, FrameSet, HandPose
from tracker.sinks.export import CsvExporter, check_export_path, open_exporter, read_jsonl

needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux /dev/full")


@pytest.fixture
def frame(blank_frameset: Callable[..., FrameSet], make_hand: Callable[..., HandPose]) -> Callable[[int], FrameResult]:
    """``frame(i)``: frame ``i`` at ``i / 30`` s with two hands, the second without 3D."""

    def make(i: int) -> FrameResult:
        j2 = np.arange(NUM_JOINTS * 2, dtype=float).reshape(NUM_JOINTS, 2) + 0.25 + i
        j3 = np.arange(NUM_JOINTS * 3, dtype=float).reshape(NUM_JOINTS, 3) * 1.5 + 300.0 + i
        hands = (make_hand(j2, np.linspace(0.5, 0.9, NUM_JOINTS), i / 30, j3, track_id=3, handedness="right",
                           handedness_score=0.875, score=0.96875, view=0),
                 make_hand(j2 + 100.0, 0.5, i / 30, None, track_id=4, handedness="left", handedness_score=0.5))  # fmt: skip
        return FrameResult(blank_frameset(i / 30, i), hands)

    return make


# --- a full disk -------------------------------------------------------------------------------------


@needs_dev_full
def test_full_disk_during_jsonl_export_is_an_output_error(tmp_path: Path, frame: Callable[[int], FrameResult]) -> None:
    path = tmp_path / "x.jsonl"
    path.symlink_to("/dev/full")  # every write: ENOSPC
    exporter = open_exporter(path)
    with pytest.raises(OutputError, match=r"x\.jsonl: writing failed, the disk is full .* after 0 frames"):
        exporter(frame(0))
    with pytest.raises(OutputError, match="disk is full"):
        exporter(frame(1))  # the exporter stays failed
    exporter.close()
    exporter.close()  # and closes quietly, twice


@needs_dev_full
def test_full_disk_at_the_csv_header_fails_at_open(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.symlink_to("/dev/full")
    with pytest.raises(OutputError, match=r"x\.csv: writing failed, the disk is full"):
        open_exporter(path)


@needs_dev_full
def test_full_disk_during_npz_export_leaves_the_old_file(tmp_path: Path, frame: Callable[[int], FrameResult]) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, old=np.arange(3))
    exporter = open_exporter(path)
    exporter(frame(0))
    (tmp_path / f".x.npz.{os.getpid()}.partial").symlink_to("/dev/full")  # the temporary file lands on /dev/full
    with pytest.raises(OutputError, match=r"x\.npz: writing failed, the disk is full .*; nothing was saved \(1 frame received\)"):
        exporter.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # temporary file removed
    assert np.load(path)["old"].tolist() == [0, 1, 2]  # the previous export untouched


def test_npz_is_renamed_into_place_with_no_leftovers(tmp_path: Path, frame: Callable[[int], FrameResult]) -> None:
    path = tmp_path / "x.npz"
    exporter = open_exporter(path)
    exporter(frame(0))
    exporter(frame(1))
    assert list(tmp_path.iterdir()) == []  # nothing on disk before close
    exporter.close()
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
    d = np.load(path)
    assert d["frame_index"].tolist() == [0, 1] and d["joints_3d"].shape == (4, NUM_JOINTS, 3)
    assert d["joints_3d"].dtype == np.float64 and d["handedness"].dtype == np.dtype("<U7")


_LIMITED_WRITER = r"""
import resource, signal, sys
import numpy as np
from tracker.core.errors import OutputError
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet, HandPose, Intrinsics
from tracker.sinks.export import open_exporter

path, limit = sys.argv[1], int(sys.argv[2])
camera = Camera("c", Intrinsics(50.0, 50.0, 32.0, 24.0, 64, 48))
image = np.zeros((48, 64, 3), np.uint8)
hand = HandPose(np.full((21, 2), 123.456), np.full(21, 0.9), 0.0, joints_3d=np.full((21, 3), 456.789))
exporter = open_exporter(path)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write gets EFBIG instead of a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    for i in range(1000):
        exporter(FrameResult(FrameSet.single(Frame(image, i / 30, i, camera)), (hand, hand)))
except OutputError as exc:
    print(exporter.frames_written)
    print(exc)
exporter.close()
"""


@pytest.mark.parametrize("name", ["x.jsonl", "x.csv"])
def test_a_write_cut_in_half_is_truncated_to_the_last_complete_frame(tmp_path: Path, repo_root: Path,
                                                                     name: str) -> None:  # fmt: skip
    """A file-size limit lets the kernel write part of a frame (a short write) and then fails with
    EFBIG: the file must end on the last complete frame, not in the middle of a line."""
    path, limit = tmp_path / name, 10_000
    out = subprocess.run([sys.executable, "-c", _LIMITED_WRITER, str(path), str(limit)], cwd=repo_root,
                         capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()  # fmt: skip
    frames, message = int(out[0]), out[1]
    assert "file too large" in message and f"it ends after {frames} frames" in message
    data = path.read_bytes()
    assert 0 < len(data) < limit  # the partial frame past the last complete one was cut off
    if name.endswith(".jsonl"):
        assert data.endswith(b"\n")
        lines = data.decode().splitlines()
        assert len(lines) == frames and [json.loads(line)["frame_index"] for line in lines] == list(range(frames))
    else:
        assert data.endswith(b"\r\n")
        rows = list(csv.reader(data.decode().splitlines()))
        assert len(rows) == 1 + 2 * frames and all(len(row) == 133 for row in rows)
        assert rows[-1][1] == str(frames - 1)


# --- a pipe whose reader goes away ----------------------------------------------------------------


def test_fifo_reader_that_goes_away_ends_the_export_with_an_output_error(
    tmp_path: Path, frame: Callable[[int], FrameResult]
) -> None:
    path = tmp_path / "joints.jsonl"
    os.mkfifo(path)
    received: list[bytes] = []
    gone = threading.Event()

    def reader() -> None:
        with open(path, "rb") as f:
            received.append(f.readline())
        gone.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    exporter = open_exporter(path)  # blocks until the reader opens its end
    exporter(frame(0))
    assert gone.wait(10), "reader thread did not finish"
    with pytest.raises(OutputError, match=r"joints\.jsonl: the program reading this pipe closed it after 1 frame;"):
        exporter(frame(1))
    exporter.close()
    thread.join(5)
    assert json.loads(received[0])["frame_index"] == 0


def test_npz_cannot_go_to_a_pipe(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.npz")
    with pytest.raises(OutputError, match=r"not a regular file: .* stream to a pipe with \.jsonl or \.csv"):
        open_exporter(tmp_path / "x.npz")


# --- paths refused before anything runs -------------------------------------------------------------


def test_unknown_extension_and_folders_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"unknown extension '\.xlsx'; use one of \.jsonl, \.ndjson, \.csv, \.npz"):
        check_export_path(tmp_path / "out.xlsx")
    with pytest.raises(OutputError, match=r"unknown extension '\(none\)'"):
        open_exporter(tmp_path / "out")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_export_path(tmp_path / "dir.jsonl")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"cannot create the folder .*file/sub, since .*file is a file"):
        open_exporter(tmp_path / "file" / "sub" / "x.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.jsonl", "file"]


def test_missing_folders_pass_the_check_and_are_created_on_open(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.jsonl"
    assert check_export_path(path) == path
    assert list(tmp_path.iterdir()) == []  # the check creates nothing
    open_exporter(path).close()
    assert path.is_file() and path.read_bytes() == b""


def _check_as_nobody(path: Path) -> str:
    """check_export_path(path) in a child process running as user 'nobody' (root passes every
    permission check); returns the error message, or '' when the check passed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery, report through the pipe and leave with os._exit
        os.close(r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            check_export_path(path)
            message = ""
        except OutputError as exc:
            message = str(exc)
        except BaseException as exc:  # noqa: BLE001
            message = f"unexpected {exc!r}"
        os.write(w, message.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    return message


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX permissions")
def test_read_only_folder_is_refused_up_front(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = Path(tmp_path_factory.mktemp("ro", numbered=True))
    for p in (base, *base.parents[:2]):
        os.chmod(p, os.stat(p).st_mode | 0o005)  # searchable by others (pytest's temp root is 0700)
    folder = base / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    (base / "existing.csv").write_text("")
    os.chmod(base / "existing.csv", 0o444)
    check: Callable[[Path], str]
    if os.geteuid() == 0:
        check = _check_as_nobody
    else:
        def check(path: Path) -> str:
            try:
                check_export_path(path)
            except OutputError as exc:
                return str(exc)
            return ""
    assert "the folder" in check(folder / "x.jsonl") and "is not writable" in check(folder / "x.jsonl")
    assert "is not writable" in check(folder / "sub" / "x.npz")
    assert "exists and is not writable" in check(base / "existing.csv")
    os.chmod(folder, 0o777)
    assert check(folder / "x.jsonl") == ""


# --- the CSV layout, column by column ----------------------------------------------------------------


def test_csv_columns_of_one_known_frame(tmp_path: Path, frame: Callable[[int], FrameResult]) -> None:
    result = frame(2)
    with open_exporter(tmp_path / "x.csv") as exporter:
        exporter(result)
    raw = (tmp_path / "x.csv").read_bytes()
    assert raw.count(b"\r\n") == 3 and raw.endswith(b"\r\n")  # header + 2 hands
    header, right, left = list(csv.reader(raw.decode().splitlines()))
    assert header == CsvExporter.HEADER and len(header) == 7 + 2 * 21 + 3 * 21 + 21 == 133
    assert header[:7] == ["timestamp", "frame_index", "id", "handedness", "handedness_score", "score", "view"]
    assert header[7:11] == ["wrist_u", "wrist_v", "thumb_cmc_u", "thumb_cmc_v"]
    assert header[49:53] == ["wrist_x", "wrist_y", "wrist_z", "thumb_cmc_x"]
    assert header[112] == "wrist_conf" and header[-1] == "pinky_tip_conf"
    row = dict(zip(header, right))
    assert [row[c] for c in header[:7]] == ["0.066667", "2", "3", "right", "0.8750", "0.9688", "0"]
    hand = result.hands[0]
    for j, name in enumerate(JOINT_NAMES):
        assert (row[f"{name}_u"], row[f"{name}_v"]) == (f"{hand.joints_2d[j, 0]:.2f}", f"{hand.joints_2d[j, 1]:.2f}")
        assert [row[f"{name}_{a}"] for a in "xyz"] == [f"{v:.2f}" for v in hand.joints_3d[j]]
        assert row[f"{name}_conf"] == f"{hand.confidence[j]:.4f}"
    assert (row["wrist_u"], row["wrist_v"], row["pinky_tip_z"], row["pinky_tip_conf"]) == (
        "2.25", "3.25", "395.00", "0.9000")  # fmt: skip
    row = dict(zip(header, left))
    assert [row[c] for c in header[:7]] == ["0.066667", "2", "4", "left", "0.5000", "1.0000", "0"]
    assert [row[f"{n}_{a}"] for n in JOINT_NAMES for a in "xyz"] == [""] * 63  # no 3D: empty cells
    assert row["middle_tip_u"] == f"{hand.joints_2d[12, 0] + 100:.2f}" == "126.25"


def test_jsonl_after_a_failed_run_reads_back(tmp_path: Path, frame: Callable[[int], FrameResult]) -> None:
    """What an interrupted run leaves (no close) is complete, readable frames."""
    path = tmp_path / "x.jsonl"
    exporter = open_exporter(path)
    for i in range(3):
        exporter(frame(i))
    assert [f["frame_index"] for f in read_jsonl(path)] == [0, 1, 2]  # on disk before close
    exporter.close()
