"""The view's texts: the status overlay of the 3D panel and the label under each hand's wrist."""

from __future__ import annotations

from tracker.core.structures import FrameResult, HandPose
from tracker.runtime.stats import LoopStats

__all__ = ["format_overlay", "hand_label", "GESTURE_SHOW_S"]


#: How long the view keeps showing a completed gesture under its hand, seconds.
GESTURE_SHOW_S = 1.5


def hand_label(hand: HandPose, gesture: str | None = None) -> str:
    """``"id 3 right 0.97"``: track id, handedness, hand presence score; then ``pinch`` / ``grab``
    when the grip stage says so, and ``gesture`` (a recently completed gesture, e.g. ``"> swipe_left"``)."""
    text = f"id {hand.track_id} {hand.handedness} {hand.score:.2f}"
    if hand.grip is not None:
        text += "".join(f" {name}" for name, on in (("pinch", hand.grip.pinch), ("grab", hand.grip.grab)) if on)
    if gesture:
        text += f"  > {gesture}"
    return text


def format_overlay(result: FrameResult, stats: LoopStats | None) -> str:
    """Status text: FPS, drops, frame index / time, per-stage p50 latency (or this frame's timings).

    With ``stats`` (the loop's counters) the latencies are each stage's p50 over the loop's window;
    without, they are ``result``'s own stage timings plus its end-to-end latency. Four timings per
    line, in milliseconds.
    """
    head = f"frame {result.index}   t {result.timestamp:.3f} s   hands {len(result.hands)}"
    if stats is not None:
        head = f"{stats.fps:.1f} FPS   dropped {stats.dropped}   " + head
        timings = [(name, s.p50_ms) for name, s in stats.stages.items()]
        title = "latency p50"
    else:
        timings = list(result.timings_ms.items())
        if result.latency_ms:
            timings.append(("latency", result.latency_ms))
        title = "this frame"
    lines = [head]
    if timings:
        cells = [f"{name} {ms:.1f}" for name, ms in timings]
        rows = [cells[i : i + 4] for i in range(0, len(cells), 4)]
        lines.append(f"{title} (ms):  " + "   ".join(rows[0]))
        lines += ["    " + "   ".join(r) for r in rows[1:]]
    return "\n".join(lines)
