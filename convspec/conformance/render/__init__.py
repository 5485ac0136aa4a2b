"""Reports rendered from a :class:`~convspec.conformance.results.Results`: JSON, Markdown, HTML.

* **JSON** — the results object itself (schema ``results_schema.json``, documented in
  ``docs/results-schema.md``); ``convspec report`` reads it back and merges runs.
* **Markdown** — the verdict per backend and the op × clause matrix, short enough for a
  pull-request comment; the feature rows and each failure folded in ``<details>``.
* **HTML** — one self-contained page (inline CSS and SVG, no script, no network): verdicts, the
  op × clause/feature matrix, a card per failure with its reproducers, the accuracy profile
  (distribution of error / bound over every compared element), coverage by equivalence class and
  feature, environment and settings.

* **Speed** — ``convspec bench --json`` output (format ``convspec-bench``, described in
  :mod:`convspec.bench`) shown beside the results: a Speed section in HTML and Markdown, or a page
  of its own (:func:`render_speed`, from :mod:`convspec.bench.render`).

``write_report(results, path, bench=...)`` picks the format from the suffix. Results carry structure only;
this package turns it into prose: ``terminal`` (the console summary), ``json``, ``markdown``, ``html``
(with ``page``, the frame of every page), and ``common`` (matrix, counts, accuracy profile, helpers).
The bench JSON format and its Speed sections belong to :mod:`convspec.bench.render`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...bench.render import BENCH_FORMAT, check_bench, speed_html, speed_markdown
from ..results import Results
from .common import accuracy_profile, matrix
from .html import render_html
from .json import load_schema, render_json, validate
from .markdown import render_markdown
from .page import html_page

__all__ = [
    "FORMATS",
    "BENCH_FORMAT",
    "accuracy_profile",
    "check_bench",
    "load_schema",
    "matrix",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "render_speed",
    "report_format",
    "validate",
    "write_report",
]

#: file suffix -> format name
FORMATS: dict[str, str] = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html",
                           ".htm": "html"}


# -- choosing and writing ---------------------------------------------------------------------------

def report_format(path: str | os.PathLike[str]) -> str:
    """The format of a report file from its suffix; ValueError names the suffixes known.

    >>> report_format("out/report.HTML")
    'html'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"report file {str(path)!r}: unknown suffix {suffix!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def render(results: Results | None, fmt: str, bench: Sequence[Mapping[str, Any]] = (), *, full: bool = False) -> str:
    """The report text in format ``fmt`` ("json", "markdown" or "html"), with a Speed section for
    each ``convspec bench`` JSON object in ``bench``; ``results`` None gives the speed page alone.
    ValueError for a JSON report with bench results (the results schema has no place for them)."""
    if fmt not in ("json", "markdown", "html"):
        raise ValueError(f"fmt={fmt!r} is not one of ['html', 'json', 'markdown']")
    for obj in bench:
        check_bench(obj)
    if fmt == "json":
        if bench or results is None:
            raise ValueError("a .json report holds conformance results only; write bench results "
                             "into an .html or .md report")
        return render_json(results, full=full)
    if results is None:
        if not bench:
            raise ValueError("nothing to report: no conformance results and no bench results")
        return render_speed(bench, fmt)
    if fmt == "markdown":
        return render_markdown(results) + "".join("\n" + speed_markdown(obj) for obj in bench)
    return render_html(results, bench)


def write_report(results: Results | None, path: str | os.PathLike[str],
                 bench: Sequence[Mapping[str, Any]] = (), *, full: bool = False) -> None:
    """Write ``results`` (and ``bench`` speed results) to ``path`` as JSON, Markdown or HTML,
    chosen by the suffix (.json, .md, .html); parent directories are created. A JSON report keeps
    passed results compact unless ``full``."""
    text = render(results, report_format(path), bench, full=full)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def render_speed(bench: Sequence[Mapping[str, Any]], fmt: str = "html") -> str:
    """A page of ``convspec bench`` results alone, in "html" or "markdown"."""
    if not bench:
        raise ValueError("nothing to report: no bench results")
    for obj in bench:
        check_bench(obj)
    if fmt == "markdown":
        return "## convspec bench\n\n" + "\n".join(speed_markdown(obj) for obj in bench)
    dates = sorted(str(obj["machine"].get("date", "")) for obj in bench)
    meta = f"{len(bench)} run{'s' * (len(bench) != 1)} · {dates[0]}" + (f" – {dates[-1]}" if len(dates) > 1 else "")
    return html_page(f"convspec bench — {dates[0]}", "convspec bench", meta, "",
                      [("speed", "Speed", "".join(speed_html(obj) for obj in bench))],
                      "Generated by convspec bench. Benchmarks report; they never assert times.")
