"""convspec — a specification-driven conformance suite and float64 reference for N-D convolution
and pooling.

    >>> import convspec
    >>> results = convspec.run_conformance("im2col", ops=["conv"], max_examples=5)  # doctest: +SKIP
    >>> print(results.summary())  # doctest: +SKIP

Importing convspec imports neither torch nor scipy (nor hypothesis): the conformance engine is
loaded on first use of ``run_conformance`` or ``Case``.
"""

from __future__ import annotations

from typing import Any

from .spec import SPEC_VERSION

__version__ = "0.1.0"

__all__ = ["Case", "Results", "SPEC_VERSION", "__version__", "load_backend", "run_conformance"]


def __getattr__(name: str) -> Any:
    if name in ("run_conformance", "Case", "Results"):
        from . import conformance

        return getattr(conformance, name)
    if name == "load_backend":
        from .backends import load

        return load
    raise AttributeError(f"module 'convspec' has no attribute {name!r}")
