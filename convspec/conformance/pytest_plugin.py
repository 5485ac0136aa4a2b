"""The pytest plugin: ``pytest --convspec-backend NAME`` runs the conformance suite inside a test run.

Registered under the ``pytest11`` entry point, so installing convspec makes the options available;
nothing runs unless ``--convspec-backend`` is given. One test item per (backend, op, check family,
clause), with ids like ``convspec/im2col::convspec[im2col-conv-differential-ERR-BOUND-1]``;
unsupported features are skips with the backend's reason; failures show the clause, the minimal
case and the reproducers. ``--junitxml`` then gives CI a standard report, one class
(``convspec.im2col``) per backend. The engine is imported only when the option is used.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("convspec", "convspec conformance suite")
    group.addoption("--convspec-backend", action="append", default=[], metavar="SPEC",
                    help="check this backend (naive, im2col, torch, module:attr, file.py:attr); repeatable")
    group.addoption("--convspec-ops", nargs="+", default=None, metavar="OP", help="ops to check (default: all)")
    group.addoption("--convspec-ranks", nargs="+", type=int, default=[1, 2, 3], metavar="M")
    group.addoption("--convspec-dtypes", nargs="+", default=None, metavar="DTYPE")
    group.addoption("--convspec-checks", nargs="+", default=None, metavar="CHECK")
    group.addoption("--convspec-max-examples", type=int, default=20, metavar="N")
    group.addoption("--convspec-seed", type=int, default=0, metavar="S")
    group.addoption("--convspec-oracle", default=None, metavar="SPEC")


class ConformanceItem(pytest.Item):
    """One (backend, op, family, clause) group of conformance results."""

    def __init__(self, *, results: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def runtest(self) -> None:
        from .report import describe_failure
        from .results import NONCONFORMING, NOT_APPLICABLE

        failures = [r for r in self.results if r.status in NONCONFORMING]
        if failures:
            raise ConformanceFailure("\n".join(describe_failure(r) for r in failures))
        if all(r.status in NOT_APPLICABLE for r in self.results):
            pytest.skip("unsupported: " + "; ".join(sorted({r.message for r in self.results}))[:500])

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class ConformanceFailure(Exception):
    """A non-conformance, reported with the CLI's failure text."""


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    specs = config.getoption("convspec_backend")
    if not specs:
        return
    from ..backends import load
    from .runner import run_conformance

    results = run_conformance(
        [load(spec) for spec in specs], ops=config.getoption("convspec_ops"),
        ranks=config.getoption("convspec_ranks"), dtypes=config.getoption("convspec_dtypes"),
        checks=config.getoption("convspec_checks"), max_examples=config.getoption("convspec_max_examples"),
        seed=config.getoption("convspec_seed"), oracle=config.getoption("convspec_oracle"),
    )
    for run, spec in zip(results.backends, specs):
        groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for result in run.results:
            result.backend_spec = spec
            groups[(result.op, result.family, result.clause)].append(result)
        for (op, family, clause), members in sorted(groups.items()):
            name = f"convspec[{run.name}-{op}-{family}-{clause}]"
            # node id convspec/<backend>::<name>: JUnit's classname is then convspec.<backend>
            items.append(ConformanceItem.from_parent(session, name=name, nodeid=f"convspec/{run.name}::{name}",
                                                     results=members))
