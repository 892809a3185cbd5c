"""The ``Device`` protocol every source implements (its errors: :mod:`tracker.core.errors`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tracker.core.structures import FrameSet

__all__ = ["Device"]


@runtime_checkable
class Device(Protocol):
    """A source of frame sets.

    ``open()`` acquires the hardware or file and raises a :class:`DeviceError` subclass when it
    cannot; ``read()`` blocks until the next frame set and returns it, or returns ``None`` at the
    end of a recording; ``close()`` releases everything and may be called more than once.
    Devices are context managers (``with device: ...`` opens and closes).

    Attributes:
        name: a short human-readable name ("webcam:0", "demo.mp4").
        live: True for cameras (the loop keeps only the newest frame), False for playback
            (the loop processes every frame).

    Optional attributes of playback sources (read with ``getattr``; cameras have neither):
        frame_count: frame sets in one pass through the recording, 0 when unknown (a container
            that does not say); a progress bar shows it (:func:`tracker.sinks.progress.known_length`).
        loop: True when the source plays again from the start after its end (then it never ends).
    """

    name: str
    live: bool

    def open(self) -> None: ...

    def read(self) -> FrameSet | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Device": ...

    def __exit__(self, *exc: object) -> None: ...
