"""One exception hierarchy for the whole of convspec.

``ConvSpecError`` is the root. ``InvalidParams`` (also a ``ValueError``) is what the spec raises
for a configuration SPEC.md declares invalid; its message names the parameter, the value, the
rule, the clause id and a fix, e.g.::

    stride=(0, 2) must be a positive integer in every spatial dim (PARAM-2); use stride >= 1

``Unsupported`` is what a backend raises for a valid configuration it cannot run (declared, or
found at run time). ``NonConformingOutput`` is what convspec's own adapter code raises when what
the wrapped implementation returned breaks a clause before it can even be compared (an index
outside the plane it can be mapped from, an output of a shape the adapter cannot crop).
``InternalError`` is a failed self-check of the engine; it is never counted against a backend.
"""

from __future__ import annotations

from typing import Any

from .clauses import CLAUSES


class ConvSpecError(Exception):
    """Root of every exception convspec raises on purpose."""


class InvalidParams(ConvSpecError, ValueError):
    """A configuration that SPEC.md declares invalid.

    Attributes
    ----------
    param : str
        The parameter at fault (``"stride"``, ``"padding"``, ``"x.shape"``...).
    value : Any
        The offending value as given.
    clause : str
        The SPEC.md clause id the rule comes from.
    """

    def __init__(self, param: str, value: Any, rule: str, clause: str, fix: str = "") -> None:
        if clause not in CLAUSES:  # a typo here is our bug, not the user's
            raise InternalError(f"InvalidParams cites unknown clause {clause!r}")
        self.param = param
        self.value = value
        self.rule = rule
        self.clause = clause
        self.fix = fix
        message = f"{param}={value!r} {rule} ({clause})"
        if fix:
            message += f"; {fix}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across --isolate process boundaries
        return (type(self), (self.param, self.value, self.rule, self.clause, self.fix))


class Unsupported(ConvSpecError):
    """A valid configuration that a backend declares it cannot run (never a failure)."""


class NonConformingOutput(ConvSpecError):
    """What a wrapped implementation returned breaks ``clause``: the backend's non-conformance,
    found by the adapter that converts its outputs (never an error of convspec itself)."""

    def __init__(self, clause: str, message: str) -> None:
        if clause not in CLAUSES:
            raise InternalError(f"NonConformingOutput cites unknown clause {clause!r}")
        self.clause = clause
        self.message = message
        super().__init__(f"{message} ({clause})")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across --isolate process boundaries
        return (type(self), (self.clause, self.message))


class InternalError(ConvSpecError):
    """A self-check of convspec itself failed: a bug in convspec, not in the backend."""
