"""Normalising per-dim arguments and resolving every padding form to explicit pads.

Downstream code (reference, backends, checks) only ever sees ``((before, after), ...)``
The requested form is kept beside the pads so reports can show it and a backend
with a native ``same`` may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from .errors import InvalidParams
from .shapes import Pads, is_int, same_pads

PADDING_STRINGS = ("valid", "same", "same_upper", "same_lower")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: What a caller may pass as ``padding``: see PAD-1.
PaddingArg = Union[int, str, Sequence[Union[int, Sequence[int]]]]
#: What a caller may pass for a per-dim int argument: see PARAM-1.
IntsArg = Union[int, Sequence[int]]


def per_dim_ints(name: str, value: Any, rank: int, *, minimum: int = 1, clause: str = "PARAM-2") -> tuple[int, ...]:
    """``value`` (an int or one int per spatial dim) as a tuple of ``rank`` ints ≥ ``minimum``.

    Raises InvalidParams citing PARAM-1 for a wrong length and ``clause`` for a bad entry.
    """
    if is_int(value):
        entries: tuple[Any, ...] = (value,) * rank
    elif isinstance(value, Sequence) and not isinstance(value, str):
        entries = tuple(value)
        if len(entries) != rank:
            raise InvalidParams(
                name, value, f"must have one entry per spatial dim ({rank}), not {len(entries)}", "PARAM-1",
                f"give a single int or {rank} ints",
            )
    else:
        raise InvalidParams(name, value, "must be an int or a sequence of ints", "PARAM-1")
    for entry in entries:
        if not is_int(entry):
            raise InvalidParams(name, value, f"must hold integers only, not {type(entry).__name__}", clause)
        if entry < minimum:
            bound = "positive" if minimum == 1 else f">= {minimum}"
            raise InvalidParams(
                name, value, f"must be {bound} in every spatial dim", clause, f"use {name} >= {minimum}"
            )
    return tuple(int(e) for e in entries)


def normalize_padding(value: Any, rank: int) -> str | Pads:
    """PAD-1/PAD-2: a padding string (lower-case; 'same' becomes 'same_upper') or explicit pairs."""
    if isinstance(value, str):
        key = value.lower()
        if key not in PADDING_STRINGS:
            raise InvalidParams(
                "padding", value, f"is not a padding form; strings allowed are {PADDING_STRINGS}", "PAD-1"
            )
        return "same_upper" if key == "same" else key
    given = value
    if is_int(value):
        value = (value,) * rank
    if not isinstance(value, Sequence) or len(value) != rank:
        raise InvalidParams(
            "padding", given,
            f"must be an int, {rank} ints, {rank} (before, after) pairs, or a padding string", "PAD-1",
        )
    pairs = []
    for entry in value:
        if is_int(entry):
            pair = (entry, entry)
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2 \
                and all(is_int(e) for e in entry):
            pair = (entry[0], entry[1])
        else:
            raise InvalidParams(
                "padding", given, "entries must be ints or (before, after) pairs of ints", "PAD-1"
            )
        if pair[0] < 0 or pair[1] < 0:
            raise InvalidParams("padding", given, "must be non-negative", "PAD-2", "crop the input instead")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def resolve_padding(
    padding: str | Pads,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Pads:
    """Explicit ``(before, after)`` pads for a normalised padding form (PAD-3, PAD-4, PAD-5).

    >>> resolve_padding("same_lower", (5,), (4,), (1,), (1,))
    ((2, 1),)
    """
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return tuple((0, 0) for _ in spatial)
    lower = padding == "same_lower"
    return tuple(
        same_pads(n, k, s, d, lower=lower) for n, k, s, d in zip(spatial, kernel, stride, dilation)
    )


def check_padding_mode(mode: Any, pads: Pads, spatial: Sequence[int]) -> str:
    """PAD-MODE-1 and PAD-MODE-2: the mode is known and its pads fit the input."""
    if mode not in PADDING_MODES:
        raise InvalidParams("padding_mode", mode, f"must be one of {PADDING_MODES}", "PAD-MODE-1")
    for (before, after), n in zip(pads, spatial):
        if mode == "reflect" and max(before, after) > n - 1:
            raise InvalidParams(
                "padding", pads, f"exceeds n-1={n - 1} for padding_mode='reflect' on an input of size {n}",
                "PAD-MODE-2", "use smaller pads or padding_mode='replicate'",
            )
        if mode == "circular" and max(before, after) > n:
            raise InvalidParams(
                "padding", pads, f"exceeds n={n} for padding_mode='circular'", "PAD-MODE-2",
                "use pads no larger than the input",
            )
    return str(mode)
