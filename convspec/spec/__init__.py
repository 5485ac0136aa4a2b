"""convspec.spec — the executable specification.

Parameter objects (validated, with explicit pads and output shapes), the op table, dtype facts,
the error model and the clause index of SPEC.md. Imports nothing else of convspec.
"""

from .clauses import CLAUSES, SPEC_VERSION, clause_title
from .conv import ConvParams, ConvTransposeParams
from .dtypes import DTYPE_NAMES, UNIT_ROUNDOFF, bfloat16_available, dtype_name, to_dtype, unit_roundoff
from .errors import ConvSpecError, InternalError, InvalidParams, NonConformingOutput, Unsupported
from .ops import CORE_OPS, FORWARD_OPS, OPS, OpInfo, Params, check_arrays, expected_shapes, init_kwargs, revalidate
from .padding import PADDING_MODES, PADDING_STRINGS, normalize_padding, resolve_padding
from .pool import AvgPoolParams, GlobalPoolParams, LpPoolParams, MaxPoolParams, PoolParams, global_pool_params
from .shapes import (
    Pads,
    Shape,
    ceil_div,
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    pool_output_size,
    same_pads,
)

__all__ = [
    "AvgPoolParams",
    "CLAUSES",
    "CORE_OPS",
    "ConvParams",
    "ConvSpecError",
    "ConvTransposeParams",
    "DTYPE_NAMES",
    "FORWARD_OPS",
    "GlobalPoolParams",
    "InternalError",
    "InvalidParams",
    "LpPoolParams",
    "MaxPoolParams",
    "NonConformingOutput",
    "OPS",
    "OpInfo",
    "PADDING_MODES",
    "PADDING_STRINGS",
    "Pads",
    "Params",
    "PoolParams",
    "SPEC_VERSION",
    "Shape",
    "UNIT_ROUNDOFF",
    "Unsupported",
    "bfloat16_available",
    "ceil_div",
    "check_arrays",
    "clause_title",
    "conv_output_size",
    "conv_transpose_output_size",
    "dtype_name",
    "effective_kernel",
    "expected_shapes",
    "global_pool_params",
    "init_kwargs",
    "revalidate",
    "normalize_padding",
    "pool_output_size",
    "resolve_padding",
    "same_pads",
    "to_dtype",
    "unit_roundoff",
]
