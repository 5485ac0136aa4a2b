"""The feature vocabulary: what a problem uses beyond the plainest form of its op.

Backends declare the features they cannot run (``Capabilities.unsupported``); the runner asks
:func:`features_of` which features a case uses, and a case that uses an undeclared feature is
reported as *unsupported* with the backend's reason, never silently skipped. Reports group
results by op × feature.
"""

from __future__ import annotations

from .conv import ConvParams, ConvTransposeParams
from .ops import OPS, Params
from .pool import AvgPoolParams, MaxPoolParams, PoolParams

#: feature name -> what it means; the clause that defines it is given in brackets.
FEATURES: dict[str, str] = {
    "bias": "a bias is added [LAYOUT-4]",
    "groups": "groups > 1, depthwise included [CONV-GROUPS-1]",
    "dilation": "dilation > 1 in some dim [CONV-DEF-1, POOL-PARAM-1]",
    "stride": "stride > 1 in some dim [CONV-SHAPE-1]",
    "padding": "non-zero padding [PAD-1]",
    "asymmetric_padding": "p_before != p_after in some dim [PAD-1]",
    "same": "padding requested as 'same_upper' or 'same_lower' [PAD-4, PAD-5]",
    "same_strided": "'same*' padding with stride > 1 [PAD-4]",
    "padding_mode.reflect": "padding_mode='reflect' [PAD-MODE-1]",
    "padding_mode.replicate": "padding_mode='replicate' [PAD-MODE-1]",
    "padding_mode.circular": "padding_mode='circular' [PAD-MODE-1]",
    "output_padding": "conv_transpose output_padding > 0 [CONVT-PARAM-1]",
    "ceil_mode": "pooling with ceil_mode=True [POOL-CEIL-1]",
    "pool_padding_over_half_kernel": "a pool pad larger than kernel_size // 2 [POOL-WINDOW-1]",
    "count_include_pad": "avg pool counting padding in the divisor [AVGPOOL-DEF-1]",
    "divisor_override": "avg pool with divisor_override [AVGPOOL-DEF-1]",
    "empty_batch": "N = 0 [LAYOUT-1]",
    # Declared only, never returned by features_of: a max_pool that returns no indices.
    "indices": "max_pool also returns its indices [MAXPOOL-INDEX-1]",
}

#: Features a backend may declare unsupported without making whole cases unsupported: the runner
#: skips just that part of the check and says so.
PARTIAL_FEATURES = ("indices",)


def features_of(op: str, params: Params) -> frozenset[str]:
    """The features of FEATURES that running ``op`` under ``params`` uses.

    >>> sorted(features_of("max_pool", MaxPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True)))
    ['ceil_mode', 'stride']
    """
    if op not in OPS:
        raise KeyError(f"unknown op {op!r}; ops are {sorted(OPS)}")
    used: set[str] = set()
    if params.input_shape[0] == 0:
        used.add("empty_batch")
    if any(d > 1 for d in params.dilation):
        used.add("dilation")
    if any(s > 1 for s in params.stride):
        used.add("stride")
    if any(before or after for before, after in params.pads):
        used.add("padding")
    if any(before != after for before, after in params.pads):
        used.add("asymmetric_padding")
    if isinstance(params.padding, str) and params.padding.startswith("same"):
        used.add("same")
        if "stride" in used:
            used.add("same_strided")
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        if params.bias_shape is not None:
            used.add("bias")
        if params.groups > 1:
            used.add("groups")
    if isinstance(params, ConvParams) and params.padding_mode != "zeros" and "padding" in used:
        used.add(f"padding_mode.{params.padding_mode}")
    if isinstance(params, ConvTransposeParams) and any(params.output_padding):
        used.add("output_padding")
    if isinstance(params, PoolParams):
        if params.ceil_mode:
            used.add("ceil_mode")
        if any(max(pair) > k // 2 for pair, k in zip(params.pads, params.kernel_size)):
            used.add("pool_padding_over_half_kernel")
    if isinstance(params, AvgPoolParams):
        if params.count_include_pad and "padding" in used:
            used.add("count_include_pad")
        if params.divisor_override is not None:
            used.add("divisor_override")
    return frozenset(used)
