"""A ``Case``: one complete, serialisable check input — op, parameters, dtype, data recipe, seed.

Every case has a one-line *descriptor* that the CLI accepts back (``convspec check B --case``)::

    conv x=2,3,8,8 w=4,3,3,3 b s=2,1 p=1:1,0:2 d=1,1 g=1 dtype=float32 data=random seed=7
    max_pool x=1,2,7,7 k=3,3 s=2,2 p=1:1,1:1 d=1,1 ceil dtype=float16 data=ties seed=0
    avg_pool x=1,1,5 k=2 s=2 p=0:1 d=1 ceil cip=1 div=3 dtype=float32 data=random seed=3
    conv_transpose x=1,4,5 w=4,2,3 s=2 p=1:1 outpad=1 d=1 g=2 dtype=float64 data=integers seed=1

Keys: ``x`` input shape, ``w`` weight shape, ``b`` bias flag, ``k`` pool kernel, ``s`` stride,
``p`` padding (``before:after`` per dim, or a padding string), ``d`` dilation, ``g`` groups,
``mode`` conv padding mode, ``outpad`` output_padding, ``ceil`` ceil_mode flag, ``cip``
count_include_pad, ``div`` divisor_override, ``lp`` lp_pool's p, ``outsize`` conv_transpose output_size. The data recipes are those of :data:`RECIPES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..spec import OPS, ConvParams, ConvTransposeParams, Params, init_kwargs, to_dtype

#: data recipe -> what it is for (TOSA-style data sets).
RECIPES: dict[str, str] = {
    "random": "well-scaled uniform values in [-1, 1]",
    "wide": "signed powers of two over a wide exponent range",
    "cancel": "small values with a few large ones of both signs (cancellation)",
    "zeros": "uniform values with half of them exact zeros",
    "integers": "small integers: every partial sum is exact in the dtype (ERR-EXACT-1)",
    "ties": "values in {-1, 0, 1}: max-pool windows full of ties",
    "impulse": "a single 1 in x, random weights (shrinking target)",
    "nan": "uniform values with NaNs in x (weights finite)",
    "inf": "uniform values with +inf and -inf in x",
    "neg_inf": "half of x is -inf: windows of only -inf",
    "neg_zero": "x in {-0.0, +0.0, -1, 1}: signed-zero ties",
    "nan_zero_w": "NaNs in x; w and dy with exact zero taps and zero channels: 0 * NaN must be NaN",
    "inf_zero_w": "+inf and -inf in x; w and dy with exact zero taps and zero channels: 0 * inf must be NaN",
}

#: recipes whose arrays (x and its companions) are all small integers, exact in every dtype
INTEGER_RECIPES = ("integers", "ties", "neg_zero")
SPECIAL_RECIPES = ("nan", "inf", "neg_inf", "neg_zero", "nan_zero_w", "inf_zero_w")
#: special recipes whose point is the zeros of the weights (and dy): ERR-SPECIAL-1 counts a zero
#: weight tap as a term, so a "sparse" shortcut that skips it loses 0 * NaN = NaN
ZERO_WEIGHT_RECIPES = ("nan_zero_w", "inf_zero_w")

_EXPONENT_RANGE = {"float16": 3, "bfloat16": 10, "float32": 20, "float64": 40}
_INTEGER_RANGE = {"float16": 3, "bfloat16": 2, "float32": 8, "float64": 8}


def _ints(values: Any) -> str:
    return ",".join(str(int(v)) for v in values)


def _parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


@dataclass(frozen=True)
class Case:
    """One check input. ``params`` holds the constructor arguments of the op's parameter object.

    >>> case = Case.parse("conv x=1,2,6 w=3,2,3 s=2 p=1:0 d=1 g=1 dtype=float32 data=random seed=4")
    >>> case.build().output_shape
    (1, 3, 3)
    >>> Case.parse(case.descriptor) == case
    True
    """

    op: str
    params: Mapping[str, Any]
    dtype: str = "float32"
    data: str = "random"
    seed: int = 0
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; ops are {sorted(OPS)}")
        if self.data not in RECIPES:
            raise ValueError(f"unknown data recipe {self.data!r}; recipes are {sorted(RECIPES)}")
        object.__setattr__(self, "params", _per_dim(_canonical(self.params)))

    def __hash__(self) -> int:
        return hash(self.descriptor)

    @classmethod
    def of(cls, op: str, params: Params, **kw: Any) -> Case:
        """The case of ``op`` on an already-built parameter object."""
        return cls(op, init_kwargs(params), **kw)

    @cached_property
    def params_object(self) -> Params:
        return self.build()

    def build(self) -> Params:
        """The validated parameter object (InvalidParams for an invalid configuration)."""
        return OPS[self.op].params_type(**self.params)

    def with_(self, **changes: Any) -> Case:
        """A copy with some of op, params (merged), dtype, data, seed, label changed."""
        params = dict(self.params)
        params.update(changes.pop("params", {}))
        fields_: dict[str, Any] = dict(op=self.op, params=params, dtype=self.dtype, data=self.data, seed=self.seed,
                                       label=self.label)
        fields_.update(changes)
        return Case(**fields_)

    # -- descriptor ------------------------------------------------------------------------
    @property
    def descriptor(self) -> str:
        p = self.params
        words = [self.op, f"x={_ints(p['input_shape'])}"]
        if "weight_shape" in p:
            words.append(f"w={_ints(p['weight_shape'])}")
            if p.get("bias_shape") is not None:
                words.append("b")
        if "kernel_size" in p:
            words.append(f"k={_ints(_tuple(p['kernel_size']))}")
        if p.get("stride") is not None:
            words.append(f"s={_ints(_tuple(p['stride']))}")
        padding = p.get("padding", 0)
        if isinstance(padding, str):
            words.append(f"p={padding}")
        else:
            words.append("p=" + ",".join(f"{a}:{b}" for a, b in _pairs(padding, len(p["input_shape"]) - 2)))
        if "output_padding" in p:
            words.append(f"outpad={_ints(_tuple(p['output_padding']))}")
        words.append(f"d={_ints(_tuple(p.get('dilation', 1)))}")
        if "groups" in p:
            words.append(f"g={p['groups']}")
        if p.get("padding_mode", "zeros") != "zeros":
            words.append(f"mode={p['padding_mode']}")
        if p.get("ceil_mode"):
            words.append("ceil")
        if "count_include_pad" in p:
            words.append(f"cip={int(p['count_include_pad'])}")
        if p.get("divisor_override") is not None:
            words.append(f"div={p['divisor_override']}")
        if "p" in p:  # lp_pool's p (LPPOOL-PARAM-1)
            words.append(f"lp={p['p']}")
        if p.get("output_size") is not None:  # conv_transpose output_size (CONVT-OUTSIZE-1)
            words.append(f"outsize={_ints(_tuple(p['output_size']))}")
        words += [f"dtype={self.dtype}", f"data={self.data}", f"seed={self.seed}"]
        return " ".join(words)

    @classmethod
    def parse(cls, descriptor: str) -> Case:
        """The case of a descriptor; ValueError naming the bad word otherwise."""
        words = descriptor.split()
        if not words or words[0] not in OPS:
            raise ValueError(f"a case descriptor starts with an op name {sorted(OPS)}: {descriptor!r}")
        op = words[0]
        params: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        info = OPS[op]
        is_conv = info.params_type in (ConvParams, ConvTransposeParams)
        for word in words[1:]:
            key, _, value = word.partition("=")
            try:
                if key == "x":
                    params["input_shape"] = _parse_ints(value)
                elif key == "w":
                    params["weight_shape"] = _parse_ints(value)
                elif key == "b" and not value:
                    params["bias_shape"] = "from-weight"
                elif key == "k":
                    params["kernel_size"] = _parse_ints(value)
                elif key == "s":
                    params["stride"] = _parse_ints(value)
                elif key == "p":
                    params["padding"] = value if value[:1].isalpha() else tuple(
                        tuple(int(v) for v in pair.split(":")) for pair in value.split(","))
                elif key == "outpad":
                    params["output_padding"] = _parse_ints(value)
                elif key == "d":
                    params["dilation"] = _parse_ints(value)
                elif key == "g":
                    params["groups"] = int(value)
                elif key == "mode":
                    params["padding_mode"] = value
                elif key == "ceil" and not value:
                    params["ceil_mode"] = True
                elif key == "cip":
                    params["count_include_pad"] = bool(int(value))
                elif key == "div":
                    params["divisor_override"] = int(value)
                elif key == "lp":
                    params["p"] = int(value)
                elif key == "outsize":
                    params["output_size"] = _parse_ints(value)
                elif key in ("dtype", "data"):
                    extra[key] = value
                elif key == "seed":
                    extra["seed"] = int(value)
                else:
                    raise ValueError("unknown key")
            except ValueError as exc:
                raise ValueError(f"cannot read {word!r} in case descriptor {descriptor!r}: {exc}") from exc
        if params.get("bias_shape") == "from-weight":
            w = params["weight_shape"]
            out_channels = w[0] if info.params_type is ConvParams else w[1] * params.get("groups", 1)
            params["bias_shape"] = (out_channels,)
        if is_conv and "weight_shape" not in params:
            raise ValueError(f"a {op} case descriptor needs w=...: {descriptor!r}")
        return cls(op, params, **extra)

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "params": _jsonable(self.params), "dtype": self.dtype, "data": self.data,
                "seed": self.seed, "label": self.label, "descriptor": self.descriptor}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Case:
        return cls(obj["op"], obj["params"], obj.get("dtype", "float32"), obj.get("data", "random"),
                   int(obj.get("seed", 0)), obj.get("label", ""))

    # -- data ------------------------------------------------------------------------------
    def arrays(self) -> dict[str, Any]:
        """The input arrays of the op, drawn from the data recipe with ``seed``, in ``dtype``.

        ``x`` carries the recipe's special values; weights, bias and ``dy`` stay finite (with the
        ``*_zero_w`` recipes, w and dy hold exact zero taps and zero channels).
        """
        params = self.params_object
        rng = np.random.default_rng(self.seed)
        dtype = to_dtype(self.dtype)
        shapes: dict[str, tuple[int, ...] | None] = {"x": params.input_shape, "dy": params.output_shape}
        if isinstance(params, (ConvParams, ConvTransposeParams)):
            shapes.update(w=params.weight_shape, b=params.bias_shape)
        out: dict[str, Any] = {}
        for name in OPS[self.op].inputs:
            shape = shapes.get(name)
            if shape is None:
                out[name] = None
                continue
            values = _draw(self.data if name == "x" else _companion(self.data), shape, self.dtype, rng)
            out[name] = values.astype(dtype)
        return out


def _companion(recipe: str) -> str:
    """The recipe of the arrays other than x: finite, and integer when x is integer."""
    if recipe in ("integers", "ties", "neg_zero"):
        return "integers"
    if recipe in ("wide", "cancel", "zeros"):
        return recipe
    if recipe in ZERO_WEIGHT_RECIPES:
        return "zero_taps"
    return "random"


def _draw(recipe: str, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    size = int(np.prod(shape))
    if recipe == "random" or recipe == "impulse" and size == 0:
        values = rng.uniform(-1.0, 1.0, size)
    elif recipe == "wide":
        span = _EXPONENT_RANGE[dtype]
        values = rng.choice([-1.0, 1.0], size) * np.exp2(rng.integers(-span, span + 1, size))
    elif recipe == "cancel":
        span = _EXPONENT_RANGE[dtype]
        values = rng.uniform(-1.0, 1.0, size) * 2.0**-4
        large = rng.random(size) < 0.1
        values[large] = rng.choice([-1.0, 1.0], int(large.sum())) * 2.0 ** (span // 2)
    elif recipe == "zeros":
        values = rng.uniform(-1.0, 1.0, size) * (rng.random(size) < 0.5)
    elif recipe == "integers":
        r = _INTEGER_RANGE[dtype]
        values = rng.integers(-r, r + 1, size).astype(np.float64)
    elif recipe == "ties":
        values = rng.integers(-1, 2, size).astype(np.float64)
    elif recipe == "impulse":
        values = np.zeros(size)
        values[rng.integers(size)] = 1.0
    elif recipe in ("nan", "nan_zero_w"):
        values = rng.uniform(-1.0, 1.0, size)
        values[rng.random(size) < 0.1] = np.nan
    elif recipe == "zero_taps":  # the companion of the *_zero_w recipes: w and dy
        return _zero_taps(rng.uniform(-1.0, 1.0, size).reshape(shape), rng)
    elif recipe in ("inf", "inf_zero_w"):
        values = rng.uniform(-1.0, 1.0, size)
        which = rng.random(size)
        values[which < 0.05] = np.inf
        values[(which >= 0.05) & (which < 0.1)] = -np.inf
    elif recipe == "neg_inf":
        values = rng.uniform(-1.0, 1.0, size)
        values[rng.random(size) < 0.5] = -np.inf
    elif recipe == "neg_zero":
        values = rng.choice(np.array([-0.0, 0.0, -1.0, 1.0]), size)
    else:  # pragma: no cover - Case.__post_init__ refuses unknown recipes
        raise ValueError(recipe)
    return values.reshape(shape)


def _zero_taps(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with about a third of its spatial taps zero in every channel, and one whole slice
    along each of its first two axes zero (a conv weight's output and input channel, dy's image and
    channel). Arrays without spatial axes (a bias) are returned as they are."""
    if values.ndim < 3 or not values.size:
        return values
    taps = values.reshape(values.shape[0], values.shape[1], -1)
    taps[:, :, rng.random(taps.shape[2]) < 1 / 3] = 0.0
    taps[rng.integers(values.shape[0])] = 0.0
    taps[:, rng.integers(values.shape[1])] = 0.0
    return taps.reshape(values.shape)


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _pairs(padding: Any, rank: int) -> tuple[tuple[int, int], ...]:
    entries = _tuple(padding) if not isinstance(padding, int) else (padding,) * rank
    return tuple((e, e) if isinstance(e, int) else (e[0], e[1]) for e in entries)


_PER_DIM_KEYS = ("kernel_size", "stride", "dilation", "output_padding")


def _per_dim(params: dict[str, Any]) -> dict[str, Any]:
    """One entry per spatial dim for every per-dim argument, and padding as (before, after) pairs
    unless it is a string: equal problems then have equal cases and descriptors round-trip.
    Nothing is validated here; building the parameter object does that."""
    shape = params.get("input_shape")
    if not isinstance(shape, tuple) or len(shape) < 3:
        return params
    rank = len(shape) - 2
    out = dict(params)
    out.setdefault("dilation", 1)
    out.setdefault("padding", 0)
    if "weight_shape" in out:
        out.setdefault("stride", 1)
        out.setdefault("groups", 1)
    for key in _PER_DIM_KEYS:
        if isinstance(out.get(key), int) and not isinstance(out[key], bool):
            out[key] = (out[key],) * rank
    padding = out.get("padding")
    if isinstance(padding, int) and not isinstance(padding, bool):
        out["padding"] = ((padding, padding),) * rank
    elif isinstance(padding, tuple) and len(padding) == rank:
        out["padding"] = tuple((e, e) if isinstance(e, int) and not isinstance(e, bool) else e for e in padding)
    return out


def _canonical(value: Any) -> Any:
    """Lists become tuples (JSON round trips), mappings become plain dicts, numpy ints become ints."""
    if isinstance(value, Mapping):
        return {key: _canonical(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def dumps(cases: list[Case]) -> str:
    """Cases as a JSON list (what ``--cases FILE`` and golden vectors read)."""
    return json.dumps([case.to_json() for case in cases], indent=1)
