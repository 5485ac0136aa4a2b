"""Unsupported at run time and optional outputs.

A backend that raises NotImplementedError (or convspec.spec.Unsupported) for a feature is
*unsupported (raised)*: shown with its message, counted apart from declared unsupported cases,
never non-conforming, in every report and under --isolate. A max_pool that cannot return indices
still has its values checked (MAXPOOL-DEF-1) and its indices reported as not compared
(MAXPOOL-INDEX-1). Capabilities may declare a feature unsupported for a gradient op alone.
"""

from __future__ import annotations

import json
import types

import jsonschema
import numpy as np
import pytest

import convspec
import convspec.reference as reference
from convspec.backends import Capabilities, FunctionalBackend, FunctionBackend
from convspec.conformance.render import render_html, render_markdown
from convspec.conformance.results import NONCONFORMING, STATUSES, status_label
from convspec.spec import AvgPoolParams, ConvParams, MaxPoolParams, Unsupported

SCHEMA = json.loads((__import__("pathlib").Path(convspec.__file__).parent / "conformance" / "results_schema.json")
                    .read_text())


def reference_conv(x, w, b, params):
    return reference.conv(x, w, b, params).astype(x.dtype)


def conv_refusing_dilation(exception):
    def conv(x, w, b, params):
        if any(d > 1 for d in params.dilation):
            raise exception("dilation is not implemented yet")
        return reference_conv(x, w, b, params)
    return conv


# ---- NotImplementedError and Unsupported are "unsupported (raised)" ------------------------------


@pytest.mark.parametrize("exception", [NotImplementedError, Unsupported])
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_raising_a_missing_feature_is_unsupported_raised(exception, isolate):  # CONV-DEF-1
    backend = FunctionBackend("no-dilation", conv=conv_refusing_dilation(exception), ranks={1})
    results = convspec.run_conformance(backend, ops=["conv"], ranks=[1], checks=["differential"], max_examples=10,
                                       isolate=isolate)
    assert results.exit_code == 0, results.summary()
    raised = [r for r in results.all_results() if r.status == "unsupported_raised"]
    assert raised and all("dilation" in r.features for r in raised)
    assert all(r.message.startswith(f"raised {exception.__name__}: dilation is not implemented yet") for r in raised)
    assert not any(r.status in NONCONFORMING for r in results.all_results())
    summary = results.summary()
    assert f"{len(raised)} unsupported (raised)" in summary
    assert "unsupported (raised by the backend): raised" in summary


def test_a_full_backend_raising_notimplementederror_is_not_errored():  # AVGPOOL-DEF-1
    class Pools:
        name = "pools"
        capabilities = Capabilities(ops=frozenset({"avg_pool"}), ranks=frozenset({1}))

        def avg_pool(self, x, params):
            if params.divisor_override is not None:
                raise NotImplementedError("divisor_override")
            return reference.avg_pool(x, params).astype(x.dtype)

    cases = ["avg_pool x=1,1,5 k=2 s=2 p=0:1 d=1 ceil cip=1 div=3 dtype=float32 data=random seed=3",
             "avg_pool x=1,1,5 k=2 s=2 p=0:1 d=1 ceil cip=1 dtype=float32 data=random seed=3"]
    results = convspec.run_conformance(Pools(), cases=cases, checks=["differential"])
    assert results.exit_code == 0
    assert [r.status for r in results.all_results()] == ["unsupported_raised", "passed"]


def test_a_lookalike_raising_for_divisor_override_is_not_nonconformant():  # AVGPOOL-DEF-1, POOL-CEIL-1
    """The issue's look-alike: avg_pool raising NotImplementedError on divisor_override hides nothing
    else, and is not non-conformant for it."""

    def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
        if divisor_override is not None:
            raise NotImplementedError("divisor_override is not supported")
        params = AvgPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        return reference.avg_pool(input, params).astype(input.dtype)

    backend = FunctionalBackend(types.SimpleNamespace(avg_pool2d=avg_pool2d), name="no-divisor")
    results = convspec.run_conformance(backend, ranks=[2], max_examples=10)
    assert results.exit_code == 0, results.summary()
    counts = results.backends[0].counts()
    assert counts["unsupported_raised"] > 0 and counts["passed"] > 0


def test_unsupported_raised_travels_through_json_and_every_report():  # CONV-DEF-1
    backend = FunctionBackend("no-dilation", conv=conv_refusing_dilation(NotImplementedError), ranks={1})
    results = convspec.run_conformance(backend, ops=["conv"], ranks=[1], checks=["differential"], max_examples=10)
    data = json.loads(results.dumps())
    jsonschema.validate(data, SCHEMA)
    assert data["backends"][0]["counts"]["unsupported_raised"] > 0
    again = convspec.Results.from_json(data)
    assert again.backends[0].counts() == results.backends[0].counts() and again.conformant
    markdown = render_markdown(results)
    assert "unsupported (declared / raised)" in markdown
    assert f"| {results.backends[0].counts()['unsupported']} / {results.backends[0].counts()['unsupported_raised']} |" \
        in markdown
    html = render_html(results)
    assert "unsupported (raised)" in html and "NotImplementedError" in html
    assert status_label("unsupported_raised") == "unsupported (raised)" and "unsupported_raised" in STATUSES


def test_other_exceptions_stay_errored():  # CONV-DEF-1
    def conv(x, w, b, params):
        raise RuntimeError("boom")

    results = convspec.run_conformance(FunctionBackend("boom", conv=conv, ranks={1}), ops=["conv"], ranks=[1],
                                       checks=["differential"], max_examples=2, catalogue=False)
    assert {r.status for r in results.failures()} == {"errored"}


# ---- max_pool without indices: values checked, indices not compared ---------------------------


def max_pool2d_values(wrong_ceil=False):
    """torch-style max_pool2d without return_indices, on the reference; ``wrong_ceil`` ignores ceil_mode."""

    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode and not wrong_ceil)
        return reference.max_pool(input, params)[0].astype(input.dtype)

    return max_pool2d


def test_a_max_pool_without_return_indices_is_checked_on_its_values():  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    backend = FunctionalBackend(types.SimpleNamespace(max_pool2d=max_pool2d_values()), name="values-only")
    assert "max_pool:indices" in backend.capabilities.unsupported
    results = convspec.run_conformance(backend, ranks=[2], checks=["differential", "hygiene"], max_examples=5)
    assert results.exit_code == 0, results.summary()
    rows = [r for r in results.all_results() if r.clause == "MAXPOOL-INDEX-1"]
    assert rows and {r.status for r in rows} == {"unsupported"}
    assert all(r.message.startswith("indices not compared: max_pool:indices") for r in rows)
    assert "indices not compared" in results.summary()  # visible in the terminal
    assert any(r.status == "passed" and r.comparisons for r in results.all_results() if r.family == "differential")
    buggy = FunctionalBackend(types.SimpleNamespace(max_pool2d=max_pool2d_values(wrong_ceil=True)), name="no-ceil")
    ceil = "max_pool x=1,2,7,7 k=2,2 s=2,2 p=0:0,0:0 d=1,1 ceil dtype=float32 data=random seed=0"
    (failure,) = convspec.run_conformance(buggy, cases=[ceil], checks=["differential"]).failures()
    assert failure.op == "max_pool" and "ceil_mode" in failure.features


def test_a_max_pool_raising_when_asked_for_indices_is_checked_on_its_values():  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    calls = []

    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        calls.append(return_indices)
        if return_indices:
            raise NotImplementedError("no indices yet")
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
        return reference.max_pool(input, params)[0].astype(input.dtype)

    backend = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d), name="refuses-indices")
    assert "max_pool:indices" not in backend.capabilities.unsupported
    results = convspec.run_conformance(backend, ranks=[1], checks=["differential", "special"], max_examples=5)
    assert results.exit_code == 0, results.summary()
    rows = [r for r in results.all_results() if r.clause == "MAXPOOL-INDEX-1"]
    assert rows and {r.status for r in rows} == {"unsupported_raised"}
    assert "max_pool1d(return_indices=True) raised NotImplementedError: no indices yet" in rows[0].message
    assert calls[:2] == [True, False]
    # declared: never asked for
    calls.clear()
    declared = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d), name="declared",
                                 unsupported={"max_pool:indices": "no indices"})
    declared.max_pool(np.zeros((1, 1, 4), np.float32), MaxPoolParams(input_shape=(1, 1, 4), kernel_size=2))
    assert calls == [False]


def test_function_backend_declaring_max_pool_indices():  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    def values(x, params):
        return reference.max_pool(x, params)[0].astype(x.dtype)

    backend = FunctionBackend("values", max_pool=values, ranks={1}, unsupported={"max_pool:indices": "values only"})
    results = convspec.run_conformance(backend, ranks=[1], max_examples=5)
    assert results.exit_code == 0, results.summary()
    assert any(r.message == "indices not compared: max_pool:indices: values only" for r in results.all_results())
    # undeclared and missing: the op table's output is missing (HYGIENE-2)
    silent = FunctionBackend("silent", max_pool=values, ranks={1})
    failures = convspec.run_conformance(silent, ranks=[1], checks=["differential"], max_examples=2).failures()
    assert failures and failures[0].clause == "HYGIENE-2"


# ---- gradient-op capability keys -------------------------------------------------------------


def test_a_feature_can_be_unsupported_for_a_gradient_op_alone():  # PAD-MODE-1, CONV-GRAD-1
    caps = Capabilities(unsupported={"conv_backward:padding_mode.reflect": "forward only"})
    params = ConvParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 3), padding=1, padding_mode="reflect")
    assert caps.unsupported_reason("conv", params, "float32") is None
    assert caps.unsupported_reason("conv_backward", params, "float32") == \
        "conv_backward:padding_mode.reflect: forward only"
    forward = Capabilities(unsupported={"conv:padding_mode.reflect": "none"})  # the op and its gradient
    assert forward.unsupported_reason("conv_backward", params, "float32") == "conv:padding_mode.reflect: none"

    def conv_backward(x, w, dy, params):
        return tuple(reference.conv_backward(x, w, dy, params))

    backend = FunctionBackend("grads", conv=reference_conv, conv_backward=conv_backward, ranks={1},
                              unsupported={"conv_backward:padding_mode.reflect": "forward only"})
    results = convspec.run_conformance(backend, ranks=[1], checks=["differential"], max_examples=5)
    by_op = {(r.op, r.status) for r in results.all_results() if "padding_mode.reflect" in r.features}
    assert ("conv", "passed") in by_op and ("conv_backward", "unsupported") in by_op
    assert ("conv_backward", "passed") not in by_op


@pytest.mark.parametrize("key, message", [
    ("conv_bakward:padding_mode.reflect", "'conv_bakward:padding_mode.reflect' names unknown op 'conv_bakward'"),
    ("conv_backward:reflect", "'conv_backward:reflect' names unknown feature 'reflect'"),
    ("nosuch", "'nosuch' names unknown feature 'nosuch'"),
])
def test_capability_keys_are_validated(key, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Capabilities(unsupported={key: "why"})
