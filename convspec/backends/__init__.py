"""convspec.backends — implementations under test, their protocol and the loader.

Imports only ``convspec.spec``: a backend never imports the reference.
"""

from .base import Backend, Capabilities

__all__ = ["Backend", "Capabilities"]
