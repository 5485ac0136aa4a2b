"""convspec.bench: the suites are valid spec problems, the work and ratio arithmetic, the JSON form,
the command line, and a run without torch. Timings are never asserted (benchmarks report)."""

from __future__ import annotations

import argparse
import doctest
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convspec import bench
from convspec.backends import Capabilities, loader
from convspec.backends.loader import BuiltinBackend
from convspec.bench import Gemm, Layer, geometric_mean, run_bench
from convspec.spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    conv_output_size,
    init_kwargs,
)

ROOT = Path(__file__).resolve().parents[1]


def tiny_layers() -> list[Layer]:
    """A suite of four tiny layers, one per op kind, ranks 1-3: milliseconds per call."""
    return [
        Layer("conv2d g2", ConvParams(input_shape=(2, 4, 6, 6), weight_shape=(6, 2, 3, 3), groups=2, padding=1,
                                      bias_shape=(6,)), "tiny"),
        Layer("convT1d", ConvTransposeParams(input_shape=(1, 3, 5), weight_shape=(3, 2, 3), stride=2), "tiny"),
        Layer("max3d", MaxPoolParams(input_shape=(1, 2, 4, 4, 4), kernel_size=2), "tiny"),
        Layer("avg2d", AvgPoolParams(input_shape=(1, 2, 5, 5), kernel_size=3, stride=2, padding=1,
                                     count_include_pad=False), "tiny"),
    ]


# -- the suites are spec problems --------------------------------------------------------------

@pytest.mark.parametrize("suite", sorted(bench.SUITES))
def test_suite_layers_are_valid_spec_problems(suite):  # CONV-SHAPE-1 CONVT-SHAPE-1 POOL-SHAPE-1
    layers = bench.suite_layers(suite)
    assert layers and len({layer.name for layer in layers}) == len(layers)
    for layer in layers:
        assert layer.suite == suite
        params = layer.params
        # rebuilding from the constructor arguments validates every rule again and gives the same object
        assert type(params)(**init_kwargs(params)) == params
        assert all(size > 0 for size in params.output_shape)
        assert layer.macs > 0 and layer.flops("backward") >= layer.flops("forward") > 0
        json.dumps(layer.to_json())


def test_suite_shapes_match_the_networks():  # CONV-SHAPE-1
    resnet = {layer.name: layer.params for layer in bench.resnet50(2)}
    assert resnet["stem 7x7/2 3>64 @224"].output_shape == (2, 64, 112, 112)
    assert resnet["s4 1x1 project/2 1024>2048 @14"].output_shape == (2, 2048, 7, 7)
    assert all(p.stride in ((1, 1), (2, 2)) and p.bias_shape is None for p in resnet.values())
    audio = bench.audio1d()
    assert [layer.params.output_shape[2] for layer in audio] == [3199, 1599, 799, 399, 199, 99, 49]
    assert [layer.params.kernel_size[0] for layer in audio] == [10, 3, 3, 3, 3, 2, 2]
    depthwise = [layer.params for layer in bench.mobilenetv2() if layer.name.startswith("dw")]
    assert depthwise and all(p.groups == p.input_shape[1] == p.weight_shape[0] for p in depthwise)
    assert all(p.rank == 3 for p in (layer.params for layer in bench.unet3d()))
    assert {type(layer.params) for layer in bench.pools()} == {MaxPoolParams, AvgPoolParams}


def test_suite_batch_and_unknown_name():
    assert {layer.params.input_shape[0] for layer in bench.suite_layers("unet3d", batch=3)} == {3}
    with pytest.raises(ValueError, match="suite='vgg'"):
        bench.suite_layers("vgg")


# -- work, GEMM shape, ratios --------------------------------------------------------------------

def test_conv_macs_and_gemm_by_hand():  # CONV-DEF-1 CONV-GROUPS-1
    layer = tiny_layers()[0]  # N=2, C_in=4, 6x6 pad 1, C_out=6, 3x3, g=2 -> o = 6x6
    o = conv_output_size(6, 3, 1, 1, (1, 1))
    assert layer.gemm == Gemm(groups=2, m=2 * o * o, n=3, k=2 * 9)
    assert layer.macs == 2 * o * o * 6 * 2 * 9 == layer.gemm.macs
    assert layer.flops("forward") == 2 * layer.macs and layer.flops("backward") == 4 * layer.macs
    assert layer.op("forward") == "conv" and layer.op("backward") == "conv_backward"


def test_conv_transpose_and_pool_work_by_hand():  # CONVT-DEF-1 POOL-WINDOW-1
    convt, max3d, avg2d = tiny_layers()[1:]
    # MACs = N·Πi·C_in·(C_out/g)·ΠK; GEMM M = N·Πi, K = C_in/g, N' = (C_out/g)·ΠK
    assert convt.gemm == Gemm(groups=1, m=5, n=2 * 3, k=3) and convt.macs == 5 * 3 * 2 * 3
    assert max3d.gemm is None and max3d.macs == 2 * 8 * 8 == max3d.flops("backward")
    assert avg2d.macs == 2 * 9 * 9 and avg2d.op("backward") == "avg_pool_backward"
    with pytest.raises(ValueError, match="direction"):
        avg2d.flops("sideways")


def test_geometric_mean():
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert geometric_mean([None, 3.0]) == pytest.approx(3.0)  # type: ignore[list-item]
    assert geometric_mean([]) is None


def test_tiny_suite_runs_with_gflops_and_ratios():
    result = run_bench(["im2col", "naive"], layers=tiny_layers(), repeat=3, warmup=1, baseline="naive")
    rows = result.rows
    # every layer × direction × (im2col, naive), plus a matmul row for the two conv-like layers
    assert len(rows) == 4 * 2 * 2 + 2 * 2
    assert all(row.status == "ok" and len(row.times_s) == 3 for row in rows)
    for row in rows:
        base = next(r for r in rows if (r.layer, r.direction, r.backend) == (row.layer, row.direction, "naive"))
        assert row.ratio_torch == pytest.approx(row.median_s / base.median_s)
        assert row.gflops == pytest.approx(row.flops / row.median_s / 1e9)
        matmul = [r for r in rows if (r.layer, r.direction, r.backend) == (row.layer, row.direction, "matmul")]
        if matmul:
            assert row.ratio_matmul == pytest.approx(row.median_s / matmul[0].median_s)
        else:
            assert row.ratio_matmul is None and row.layer in ("max3d", "avg2d")
    summary = {(s.direction, s.backend): s for s in result.summary}
    im2col = [r for r in rows if r.backend == "im2col" and r.direction == "forward"]
    assert summary["forward", "im2col"].layers == 4
    assert summary["forward", "im2col"].geomean_ratio_torch == pytest.approx(
        math.exp(np.mean([math.log(r.ratio_torch) for r in im2col])))
    assert summary["forward", "naive"].geomean_ratio_torch == pytest.approx(1.0)
    text = result.format_text()
    assert "tiny · float32 · forward" in text and "geomean (4 layers)" in text and "BLAS" in text
    assert "| tiny | float32 | backward | im2col | 4 |" in result.format_markdown()


def test_json_is_valid_and_complete(tmp_path):
    result = run_bench(["im2col"], layers=tiny_layers()[:1], repeat=2, warmup=0, baseline=None,
                       directions=["forward"])
    data = json.loads(result.dumps())
    assert data["format"] == "convspec-bench" and data["version"] == 1
    assert set(data) == {"format", "version", "machine", "settings", "notes", "layers", "rows", "summary"}
    assert {"blas", "blas_source", "environment", "date", "load_average"} <= set(data["machine"])
    assert set(data["machine"]["environment"]) >= {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    assert data["layers"][0]["gemm"] == {"groups": 2, "m": 72, "n": 3, "k": 18}
    assert data["layers"][0]["params"]["input_shape"] == [2, 4, 6, 6]
    row = data["rows"][0]
    assert row["backend"] == "im2col" and row["ratio_torch"] is None and row["ratio_matmul"] > 0
    assert len(row["times_s"]) == 2 and row["median_s"] == pytest.approx(statistics.median(row["times_s"]))
    assert row["gflops"] == pytest.approx(data["layers"][0]["flops"]["forward"] / row["median_s"] / 1e9)
    assert [s["backend"] for s in data["summary"]] == ["im2col", "matmul"]


def test_unavailable_torch_is_a_note_not_a_failure(monkeypatch):
    monkeypatch.setitem(loader.BUILTIN_BACKENDS, "torch",
                        BuiltinBackend("convspec_no_such_module:Backend", requires=("convspec_no_such_torch",)))
    result = run_bench(["im2col"], layers=tiny_layers()[2:], repeat=1, warmup=0)
    assert result.settings["baseline"] is None
    assert any("torch unavailable" in note and "ratios to torch skipped" in note for note in result.notes)
    assert {row.backend for row in result.rows} == {"im2col"}
    assert all(row.status == "ok" and row.ratio_torch is None for row in result.rows)
    assert "note: torch unavailable" in result.format_text()


def test_torch_baseline_when_installed():
    pytest.importorskip("torch")
    result = run_bench(["im2col"], layers=tiny_layers()[:1], repeat=2, warmup=1, directions=["forward"])
    torch_row = next(r for r in result.rows if r.backend == "torch")
    assert torch_row.status == "ok" and torch_row.ratio_torch == pytest.approx(1.0)
    assert result.machine["torch"] is not None


class Partial:
    """A backend that implements conv only, and whose conv raises."""

    name = "partial"
    capabilities = Capabilities(ops=frozenset({"conv"}))

    def conv(self, x, w, b, params):
        raise RuntimeError("kaboom\nsecond line")


def test_unsupported_and_raising_backends_are_reported():
    result = run_bench([Partial()], layers=tiny_layers()[:1], repeat=2, warmup=1, baseline=None)
    by_direction = {row.direction: row for row in result.rows if row.backend == "partial"}
    assert by_direction["forward"].status == "error"
    assert by_direction["forward"].message == "RuntimeError: kaboom"
    assert by_direction["backward"].status == "unsupported"
    assert "conv_backward not implemented" in by_direction["backward"].message
    assert by_direction["forward"].median_s is None and by_direction["forward"].gflops is None
    assert "error: RuntimeError: kaboom" in result.format_text()
    json.loads(result.dumps())


def test_reference_pseudo_backend_float64():
    result = run_bench(["reference"], layers=tiny_layers(), dtypes=["float64"], repeat=1, warmup=0, baseline=None,
                       matmul=False)
    assert {row.backend for row in result.rows} == {"reference"}
    assert all(row.status == "ok" for row in result.rows)
    assert not result.notes
    noted = run_bench(["reference"], layers=tiny_layers()[2:3], repeat=1, warmup=0, baseline=None)
    assert noted.notes == ["reference computes in float64 whatever the input dtype"]


def test_threads_option_runs():
    result = run_bench(["im2col"], layers=tiny_layers()[3:], repeat=1, warmup=0, baseline=None, threads=1)
    assert result.settings["threads"] == 1 and all(row.status == "ok" for row in result.rows)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="repeat=0"):
        run_bench(["im2col"], layers=tiny_layers(), repeat=0)
    with pytest.raises(ValueError, match="sideways"):
        run_bench(["im2col"], layers=tiny_layers(), directions=["sideways"])


# -- the command line ---------------------------------------------------------------------------------

def test_command_line_writes_json_and_markdown(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(bench.SUITES, "tiny", (lambda batch: tiny_layers()[:2], 1))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    args = parser.parse_args(["im2col", "--suite", "tiny", "--repeat", "2", "--ops", "forward", "--baseline", "none",
                              "--json", str(out_json), "--markdown", str(out_md), "--quiet"])
    assert bench.main(args) == 0
    data = json.loads(out_json.read_text())
    assert data["settings"]["suites"] == ["tiny"] and data["settings"]["directions"] == ["forward"]
    assert {row["layer"] for row in data["rows"]} == {"conv2d g2", "convT1d"}
    assert "| layer | GFLOP | im2col | matmul |" in out_md.read_text()
    assert "tiny · float32 · forward" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["--repeat", "0"])


def test_importing_bench_imports_neither_torch_nor_scipy():
    code = "import sys, convspec.bench; print(sorted(m for m in ('torch', 'scipy', 'hypothesis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_run():
    failures, attempted = doctest.testmod(bench, optionflags=doctest.ELLIPSIS)
    assert attempted >= 2 and failures == 0
