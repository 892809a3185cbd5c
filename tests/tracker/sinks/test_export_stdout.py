"""``--export -``: JSON Lines on standard output for shell pipelines. Standard output holds the JSON lines
and nothing else; a reader that quits (``| head -n 2``) ends the run with the export's pipe error, no
traceback and no hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tracker.core.errors import OutputError
from tracker.core.structures import FrameResult, FrameSet, HandPose
from tracker.sinks.export import STDOUT, JsonlExporter, check_export_path, open_exporter


def test_dash_is_a_jsonl_export_to_standard_output(capfd, blank_frameset: Callable[..., FrameSet],
                                                   make_hand: Callable[..., HandPose]) -> None:  # fmt: skip
    """3 frames -> exactly 3 lines on file descriptor 1, each the JSONL frame object, written per frame."""
    assert check_export_path("-") == Path("-") and check_export_path(Path(STDOUT)) == Path("-")
    exporter = open_exporter(Path("-"))
    assert isinstance(exporter, JsonlExporter)
    for i in range(3):
        exporter(FrameResult(blank_frameset(i / 10, i), (make_hand(1.5, track_id=i),)))
        assert capfd.readouterr().out.count("\n") == 1  # on its way before the next frame
    exporter.close()
    exporter.close()
    os.write(1, b"still open\n")  # closing the exporter leaves the process's stdout open
    assert capfd.readouterr().out == "still open\n"


def test_dash_with_a_csv_exporter_is_refused() -> None:
    from tracker.sinks.export import CsvExporter

    with pytest.raises(OutputError, match="JSON Lines only"):
        CsvExporter("-")


def test_a_reader_that_quits_is_an_output_error(monkeypatch, blank_frameset) -> None:
    """Standard output is a pipe whose reader has closed: the first frame's write raises OutputError
    (like a FIFO export), after 0 frames."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    with open(write_fd, "w") as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        exporter = open_exporter("-")
        with pytest.raises(OutputError, match=r"\(standard output\): the program reading this pipe closed it after 0 frames"):
            exporter(FrameResult(blank_frameset(), ()))
        exporter.close()


def _cli(repo_root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tracker.cli", "--source", "demo", "--no-view", *args]


def test_cli_writes_5_json_lines_and_nothing_else_to_stdout(repo_root: Path) -> None:
    """``handtrack --source demo --no-view --frames 5 --export -``: exit 0, stdout = 5 JSON lines (frames
    0..4), the logs on stderr."""
    run = subprocess.run(_cli(repo_root, "--frames", "5", "--export", "-"), cwd=repo_root, capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 5 and run.stdout.endswith("\n")
    frames = [json.loads(line) for line in lines]
    assert [f["frame_index"] for f in frames] == [0, 1, 2, 3, 4]
    assert all(set(f) == {"timestamp", "frame_index", "hands"} for f in frames)
    assert "INFO handtrack" in run.stderr  # the logs went to stderr


def test_cli_piped_into_head_ends_cleanly(repo_root: Path) -> None:
    """``... --export - | head -n 2`` over the demo's 120 frames: head prints 2 JSON lines and the tracker
    ends within the timeout with the pipe error (exit 7, one error line, no traceback), or, if every
    line fitted in the pipe before head quit, with exit 0."""
    tracker = subprocess.Popen(_cli(repo_root, "--export", "-"), cwd=repo_root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    head = subprocess.run(["head", "-n", "2"], stdin=tracker.stdout, capture_output=True, timeout=120, check=False)
    tracker.stdout.close()  # only head holds the read end now: its exit closes the pipe
    _, err = tracker.communicate(timeout=120)
    stderr = err.decode()
    assert head.returncode == 0
    assert [json.loads(line)["frame_index"] for line in head.stdout.decode().splitlines()] == [0, 1]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert tracker.returncode in (0, 7), stderr
    if tracker.returncode == 7:
        assert "ERROR handtrack: export (standard output): the program reading this pipe closed it" in stderr
