"""convspec — a specification-driven conformance suite and float64 reference for N-D convolution
and pooling.

Importing convspec imports neither torch nor scipy.
"""

from .spec import SPEC_VERSION

__version__ = "0.1.0"

__all__ = ["SPEC_VERSION", "__version__"]
