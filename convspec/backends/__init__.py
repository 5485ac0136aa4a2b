"""convspec.backends — implementations under test, their protocol and the loader.

Imports only ``convspec.spec``: a backend never imports the reference. Built-in backends are
imported on first use by :func:`load`, so importing this package imports neither torch nor scipy.
"""

from .adapters import PADDING_MODE_FEATURES, FunctionalBackend, FunctionBackend
from .base import Backend, Capabilities
from .loader import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    BackendInfo,
    BackendLoadError,
    BuiltinBackend,
    available_backends,
    capability_table,
    load,
)

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "PADDING_MODE_FEATURES",
    "Backend",
    "BackendInfo",
    "BackendLoadError",
    "BuiltinBackend",
    "Capabilities",
    "FunctionBackend",
    "FunctionalBackend",
    "available_backends",
    "capability_table",
    "load",
]
