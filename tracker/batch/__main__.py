"""``python -m tracker.batch``: the same command as ``handtrack batch`` (:mod:`tracker.batch.command`)."""

import sys

from tracker.batch.command import main

if __name__ == "__main__":
    sys.exit(main())
