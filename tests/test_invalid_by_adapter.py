"""The ``invalid`` family says "validated by the adapter" when convspec's own adapter code — the
command backend, ``FunctionBackend(validate=True)`` — refused an invalid configuration before the
implementation ran, and counts those apart from passes where the implementation itself raised
(convspec.backends.base.refused_by_adapter, convspec.conformance.checks.invalid.check_invalid).
"""

from __future__ import annotations

from collections import Counter

import pytest

from convspec.backends import FunctionBackend, load
from convspec.conformance import run_conformance
from convspec.conformance.render import render_html, render_markdown

_naive = load("naive")


def statuses(results) -> Counter[str]:
    return Counter(r.status for r in results.all_results() if r.family == "invalid")


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_function_backend_validation_is_the_adapters(isolate):
    backend = FunctionBackend("validated", conv=_naive.conv)
    results = run_conformance(backend, ops=["conv"], checks=["invalid"], isolate=isolate)
    counts = statuses(results)
    assert set(counts) == {"validated_by_adapter"} and counts["validated_by_adapter"] >= 10
    assert results.exit_code == 0
    result = next(iter(results.all_results()))
    assert result.message.startswith("validated by the adapter: InvalidParams:")
    summary = results.summary()
    assert f"invalid {counts['validated_by_adapter']} validated by the adapter" in summary
    assert "its own validation was not exercised" in summary


def test_the_implementations_own_validation_passes():
    backend = FunctionBackend("own", conv=_naive.conv, validate=False)  # naive validates by itself
    results = run_conformance(backend, ops=["conv"], checks=["invalid"])
    assert set(statuses(results)) == {"passed"}
    assert "validated by the adapter" not in results.summary()


def test_command_backend_refusals_are_the_adapters():
    """`convspec check cmd:/bin/true` used to show "invalid 19 passed": /bin/true never ran."""
    results = run_conformance("cmd:/bin/true", ops=["conv"], checks=["invalid"])
    assert set(statuses(results)) == {"validated_by_adapter"}
    assert "invalid 19 validated by the adapter" in results.summary()
    assert "🔹" in render_markdown(results)
    assert "adapter 19" in render_html(results)
