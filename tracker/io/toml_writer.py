"""TOML text for the files handtrack writes (calibrations, configurations); reading is ``tomllib``.

Only what those files need: strings, booleans, whole numbers, finite floats and (nested) lists as
values, under ``[table]`` headers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["toml_value", "toml_string"]


def toml_value(value: Any) -> str:
    """``value`` as TOML text.

    Floats are written with ``repr`` (the shortest text that reads back as the same float64).

    Raises:
        ValueError: a non-finite float, or a value TOML cannot hold (None, dicts, objects).
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"a non-finite number ({x})")
        return repr(x)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ValueError(f"{value!r} is not a TOML value (use strings, booleans, numbers, lists)")


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
