"""The op table: every op of the spec, its array inputs and outputs, and how arrays are checked.

A backend implements one method per op, named as the op, called as
``method(*arrays, params)`` with the arrays in the order of ``OpInfo.inputs`` (an absent bias
is ``None``) and returning the arrays of ``OpInfo.outputs`` (one array, or a tuple).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Union

import numpy as np

from .conv import ConvParams, ConvTransposeParams
from .dtypes import dtype_name
from .errors import InvalidParams
from .pool import AvgPoolParams, LpPoolParams, MaxPoolParams

Params = Union[ConvParams, ConvTransposeParams, MaxPoolParams, AvgPoolParams, LpPoolParams]


@dataclass(frozen=True)
class OpInfo:
    """One row of the op table.

    ``linear`` ops are bounded by the error model of ERR-BOUND-1. The max-pool ops select rather
    than compute: max_pool must be exact, and max_pool_backward exact where at most one dy reaches
    an element, bounded (K = Πk) where several do (ERR-EXACT-1). ``forward`` names the forward op
    of a gradient op, ``backward`` the gradient op of a forward op.

    ``extension`` names the framework an op was added for (``"onnx"``) and is None for the core
    ops: a backend's ``Capabilities.ops`` defaults to :data:`CORE_OPS`, so adding an extension op
    never makes an existing backend claim it.
    """

    name: str
    params_type: type
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    clauses: tuple[str, ...]
    linear: bool = True
    forward: str | None = None
    backward: str | None = None
    extension: str | None = None

    @property
    def is_gradient(self) -> bool:
        return self.forward is not None


OPS: dict[str, OpInfo] = {
    info.name: info
    for info in (
        OpInfo("conv", ConvParams, ("x", "w", "b"), ("y",), ("CONV-DEF-1", "CONV-SHAPE-1"),
               backward="conv_backward"),
        OpInfo("conv_backward", ConvParams, ("x", "w", "dy"), ("dx", "dw", "db"), ("CONV-GRAD-1",),
               forward="conv"),
        OpInfo("conv_transpose", ConvTransposeParams, ("x", "w", "b"), ("y",), ("CONVT-DEF-1", "CONVT-SHAPE-1"),
               backward="conv_transpose_backward"),
        OpInfo("conv_transpose_backward", ConvTransposeParams, ("x", "w", "dy"), ("dx", "dw", "db"),
               ("CONVT-GRAD-1",), forward="conv_transpose"),
        OpInfo("max_pool", MaxPoolParams, ("x",), ("y", "indices"),
               ("MAXPOOL-DEF-1", "MAXPOOL-NAN-1", "MAXPOOL-TIE-1", "MAXPOOL-INDEX-1"), linear=False,
               backward="max_pool_backward"),
        OpInfo("max_pool_backward", MaxPoolParams, ("x", "dy"), ("dx",), ("MAXPOOL-GRAD-1",), linear=False,
               forward="max_pool"),
        OpInfo("avg_pool", AvgPoolParams, ("x",), ("y",), ("AVGPOOL-DEF-1",), backward="avg_pool_backward"),
        OpInfo("avg_pool_backward", AvgPoolParams, ("x", "dy"), ("dx",), ("AVGPOOL-GRAD-1",),
               forward="avg_pool"),
        # ONNX LpPool (LPPOOL-DEF-1): bounded by ERR-BOUND-1 with mag = op(|x|) = y (LPPOOL-DEF-1).
        OpInfo("lp_pool", LpPoolParams, ("x",), ("y",), ("LPPOOL-DEF-1",), backward="lp_pool_backward",
               extension="onnx"),
        OpInfo("lp_pool_backward", LpPoolParams, ("x", "dy"), ("dx",), ("LPPOOL-GRAD-1",),
               forward="lp_pool", extension="onnx"),
    )
}

FORWARD_OPS = tuple(name for name, info in OPS.items() if not info.is_gradient)

#: ops of the core spec (no ``extension``): what a backend claims by default.
CORE_OPS: frozenset[str] = frozenset(name for name, info in OPS.items() if info.extension is None)


def expected_shapes(op: str, params: Params) -> dict[str, tuple[int, ...] | None]:
    """Shape of every input and output array of ``op`` under ``params`` (None: absent)."""
    shapes: dict[str, tuple[int, ...] | None] = {"x": params.input_shape, "y": params.output_shape,
                                                 "dy": params.output_shape, "dx": params.input_shape}
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        shapes.update(w=params.weight_shape, dw=params.weight_shape, b=params.bias_shape, db=params.bias_shape)
    if isinstance(params, MaxPoolParams):
        shapes["indices"] = params.output_shape
    info = OPS[op]
    return {name: shapes[name] for name in info.inputs + info.outputs}


_DERIVED_FIELDS = ("pads", "output_shape")
#: optional arguments left out of :func:`init_kwargs` while unset, so older descriptors stay as they were.
_OMITTED_WHEN_NONE = ("output_size",)


def init_kwargs(params: Params) -> dict[str, Any]:
    """The constructor arguments that rebuild ``params`` (every field but the derived ones; an
    unset ``output_size`` is left out)."""
    return {f.name: getattr(params, f.name) for f in fields(params)
            if f.name not in _DERIVED_FIELDS and not (f.name in _OMITTED_WHEN_NONE and getattr(params, f.name) is None)}


def revalidate(params: Params) -> Params:
    """Rebuild ``params`` from its arguments, so every rule is checked again.

    Parameter objects validate when built; this catches one whose fields were set some other way
    (the conformance engine forges invalid ones to check that backends refuse them). Parameter
    objects are frozen and compare by value, so a valid one is rebuilt once and remembered.
    """
    return _revalidate(params)


@functools.lru_cache(maxsize=4096)
def _revalidate(params: Params) -> Params:
    rebuilt = type(params)(**init_kwargs(params))
    if rebuilt != params:
        raise InvalidParams(
            "params", params, f"has derived fields that do not follow from its arguments (expected {rebuilt})",
            "PAD-1",
        )
    return rebuilt


def check_arrays(op: str, params: Params, arrays: dict[str, Any]) -> str:
    """Check ``params`` and the input arrays of ``op``; returns the common dtype name.

    The parameters are validated again (:func:`revalidate`); shapes must be those ``params`` was
    built for (LAYOUT-1..4, GRAD-SHAPE-1); every array shares one spec dtype (DTYPE-1); a bias is
    given exactly when ``params.bias_shape`` is set.
    """
    info = OPS[op]
    if not isinstance(params, info.params_type):
        raise TypeError(f"{op} takes {info.params_type.__name__}, not {type(params).__name__}")
    revalidate(params)
    shapes = expected_shapes(op, params)
    clause_of = {"x": "LAYOUT-1", "w": "LAYOUT-2" if isinstance(params, ConvParams) else "LAYOUT-3",
                 "b": "LAYOUT-4", "dy": "GRAD-SHAPE-1"}
    dtypes = set()
    for name in info.inputs:
        array = arrays.get(name)
        want = shapes[name]
        if array is None:
            if want is None:
                continue
            raise InvalidParams(name, None, f"is required: params expect shape {want}", clause_of[name])
        if want is None:
            raise InvalidParams(f"{name}.shape", np.shape(array), "is given but params.bias_shape is None",
                                clause_of[name], "build the params with bias_shape=(C_out,)")
        if tuple(np.shape(array)) != want:
            raise InvalidParams(f"{name}.shape", tuple(np.shape(array)), f"does not match the params' {want}",
                                clause_of[name])
        dtypes.add(dtype_name(np.asarray(array).dtype))
    if len(dtypes) > 1:
        raise InvalidParams("dtype", sorted(dtypes), "must be one dtype for every array", "DTYPE-1",
                            "cast every input to one dtype")
    return dtypes.pop() if dtypes else "float64"
