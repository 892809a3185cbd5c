"""The ``handtrack`` console script: ``handtrack batch ...`` runs a batch (:mod:`tracker.batch`),
anything else is the tracker's own command line (:mod:`tracker.cli`)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Dispatch on the first argument; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["batch"]:
        from tracker.batch.command import main as batch_main

        return batch_main(args[1:])
    from tracker.cli import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
