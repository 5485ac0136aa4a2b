"""The reference against PyTorch (float64, CPU; torch.autograd for every gradient) on generated
configurations of every op, spatial ranks 1-3 and every parameter PyTorch can express.

Agreement is "a few float64 ulps relative to the magnitude": per element
|ref − torch| ≤ 8·K·2^-53·mag + tiny, mag = reference.magnitude (ERR-BOUND-1) and K the terms per
output of the spec's error model. Max-pool values and indices must match exactly (ERR-EXACT-1),
except that in a window holding a NaN the spec only asks for the index of one of its NaNs
(MAXPOOL-NAN-1): PyTorch's must point at a NaN of that window. What PyTorch cannot express is
built from what it can: asymmetric pads and padding modes via F.pad, asymmetric conv_transpose
pads by cropping its unpadded output.
"""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import convspec.reference as R
from convspec.spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams
from convspec.spec.accuracy import terms_per_output
from convspec.spec.dtypes import TINY

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

U = 2.0**-53
TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def assert_agrees(name: str, ref: np.ndarray, got: np.ndarray, mag: np.ndarray, k: int) -> None:
    """|ref − got| ≤ 8·K·u·mag + tiny everywhere, NaN exactly where the reference is NaN."""
    got = np.asarray(got, dtype=np.float64)
    assert ref.shape == got.shape, f"{name}: shape {got.shape} != {ref.shape}"
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{name}: NaN positions differ")
    with np.errstate(invalid="ignore"):
        error = np.where(nan | (ref == got), 0.0, np.abs(ref - got))
        bound = 8 * k * U * np.where(np.isnan(mag), np.inf, mag) + TINY["float64"]
    bad = error > bound
    if bad.any():
        ratio = np.where(bad, error / bound, 0)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        pytest.fail(
            f"{name}: {bad.sum()} of {bad.size} elements ({100 * bad.mean():.1f}%) exceed 8·K·u·mag + tiny "
            f"(K={k}); worst at {tuple(map(int, worst))}: ref={ref[worst]!r} torch={got[worst]!r} "
            f"error={error[worst]:.3g} bound={bound[worst]:.3g} ({ratio[worst]:.3g}×)"
        )


def compare_all(op, params, arrays, torch_outputs):
    """Every output of ``op`` against torch's, each within its own K and magnitude."""
    ref = R.evaluate(op, arrays, params)
    mag = R.magnitude(op, arrays, params)
    k = terms_per_output(op, params)
    for name, got in torch_outputs.items():
        if ref[name] is None:
            assert got is None, name
            continue
        assert_agrees(f"{op}.{name}", ref[name], got.detach().numpy(), mag[name], k[name])


def flat_pads(pads) -> tuple[int, ...]:
    """F.pad's order: the last spatial dim first, (before, after) each."""
    return tuple(e for pair in reversed(pads) for e in pair)


def tensors(*arrays, grad=True):
    return [None if a is None else torch.tensor(a, requires_grad=grad) for a in arrays]


def gradients(y, inputs, dy):
    present = [t for t in inputs if t is not None]
    grads = iter(torch.autograd.grad(y, present, torch.tensor(dy)))
    return [None if t is None else next(grads) for t in inputs]


# ------------------------------------------------------------------------------------------
# conv: symmetric pads (native), 'same' (native, stride 1), asymmetric pads and padding modes (F.pad)


@st.composite
def torch_conv_problems(draw):
    rank = draw(st.integers(1, 3), label="rank")
    form = draw(st.sampled_from(["symmetric", "asymmetric", "same", "reflect", "replicate", "circular"]), label="form")
    groups = draw(st.integers(1, 3), label="groups")
    in_per_group, out_per_group = draw(st.integers(1, 3), label="C_in/g"), draw(st.integers(1, 3), label="C_out/g")
    kernel, stride, dilation, pads, size = [], [], [], [], []
    budget = 27
    for _ in range(rank):
        k = draw(st.integers(1, max(1, min(4, budget))), label="k")  # odd and even kernels
        budget //= k
        s = 1 if form == "same" else draw(st.integers(1, 3), label="s")  # stride > kernel allowed
        d = draw(st.integers(1, 3), label="d")
        before = draw(st.integers(0, 3), label="p_b")
        after = before if form == "symmetric" else draw(st.integers(0, 3), label="p_a")
        n_min = max(1, d * (k - 1) + 1 - before - after, max(before, after) + 1)
        if form == "same":
            n_min = 1
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        pads.append((before, after))
        size.append(n_min + draw(st.integers(0, 3), label="n extra"))
    bias = draw(st.booleans(), label="bias")
    params = ConvParams(
        input_shape=(draw(st.integers(1, 2), label="N"), groups * in_per_group, *size),
        weight_shape=(groups * out_per_group, in_per_group, *kernel),
        bias_shape=(groups * out_per_group,) if bias else None, stride=tuple(stride),
        padding="same" if form == "same" else tuple(pads), dilation=tuple(dilation), groups=groups,
        padding_mode=form if form in TORCH_PAD_MODES else "zeros",
    )
    return params, form, np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


def torch_conv(x, w, b, params: ConvParams, form: str):
    conv = getattr(F, f"conv{params.rank}d")
    if form == "same":
        return conv(x, w, b, 1, "same", params.dilation, params.groups)
    if form == "symmetric":
        return conv(x, w, b, params.stride, tuple(before for before, _ in params.pads), params.dilation, params.groups)
    x = F.pad(x, flat_pads(params.pads), mode=TORCH_PAD_MODES[params.padding_mode])
    return conv(x, w, b, params.stride, 0, params.dilation, params.groups)


@settings(max_examples=40, deadline=None)
@given(torch_conv_problems())
@example(problem=(  # every feature at once, rank 3
    ConvParams(input_shape=(2, 4, 5, 4, 6), weight_shape=(6, 2, 2, 3, 2), bias_shape=(6,), stride=(1, 2, 3),
               padding=((1, 2), (0, 1), (2, 2)), dilation=(2, 1, 2), groups=2, padding_mode="circular"),
    "circular", np.random.default_rng(0)))
@example(problem=(  # 'same' with an even, dilated kernel: the odd pad goes after
    ConvParams(input_shape=(1, 3, 7, 6), weight_shape=(6, 1, 4, 2), padding="same", dilation=(1, 3), groups=3),
    "same", np.random.default_rng(1)))
@example(problem=(  # stride > kernel, reflect with asymmetric pads
    ConvParams(input_shape=(2, 2, 9), weight_shape=(3, 2, 2), stride=4, padding=((2, 1),), padding_mode="reflect"),
    "reflect", np.random.default_rng(2)))
def test_conv_and_its_gradients_match_torch(problem):
    # CONV-DEF-1, CONV-SHAPE-1, CONV-GRAD-1, CONV-GROUPS-1, PAD-4, PAD-MODE-1
    params, form, rng = problem
    x, w = rng.standard_normal(params.input_shape), rng.standard_normal(params.weight_shape)
    b = None if params.bias_shape is None else rng.standard_normal(params.bias_shape)
    dy = rng.standard_normal(params.output_shape)
    xt, wt, bt = tensors(x, w, b)
    y = torch_conv(xt, wt, bt, params, form)
    compare_all("conv", params, {"x": x, "w": w, "b": b}, {"y": y})
    dx, dw, db = gradients(y, [xt, wt, bt], dy)
    compare_all("conv_backward", params, {"x": x, "w": w, "dy": dy}, {"dx": dx, "dw": dw, "db": db})


def test_same_padding_puts_the_odd_pad_after_like_torch():  # PAD-4
    params = ConvParams(input_shape=(1, 1, 6), weight_shape=(1, 1, 4), padding="same")
    assert params.pads == ((1, 2),)
    x, w = np.arange(6.0)[None, None], np.array([[[1.0, 10, 100, 1000]]])
    y = F.conv1d(torch.tensor(x), torch.tensor(w), padding="same").numpy()
    np.testing.assert_array_equal(R.conv(x, w, None, params), y)


# ------------------------------------------------------------------------------------------
# conv_transpose: symmetric pads natively, asymmetric by cropping the unpadded output


@st.composite
def torch_conv_transpose_problems(draw):
    rank = draw(st.integers(1, 3), label="rank")
    symmetric = draw(st.booleans(), label="symmetric pads")
    groups = draw(st.integers(1, 3), label="groups")
    in_per_group, out_per_group = draw(st.integers(1, 3), label="C_in/g"), draw(st.integers(1, 3), label="C_out/g")
    kernel, stride, dilation, pads, out_pad, size = [], [], [], [], [], []
    budget = 27
    for _ in range(rank):
        k = draw(st.integers(1, max(1, min(4, budget))), label="k")
        budget //= k
        s, d = draw(st.integers(1, 3), label="s"), draw(st.integers(1, 3), label="d")
        op = draw(st.integers(0, max(s, d) - 1), label="output_padding")  # CONVT-PARAM-1
        before = draw(st.integers(0, 3), label="p_b")
        after = before if symmetric else draw(st.integers(0, 3), label="p_a")
        # CONVT-SHAPE-1: (n-1)s - p_b - p_a + d(k-1) + op + 1 >= 1
        n_min = 1 + -(-max(0, before + after - d * (k - 1) - op) // s)
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        pads.append((before, after))
        out_pad.append(op)
        size.append(n_min + draw(st.integers(0, 3), label="n extra"))
    bias = draw(st.booleans(), label="bias")
    params = ConvTransposeParams(
        input_shape=(draw(st.integers(1, 2), label="N"), groups * in_per_group, *size),
        weight_shape=(groups * in_per_group, out_per_group, *kernel),
        bias_shape=(groups * out_per_group,) if bias else None, stride=tuple(stride), padding=tuple(pads),
        output_padding=tuple(out_pad), dilation=tuple(dilation), groups=groups,
    )
    return params, symmetric, np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


def torch_conv_transpose(x, w, b, params: ConvTransposeParams, symmetric: bool):
    conv_transpose = getattr(F, f"conv_transpose{params.rank}d")
    if symmetric:
        return conv_transpose(x, w, b, params.stride, tuple(before for before, _ in params.pads),
                              params.output_padding, params.groups, params.dilation)
    full = conv_transpose(x, w, b, params.stride, 0, params.output_padding, params.groups, params.dilation)
    crop = tuple(slice(before, before + o) for (before, _), o in zip(params.pads, params.output_shape[2:]))
    return full[(slice(None), slice(None), *crop)]


@settings(max_examples=40, deadline=None)
@given(torch_conv_transpose_problems())
@example(problem=(  # asymmetric pads, output_padding, groups, dilation
    ConvTransposeParams(input_shape=(1, 4, 3, 4), weight_shape=(4, 3, 3, 2), bias_shape=(6,), stride=(2, 3),
                        padding=((1, 2), (0, 1)), output_padding=(1, 2), dilation=(1, 2), groups=2),
    False, np.random.default_rng(0)))
def test_conv_transpose_and_its_gradients_match_torch(problem):
    # CONVT-DEF-1, CONVT-SHAPE-1, CONVT-PARAM-1, CONVT-GRAD-1, LAYOUT-3
    params, symmetric, rng = problem
    x, w = rng.standard_normal(params.input_shape), rng.standard_normal(params.weight_shape)
    b = None if params.bias_shape is None else rng.standard_normal(params.bias_shape)
    dy = rng.standard_normal(params.output_shape)
    xt, wt, bt = tensors(x, w, b)
    y = torch_conv_transpose(xt, wt, bt, params, symmetric)
    compare_all("conv_transpose", params, {"x": x, "w": w, "b": b}, {"y": y})
    dx, dw, db = gradients(y, [xt, wt, bt], dy)
    compare_all("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy}, {"dx": dx, "dw": dw, "db": db})


# ------------------------------------------------------------------------------------------
# pools: PyTorch takes symmetric pads of at most kernel_size // 2


@st.composite
def torch_pool_problems(draw, *, dilation: bool):
    rank = draw(st.integers(1, 3), label="rank")
    kernel, stride, dil, pads, size = [], [], [], [], []
    budget = 27
    for _ in range(rank):
        k = draw(st.integers(1, max(1, min(4, budget))), label="k")
        budget //= k
        s = draw(st.integers(1, 4), label="s")  # stride > kernel included
        d = draw(st.integers(1, 3), label="d") if dilation else 1
        p = draw(st.integers(0, k // 2), label="p")
        n_min = max(1, d, d * (k - 1) + 1 - 2 * p)  # n >= d keeps every window non-empty (POOL-WINDOW-1)
        if not dilation and rank == 3:
            n_min = max(n_min, k)  # torch's avg_pool3d refuses inputs smaller than the kernel
        kernel.append(k)
        stride.append(s)
        dil.append(d)
        pads.append(p)
        size.append(n_min + draw(st.integers(0, 4), label="n extra"))
    kwargs = dict(input_shape=(draw(st.integers(1, 2), label="N"), draw(st.integers(1, 3), label="C"), *size),
                  kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(pads), dilation=tuple(dil),
                  ceil_mode=draw(st.booleans(), label="ceil_mode"))
    return kwargs, np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


def integer_data(rng, shape, *, nan: bool, inf: bool):
    """Small integers, so windows hold many ties; NaN and ±inf sprinkled in on request."""
    x = rng.integers(-3, 4, size=shape).astype(np.float64)
    if nan:
        x[rng.random(shape) < 0.08] = np.nan
    if inf:
        x[rng.random(shape) < 0.15] = -np.inf
        x[rng.random(shape) < 0.05] = np.inf
    return x


def index_is_in_window(indices: np.ndarray, params: MaxPoolParams) -> np.ndarray:
    """Whether each flat index lies on a tap p·s − p_b + q·d (0 ≤ q < k) of its window p."""
    coordinates = np.unravel_index(indices, params.input_shape[2:])
    ok = np.ones(indices.shape, dtype=bool)
    for axis, (u, k, s, d, (before, _)) in enumerate(
        zip(coordinates, params.kernel_size, params.stride, params.dilation, params.pads)
    ):
        p = np.arange(params.output_shape[2 + axis]).reshape((-1,) + (1,) * (params.rank - 1 - axis))
        offset = u - (p * s - before)
        ok &= (offset >= 0) & (offset % d == 0) & (offset // d < k)
    return ok


@settings(max_examples=40, deadline=None)
@given(torch_pool_problems(dilation=True), st.booleans(), st.booleans())
@example(  # ceil-mode overhang, dilation, -inf inputs against padding, ties
    problem=(dict(input_shape=(2, 2, 6, 7), kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(1, 2),
                  ceil_mode=True), np.random.default_rng(0)), nan=False, inf=True)
@example(
    problem=(dict(input_shape=(1, 3, 5, 4, 6), kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0),
                  dilation=(2, 1, 1), ceil_mode=True), np.random.default_rng(1)), nan=True, inf=True)
def test_max_pool_values_indices_and_gradient_match_torch(problem, nan, inf):
    # MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1, MAXPOOL-GRAD-1, POOL-CEIL-1, ERR-EXACT-1
    kwargs, rng = problem
    params = MaxPoolParams(**kwargs)
    x = integer_data(rng, params.input_shape, nan=nan, inf=inf)
    xt = torch.tensor(x, requires_grad=True)
    pool = getattr(F, f"max_pool{params.rank}d")
    y, indices = pool(xt, params.kernel_size, params.stride, tuple(p for p, _ in params.pads), params.dilation,
                      ceil_mode=params.ceil_mode, return_indices=True)
    ref_y, ref_indices = R.max_pool(x, params)
    y_np, indices_np = y.detach().numpy(), indices.numpy()
    np.testing.assert_array_equal(ref_y, y_np)  # NaN where torch has NaN, else the same value
    nan_window = np.isnan(ref_y)
    np.testing.assert_array_equal(ref_indices[~nan_window], indices_np[~nan_window])  # ties: the first maximum
    # in a NaN window torch's index must name a NaN of that very window
    planes = x.reshape(*x.shape[:2], -1)
    at_torch_index = np.take_along_axis(planes, indices_np.reshape(*x.shape[:2], -1), axis=-1).reshape(y_np.shape)
    assert np.isnan(at_torch_index[nan_window]).all()
    assert index_is_in_window(indices_np, params)[nan_window].all()
    if not nan:  # with NaNs the routing of the gradient is not unique (MAXPOOL-NAN-1)
        dy = rng.standard_normal(params.output_shape)
        (dx,) = torch.autograd.grad(y, [xt], torch.tensor(dy))
        compare_all("max_pool_backward", params, {"x": x, "dy": dy}, {"dx": dx})


@settings(max_examples=40, deadline=None)
@given(torch_pool_problems(dilation=False), st.booleans(), st.booleans(), st.integers(0, 9))
@example(  # a ceil-mode window overhanging the right padding: counted in the divisor only up to p_a
    problem=(dict(input_shape=(1, 2, 6, 7), kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(1, 1),
                  ceil_mode=True), np.random.default_rng(0)), nan=False, count_include_pad=True, override=0)
@example(
    problem=(dict(input_shape=(1, 2, 6, 7, 5), kernel_size=(3, 2, 2), stride=(2, 3, 2), padding=(1, 1, 1),
                  dilation=(1, 1, 1), ceil_mode=True), np.random.default_rng(1)), nan=True, count_include_pad=False,
    override=5)
def test_avg_pool_and_its_gradient_match_torch(problem, nan, count_include_pad, override):
    # AVGPOOL-DEF-1, AVGPOOL-GRAD-1, AVGPOOL-PARAM-1, POOL-CEIL-1
    kwargs, rng = problem
    rank = len(kwargs["kernel_size"])
    divisor_override = override if override and rank >= 2 else None  # torch: 2-D and 3-D only
    params = AvgPoolParams(**kwargs, count_include_pad=count_include_pad, divisor_override=divisor_override)
    x = integer_data(rng, params.input_shape, nan=nan, inf=False) + rng.random(params.input_shape)
    xt = torch.tensor(x, requires_grad=True)
    pool = getattr(F, f"avg_pool{rank}d")
    extra = {"divisor_override": divisor_override} if rank >= 2 else {}
    y = pool(xt, params.kernel_size, params.stride, tuple(p for p, _ in params.pads), ceil_mode=params.ceil_mode,
             count_include_pad=count_include_pad, **extra)
    compare_all("avg_pool", params, {"x": x}, {"y": y})
    dy = rng.standard_normal(params.output_shape)
    (dx,) = torch.autograd.grad(y, [xt], torch.tensor(dy))
    compare_all("avg_pool_backward", params, {"x": x, "dy": dy}, {"dx": dx})


def test_agreement_check_can_fail():  # ERR-BOUND-1: the comparison itself is not vacuous
    ref, mag = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    assert_agrees("ok", ref, ref * (1 + 4 * U), mag, 1)
    with pytest.raises(pytest.fail.Exception, match="1 of 2 elements"):
        assert_agrees("bad", ref, ref + np.array([0.0, 1e-12]), mag, 4)
