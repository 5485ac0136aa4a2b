"""Pairwise feature coverage: which combinations of two features the generated cases reached.

A bug often needs two things at once ('same' padding with a padding mode, ceil mode without
padding, groups with dilation). For every pair of features an op can use (the vocabulary of
``convspec/spec/features.py``) there are four combinations — both, either one without the other,
neither — and a combination is *covered* when at least one generated case that ran on the backend
has it. Combinations no configuration can have are not counted: a padding mode without padding,
two padding modes at once (PAD-MODE-1), a pool pad over half the kernel without padding
(POOL-WINDOW-1), ``count_include_pad`` without padding (AVGPOOL-DEF-1). Combinations with a
feature the backend declares unsupported for the op are not counted either: its cases never run.

Run ``python -m convspec.conformance.coverage`` to print the coverage the strategies reach at the
default budget without any backend (``--max-examples N --seed S`` to vary it).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ..spec import OPS, AvgPoolParams, ConvParams, ConvTransposeParams

__all__ = ["PairCoverage", "op_features", "pair_coverage"]

_SHARED = ("dilation", "stride", "padding", "asymmetric_padding", "same")
_MODES = ("padding_mode.reflect", "padding_mode.replicate", "padding_mode.circular")

#: feature -> the features it implies (features.py: a padding mode counts only with padding).
#: ``same_strided`` (= same and stride) and ``empty_batch`` (a degenerate N = 0 case that checks
#: little) are left out of the pairs.
IMPLIES: dict[str, frozenset[str]] = {
    **{mode: frozenset({"padding"}) for mode in _MODES},
    "asymmetric_padding": frozenset({"padding"}),
    "pool_padding_over_half_kernel": frozenset({"padding"}),
    "count_include_pad": frozenset({"padding"}),
}
#: Sets of features of which a configuration has at most one (PAD-MODE-1: one padding mode).
EXCLUSIVE: tuple[frozenset[str], ...] = (frozenset(_MODES),)


def op_features(op: str) -> tuple[str, ...]:
    """The features whose pairs are counted for ``op`` (a gradient op: its forward's)."""
    params_type = OPS[op].params_type
    if params_type is ConvParams:
        return ("bias", "groups") + _SHARED + _MODES
    if params_type is ConvTransposeParams:
        return ("bias", "groups") + _SHARED[:4] + ("output_padding",)
    pool = _SHARED + ("ceil_mode", "pool_padding_over_half_kernel")
    return pool + ("count_include_pad", "divisor_override") if params_type is AvgPoolParams else pool


def _feasible(first: str, has_first: bool, second: str, has_second: bool) -> bool:
    if has_first and not has_second and second in IMPLIES.get(first, ()):
        return False
    if has_second and not has_first and first in IMPLIES.get(second, ()):
        return False
    return not (has_first and has_second and any({first, second} <= group for group in EXCLUSIVE))


def combination_name(first: str, has_first: bool, second: str, has_second: bool) -> str:
    """E.g. ``no padding + ceil_mode`` (the two in ``op_features`` order)."""
    return f"{'' if has_first else 'no '}{first} + {'' if has_second else 'no '}{second}"


@dataclass
class PairCoverage:
    """Pairwise coverage of one op: ``covered`` of ``feasible`` combinations over ``cases``."""

    op: str
    cases: int
    feasible: int
    covered: int
    missing: list[str]

    @property
    def fraction(self) -> float:
        return self.covered / self.feasible if self.feasible else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "feasible": self.feasible, "covered": self.covered, "missing": self.missing}

    @classmethod
    def from_json(cls, op: str, obj: Any) -> PairCoverage:
        return cls(op=op, cases=int(obj["cases"]), feasible=int(obj["feasible"]), covered=int(obj["covered"]),
                   missing=list(obj.get("missing", ())))


def pair_coverage(op: str, feature_sets: Iterable[Collection[str]], *,
                  unsupported: Collection[str] = ()) -> PairCoverage:
    """Which feasible combinations of two features of ``op`` the cases (their feature sets,
    ``features_of``) reached. ``unsupported``: features the backend declares it cannot run with
    ``op`` (plain or ``op:feature`` / ``forward:feature`` keys), whose combinations with the
    feature present are not counted.

    >>> cov = pair_coverage("max_pool", [{"stride"}, {"ceil_mode", "padding"}, set()])
    >>> cov.covered < cov.feasible, "no padding + ceil_mode" in cov.missing
    (True, True)
    """
    forward = OPS[op].forward or op
    lacking = {f for f in op_features(op) if f in unsupported or f"{op}:{f}" in unsupported
               or f"{forward}:{f}" in unsupported}
    sets = [frozenset(s) for s in feature_sets]
    features = op_features(op)
    feasible = covered = 0
    missing = []
    for first, second in itertools.combinations(features, 2):
        for has_first, has_second in ((True, True), (True, False), (False, True), (False, False)):
            if not _feasible(first, has_first, second, has_second):
                continue
            if (has_first and first in lacking) or (has_second and second in lacking):
                continue
            feasible += 1
            if any((first in s) == has_first and (second in s) == has_second for s in sets):
                covered += 1
            else:
                missing.append(combination_name(first, has_first, second, has_second))
    return PairCoverage(op=op, cases=len(sets), feasible=feasible, covered=covered, missing=missing)


def strategy_coverage(op: str, *, max_examples: int = 20, seed: int = 0,
                      ranks: tuple[int, ...] = (1, 2, 3)) -> PairCoverage:
    """The coverage of the default generated stream of ``op`` (``strategies.cases``) on its own."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seed_decorator

    from ..spec.features import features_of
    from .strategies import cases

    drawn: list[frozenset[str]] = []

    @seed_decorator(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases(op, ranks=ranks))
    def draw(case: Any) -> None:
        drawn.append(features_of(case.op, case.params_object))

    draw()
    return pair_coverage(op, drawn)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m convspec.conformance.coverage",
                                     description="pairwise feature coverage of the generated cases, per op")
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.max_examples < 1:
        parser.error(f"--max-examples={args.max_examples} must be >= 1")
    for op in OPS:
        cov = strategy_coverage(op, max_examples=args.max_examples, seed=args.seed)
        print(f"{op:<24} {cov.covered:>3}/{cov.feasible:<3} ({cov.fraction:.0%}) of feature pairs in {cov.cases} cases"
              + (f"; missing: {', '.join(cov.missing[:6])}{' …' if len(cov.missing) > 6 else ''}" if cov.missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
