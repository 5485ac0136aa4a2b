"""The pytest plugin: ``pytest --convspec-backend NAME`` runs the conformance suite inside a test run.

Registered under the ``pytest11`` entry point, so installing convspec makes the options available;
nothing runs unless ``--convspec-backend`` is given. One test item per (backend, op, check family,
clause), with ids like ``convspec/im2col::convspec[im2col-conv-differential-ERR-BOUND-1]``;
unsupported features are skips with the backend's reason; failures show the clause, the minimal
case and the reproducers. ``--junitxml`` then gives CI a standard report, one class
(``convspec.im2col``) per backend. The engine is imported only when the option is used.

``--convspec-xfail FILE`` applies an expected-failures file (:mod:`convspec.conformance.xfail`):
a group whose only non-conformances are known failures is an ``xfail`` with the entry's reason,
and each entry that unexpectedly passed is an item marked ``xfail`` that passes — pytest's
``XPASS``, or a failure for a ``strict = true`` entry — exactly as pytest's own xfail markers.
A backend that cannot be loaded, an unknown check, an oracle check without ``--convspec-oracle``
or an unreadable expected-failures file is a usage error (one line, exit code 4).

Under pytest-xdist (``pytest -n auto --convspec-backend X``), or with ``--convspec-shards``, the
items are the campaign's shards instead (:mod:`convspec.conformance.campaign`): one per (backend,
op, unit of checks), e.g. ``convspec[im2col-conv-cases]`` or ``convspec[im2col-conv-adjoint]``,
each running its shard when it runs, so the workers split the work and any item runs alone
(``-k``). A failing shard lists every non-conformance it found with its clause. Expected-failures
entries still turn known failures into xfail; an entry that *unexpectedly passed* is reported
only without shards, where one process sees every result.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest


#: What pytest_configure loaded: the backends, the oracle, the expected-failures entries.
_LOADED = pytest.StashKey[dict[str, Any]]()


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
    group.addoption("--convspec-shards", action="store_true",
                    help="one item per campaign shard (backend, op, unit of checks), run when the item runs; "
                         "automatic under pytest-xdist (-n)")
    group.addoption("--convspec-xfail", default=None, metavar="FILE",
                    help="expected failures (TOML or JSON): known failures become xfail, unexpected passes XPASS")


def pytest_configure(config: Any) -> None:
    """Load the backends, the oracle and the expected-failures file up front: a mistake there is
    a usage error, not a traceback at collection."""
    specs = config.getoption("convspec_backend")
    if not specs:
        return
    from ..backends import load
    from ..spec import ConvSpecError
    from .engine import resolve_checks
    from .xfail import load_xfail

    try:
        resolve_checks(config.getoption("convspec_checks"), bool(config.getoption("convspec_oracle")))
        xfail = config.getoption("convspec_xfail")
        config.stash[_LOADED] = {
            "backends": [load(spec) for spec in specs],
            "oracle": load(config.getoption("convspec_oracle")) if config.getoption("convspec_oracle") else None,
            "xfail": load_xfail(xfail) if xfail else None,
        }
    except (ConvSpecError, ValueError) as exc:
        raise pytest.UsageError(f"convspec: {exc}") from exc


class _ResultsItem(pytest.Item):
    """An item whose failure is a :class:`ConformanceFailure`, shown as the CLI's failure text."""

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class ConformanceItem(_ResultsItem):
    """One (backend, op, family, clause) group of conformance results."""

    def __init__(self, *, results: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def runtest(self) -> None:
        _verdict(self.results)


class ShardItem(_ResultsItem):
    """One campaign shard (backend, op, unit of checks), run when the item runs: under
    pytest-xdist each worker runs only the shards it is given."""

    def __init__(self, *, shard: Any, backend: Any, campaign: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard, self.backend, self.campaign = shard, backend, campaign

    def runtest(self) -> None:
        from .campaign import shard_results
        from .results import Launch, python_path_for
        from .xfail import apply_xfail

        config = self.config
        loaded = config.stash[_LOADED]
        results = shard_results(self.shard, self.campaign, backend=self.backend, oracle=loaded["oracle"])
        (run,) = results.backends
        run.adopt(self.shard.backend, Launch(python_path=python_path_for(self.shard.backend),
                                             oracle=config.getoption("convspec_oracle")))
        if loaded["xfail"] is not None:
            apply_xfail(results, loaded["xfail"])
        _verdict(run.results)


def _verdict(results: list[Any]) -> None:
    """Fail with every non-conformance, xfail when only known failures, skip when nothing ran."""
    from .render.terminal import describe_failure
    from .results import NONCONFORMING, NOT_APPLICABLE

    failures = [r for r in results if r.status in NONCONFORMING]
    if failures:
        raise ConformanceFailure("\n".join(describe_failure(r) for r in failures))
    known = [r for r in results if r.status == "known_failure"]
    if known:
        reasons = sorted({str((r.expected or {}).get("reason", "")) for r in known})
        pytest.xfail(f"known failure ×{len(known)}: " + "; ".join(reasons))
    if all(r.status in NOT_APPLICABLE for r in results):
        pytest.skip("unsupported: " + "; ".join(sorted({r.message for r in results}))[:500])


class ConformanceFailure(Exception):
    """A non-conformance, reported with the CLI's failure text."""


class UnexpectedPassItem(_ResultsItem):
    """An expected-failures entry whose scope ran without failing: marked xfail, it passes, so
    pytest reports XPASS (or, for a strict entry, a failure)."""

    def runtest(self) -> None:
        pass


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    specs = config.getoption("convspec_backend")
    if not specs:
        return
    from .results import Launch, python_path_for
    from .engine import run_conformance
    from .xfail import apply_xfail

    loaded = config.stash[_LOADED]
    if hasattr(config, "workerinput") or config.getoption("convspec_shards"):
        items += _shard_items(session, config, specs, loaded)
        return
    results = run_conformance(
        loaded["backends"], ops=config.getoption("convspec_ops"),
        ranks=config.getoption("convspec_ranks"), dtypes=config.getoption("convspec_dtypes"),
        checks=config.getoption("convspec_checks"), max_examples=config.getoption("convspec_max_examples"),
        seed=config.getoption("convspec_seed"), oracle=loaded["oracle"],
    )
    oracle_spec = config.getoption("convspec_oracle")
    for run, spec in zip(results.backends, specs):
        run.adopt(spec, Launch(python_path=python_path_for(spec), oracle=oracle_spec))
    if loaded["xfail"] is not None:
        apply_xfail(results, loaded["xfail"])
    for run, spec in zip(results.backends, specs):
        groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for result in run.results:
            groups[(result.op, result.family, result.clause)].append(result)
        for entry in run.unexpected_passes:
            name = f"convspec[{run.name}-xfail-entry-{entry['source'].rpartition(' entry ')[2]}]"
            item = UnexpectedPassItem.from_parent(session, name=name, nodeid=f"convspec/{run.name}::{name}")
            item.add_marker(pytest.mark.xfail(reason=f"{entry['reason']} (unexpectedly passed: "
                                                     f"{entry['in_scope']} result(s) in its scope ran)",
                                              strict=bool(entry.get("strict"))))
            items.append(item)
        for (op, family, clause), members in sorted(groups.items()):
            name = f"convspec[{run.name}-{op}-{family}-{clause}]"
            # node id convspec/<backend>::<name>: JUnit's classname is then convspec.<backend>
            items.append(ConformanceItem.from_parent(session, name=name, nodeid=f"convspec/{run.name}::{name}",
                                                     results=members))


def _shard_items(session: Any, config: Any, specs: list[str], loaded: dict[str, Any]) -> list[Any]:
    """One :class:`ShardItem` per campaign shard, in the campaign's canonical order (the same in
    every xdist worker, as xdist requires). Nothing runs at collection."""
    from ..spec import OPS
    from .campaign import Campaign, shards
    from .engine import resolve_checks

    oracle = config.getoption("convspec_oracle")
    campaign = Campaign(ranks=tuple(config.getoption("convspec_ranks")),
                        dtypes=tuple(config.getoption("convspec_dtypes") or ()) or None,
                        checks=resolve_checks(config.getoption("convspec_checks"), bool(oracle)),
                        max_examples=config.getoption("convspec_max_examples"), oracle=oracle)
    backends = dict(zip(specs, loaded["backends"]))
    ops = config.getoption("convspec_ops") or list(OPS)
    items = []
    for shard in shards(specs, ops, campaign, [config.getoption("convspec_seed")]):
        backend = backends[shard.backend]
        name = f"convspec[{backend.name}-{shard.op}-{shard.unit}]"
        items.append(ShardItem.from_parent(session, name=name, nodeid=f"convspec/{backend.name}::{name}",
                                           shard=shard, backend=backend, campaign=campaign))
    return items
