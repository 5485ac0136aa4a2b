"""``convspec bench --json`` output in reports: a Speed section in the HTML and Markdown reports,
a speed page of its own, and ``convspec report`` telling bench files from results files."""

from __future__ import annotations

import copy
import json

import pytest
from test_bench import tiny_layers
from test_reports import _structure, synthetic_results

from convspec import cli
from convspec.bench import run_bench
from convspec.bench import render as bench_render
from convspec.conformance import render


@pytest.fixture(scope="module")
def bench_json() -> dict:
    """A real bench run of two tiny layers, naive as the baseline (no torch needed)."""
    result = run_bench(["im2col", "naive"], layers=tiny_layers()[:2], repeat=1, warmup=0, baseline="naive")
    return json.loads(result.dumps())


def _self_contained(text: str) -> None:
    parsed = _structure(text)
    assert parsed.errors == [] and parsed.stack == []
    assert parsed.fetching == [] and parsed.tags["script"] == 0


def test_html_report_shows_every_summary_row_and_layer(bench_json):
    results = synthetic_results()
    text = render.render_html(results, [bench_json])
    _self_contained(text)
    assert '<section id="speed">' in text and 'href="#speed"' in text
    assert text.index('id="speed"') < text.index('id="environment"')
    for row in bench_json["summary"]:
        assert f"<td>{row['backend']}</td><td>{row['layers']}</td>" in text
    for layer in ("conv2d g2", "convT1d"):
        assert f"<td>{layer}</td>" in text
    assert "× naive" in text and "1.00 ×" in text  # the baseline against itself
    assert bench_json["machine"]["cpu"] in text
    assert 'id="speed"' not in render.render_html(results)


def test_speed_page_alone_in_html_and_markdown(bench_json):
    page = render.render_speed([bench_json, bench_json])
    _self_contained(page)
    assert page.count("<h3>Suites tiny · float32</h3>") == 2 and "convspec conformance report" not in page
    markdown = render.render_speed([bench_json], "markdown")
    assert markdown.startswith("## convspec bench")
    assert "| tiny | float32 | forward | im2col | 2 |" in markdown
    assert "| tiny | float32 | backward | naive | 2 |" in markdown


def test_markdown_report_appends_the_speed_tables(bench_json):
    text = render.render(synthetic_results(), "markdown", [bench_json])
    assert text.index("## convspec conformance") < text.index("### Speed: tiny")


def test_unfinished_layers_show_their_status(bench_json):
    obj = copy.deepcopy(bench_json)
    obj["rows"][0].update(status="error", message="ValueError: <boom>", median_s=None, gflops=None,
                          ratio_torch=None, ratio_matmul=None)
    text = render.render_html(synthetic_results(), [obj])
    assert '<td colspan="4">error: ValueError: &lt;boom&gt;</td>' in text


@pytest.mark.parametrize(("ratio", "css", "width"), [(0.5, "bar", 15), (1.0, "bar", 30), (2.0, "bar slow", 60),
                                                     (40.0, "bar slow", 120)])
def test_ratio_bars_are_to_scale_and_clipped(ratio, css, width):
    cell = bench_render._ratio_bar(ratio)
    assert f'class="{css}" style="width:{width}px"' in cell and f"{ratio:.2f} ×" in cell
    assert bench_render._ratio_bar(None) == '<td class="bar-cell">–</td>'


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "something else"}, "not convspec bench output"),
    ({"version": 2}, "version 2; this convspec reads version 1"),
    ({"rows": None}, "without rows"),
    ({"notes": "one"}, "notes a list"),
    ({"settings": {"threads": "<script>"}}, "settings.threads must be a non-negative integer or null"),
    ({"summary": [{"suite": "s", "dtype": "float32", "direction": "forward", "backend": "b", "layers": "<i>",
                   "total_s": 1.0, "geomean_gflops": None, "geomean_ratio_torch": None,
                   "geomean_ratio_matmul": None}]}, r"summary\[0\]\.layers must be an integer"),
    ({"rows": [{"suite": "s"}]}, r"rows\[0\]\.layer must be a string"),
])
def test_bench_json_is_checked_before_rendering(bench_json, change, message):
    obj = {key: value for key, value in {**bench_json, **change}.items() if value is not None}
    with pytest.raises(ValueError, match=message):
        render.render_speed([obj])
    with pytest.raises(ValueError, match="nothing to report"):
        render.render_speed([])


def test_missing_values_show_as_dashes_and_text_is_escaped(bench_json):
    obj = copy.deepcopy(bench_json)
    obj["settings"]["baseline"] = "<b>x|y</b>"
    obj["notes"] = ["torch <unavailable>: ratios | skipped"]
    obj["summary"][0].update(geomean_gflops=None, total_s=None, dtype="a|b")
    text = render.render_html(synthetic_results(), [obj])
    assert "<b>x|y</b>" not in text and "&lt;b&gt;x|y&lt;/b&gt;" in text
    assert "<td>–</td><td>–</td>" in text  # total ms and GFLOP/s of the first summary line
    markdown = render.render_speed([obj], "markdown")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert all(line.replace("\\|", "").count("|") == 10 for line in table)  # 9 cells, none split
    assert "| – | – |" in table[2] and "- torch &lt;unavailable&gt;: ratios \\| skipped" in markdown


def test_json_report_refuses_bench_results(bench_json):
    with pytest.raises(ValueError, match=r"\.json report holds conformance results only"):
        render.render(synthetic_results(), "json", [bench_json])
    with pytest.raises(ValueError, match="nothing to report"):
        render.render(None, "html", [])


def test_report_command_tells_bench_files_from_results(bench_json, tmp_path, capsys):
    results_file, bench_file = tmp_path / "run.json", tmp_path / "bench.json"
    results_file.write_text(render.render_json(synthetic_results()), encoding="utf-8")
    bench_file.write_text(json.dumps(bench_json), encoding="utf-8")

    assert cli.main(["report", str(results_file), str(bench_file), "-o", str(tmp_path / "both.html")]) == 0
    both = (tmp_path / "both.html").read_text(encoding="utf-8")
    assert 'id="matrix"' in both and 'id="speed"' in both

    assert cli.main(["report", str(bench_file), "-o", str(tmp_path / "speed.md")]) == 0
    assert "### Speed: tiny" in (tmp_path / "speed.md").read_text(encoding="utf-8")

    assert cli.main(["report", str(results_file), str(bench_file), "-o", str(tmp_path / "x.json")]) == 2
    assert "write bench results into an .html or .md report" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_heading_names_the_thread_limit(bench_json):
    obj = copy.deepcopy(bench_json)
    assert "thread" not in bench_render.speed_html(obj).split("</h3>")[0]
    obj["settings"]["threads"] = 1
    assert bench_render.speed_html(obj).split("</h3>")[0].endswith("float32 · 1 thread")
