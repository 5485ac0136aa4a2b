"""Dtype facts the spec and the error model need (DTYPE-1, DTYPE-2).

bfloat16 comes from the optional ``ml_dtypes`` package; every other dtype is NumPy's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidParams

#: Dtype names of the spec, narrowest first.
DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")

#: Unit roundoff u = 2^-p, p the significand precision including the implicit bit (DTYPE-2).
#: "tf32" is a precision, not a storage dtype: a backend declares it as its input precision.
UNIT_ROUNDOFF: dict[str, float] = {
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
    "tf32": 2.0**-11,
    "float32": 2.0**-24,
    "float64": 2.0**-53,
}

#: Smallest positive normal number per dtype (the additive term of ERR-BOUND-1).
TINY: dict[str, float] = {
    "float16": 2.0**-14,
    "bfloat16": 2.0**-126,
    "tf32": 2.0**-126,
    "float32": 2.0**-126,
    "float64": 2.0**-1022,
}


def bfloat16_available() -> bool:
    """True when ``ml_dtypes`` is importable, so bfloat16 arrays can exist."""
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        return False
    return True


def to_dtype(name: str) -> np.dtype[Any]:
    """The NumPy dtype for a spec dtype name; bfloat16 needs ``ml_dtypes``."""
    if name not in DTYPE_NAMES:
        raise InvalidParams("dtype", name, f"is not one of {DTYPE_NAMES}", "DTYPE-1")
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as exc:
            raise InvalidParams(
                "dtype", name, "needs the optional package ml_dtypes", "DTYPE-1", "pip install ml_dtypes"
            ) from exc
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def dtype_name(dtype: Any) -> str:
    """The spec name of a NumPy dtype (or array's dtype); InvalidParams if it is not a spec dtype."""
    name = np.dtype(dtype).name
    if name not in DTYPE_NAMES:
        raise InvalidParams("dtype", name, f"is not one of {DTYPE_NAMES}", "DTYPE-1", "cast to float32")
    return name


def unit_roundoff(dtype: Any) -> float:
    """u for a dtype name ("tf32" included), a NumPy dtype, or an array's dtype.

    >>> unit_roundoff("float32") == 2.0**-24
    True
    """
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    return UNIT_ROUNDOFF[name]
