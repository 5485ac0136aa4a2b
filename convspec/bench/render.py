"""The ``convspec bench --json`` format (BENCH_FORMAT, version, :func:`check_bench`) and its rendering:
the Speed section of an HTML or Markdown report (:func:`speed_html`, :func:`speed_markdown`).

The whole-page speed report is :func:`convspec.conformance.render.render_speed`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

BENCH_FORMAT, BENCH_VERSION = "convspec-bench", 1

#: ×baseline bars are drawn to scale up to this ratio (and clipped beyond).
BAR_MAX_RATIO = 4.0


def check_bench(obj: Any) -> None:
    """ValueError unless ``obj`` is ``convspec bench --json`` output this version can show."""
    if not isinstance(obj, Mapping) or obj.get("format") != BENCH_FORMAT:
        raise ValueError(f"not convspec bench output: expected a JSON object with \"format\": \"{BENCH_FORMAT}\"")
    if obj.get("version") != BENCH_VERSION:
        raise ValueError(f"convspec bench output version {obj.get('version')!r}; this convspec reads version "
                         f"{BENCH_VERSION}")
    missing = [key for key in ("machine", "settings", "notes", "rows", "summary") if key not in obj]
    if missing:
        raise ValueError(f"convspec bench output without {', '.join(missing)}")
    if not isinstance(obj["machine"], Mapping) or not isinstance(obj["notes"], list):
        raise ValueError("convspec bench output: machine must be an object and notes a list")
    if not isinstance(obj["settings"], Mapping) or not _is_count(obj["settings"].get("threads"), none=True):
        raise ValueError("convspec bench output: settings.threads must be a non-negative integer or null")
    for part, fields in (("rows", _BENCH_ROW_FIELDS), ("summary", _BENCH_SUMMARY_FIELDS)):
        if not isinstance(obj[part], list):
            raise ValueError(f"convspec bench output: {part} must be a list")
        for index, entry in enumerate(obj[part]):
            for field, kind in fields.items():
                meaning, valid = _BENCH_KINDS[kind]
                if not valid(entry.get(field, ...) if isinstance(entry, Mapping) else ...):  # ...: missing
                    raise ValueError(f"convspec bench output: {part}[{index}].{field} must be {meaning}")


def _is_count(value: Any, *, none: bool = False) -> bool:
    return (value is None and none) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


#: What a field of a bench row or summary line must hold: (its description, its test).
_BENCH_KINDS: dict[str, tuple[str, Any]] = {
    "text": ("a string", lambda value: isinstance(value, str)),
    "count": ("an integer", _is_count),
    "number?": ("a number or null", _is_number_or_none),
}
#: The fields the report reads of a bench row and of a summary line, and their kinds.
_BENCH_ROW_FIELDS = {"suite": "text", "layer": "text", "dtype": "text", "direction": "text", "backend": "text",
                     "status": "text", "median_s": "number?", "gflops": "number?", "ratio_torch": "number?",
                     "ratio_matmul": "number?"}
_BENCH_SUMMARY_FIELDS = {"suite": "text", "dtype": "text", "direction": "text", "backend": "text",
                         "layers": "count", "total_s": "number?", "geomean_gflops": "number?",
                         "geomean_ratio_torch": "number?", "geomean_ratio_matmul": "number?"}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md(text: Any) -> str:
    """Text safe inside a GitHub table cell or summary line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _gflops(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _total_ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.1f}"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.3f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ×"


def _ratio_bar(ratio: float | None) -> str:
    """The ratio and a bar to scale (1 × at a quarter of the width): blue if faster, amber if slower."""
    if ratio is None:
        return '<td class="bar-cell">–</td>'
    width = 120 * min(ratio, BAR_MAX_RATIO) / BAR_MAX_RATIO
    css = "bar" if ratio <= 1 else "bar slow"
    return (f'<td class="bar-cell"><span class="{css}" style="width:{width:.0f}px"></span> '
            f"{_esc(_times(ratio))}</td>")


def _bench_caption(obj: Mapping[str, Any]) -> str:
    machine, settings = obj["machine"], obj["settings"]
    blas = "; ".join(f"{lib.get('internal_api', '')} {lib.get('version') or ''}".strip()
                     + (f" core {lib['architecture']}" if lib.get("architecture") else "")
                     + (f", {_count(lib['num_threads'], 'thread')}" if lib.get("num_threads") else "")
                     for lib in machine.get("blas", [])) or "unknown"
    parts = [str(machine.get("date", "")), str(machine.get("cpu", "")), f"{machine.get('cpu_count', '?')} CPUs",
             f"BLAS {blas}"]
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']} ({machine.get('torch_threads')} threads)")
    if settings.get("threads"):
        parts.append(f"--threads {settings['threads']}")
    load = machine.get("load_average") or {}
    if load.get("before"):
        parts.append(f"load {load['before'][0]:.2f} → {(load.get('after') or load['before'])[0]:.2f}")
    if machine.get("git_commit"):
        parts.append(f"commit {machine['git_commit']}")
    return " · ".join(parts)


def speed_html(obj: Mapping[str, Any]) -> str:
    """One bench run: its machine, the geometric means per suite, the layers folded."""
    baseline = obj["settings"].get("baseline") or "baseline"
    suites = ", ".join(obj["settings"].get("suites", []))
    threads = obj["settings"].get("threads")
    limit = f" · {_count(threads, 'thread')}" if threads else ""  # an int (check_bench)
    out = [f"<h3>Suites {_esc(suites)} · {_esc(', '.join(obj['settings'].get('dtypes', [])))}{limit}</h3>",
           f'<p class="small">{_esc(_bench_caption(obj))}</p>',
           ("<table><tr><th>suite</th><th>dtype</th><th>direction</th><th>backend</th><th>layers</th>"
            f"<th>total ms</th><th>GFLOP/s</th><th>× {_esc(baseline)}</th><th>× matmul</th></tr>")]
    for row in obj["summary"]:
        out.append(f"<tr><td>{_esc(row['suite'])}</td><td>{_esc(row['dtype'])}</td><td>{_esc(row['direction'])}</td>"
                   f"<td>{_esc(row['backend'])}</td><td>{row['layers']}</td><td>{_total_ms(row['total_s'])}</td>"
                   f"<td>{_gflops(row['geomean_gflops'])}</td>{_ratio_bar(row['geomean_ratio_torch'])}"
                   f"<td>{_esc(_times(row['geomean_ratio_matmul']))}</td></tr>")
    out.append('</table><p class="small">Medians of repeated calls; GFLOP/s and ratios are geometric means '
               f"over the layers; × {_esc(baseline)} and × matmul were measured in the same run.</p>")
    out.append(f"<details><summary>Every layer ({len(obj['rows'])} rows)</summary>"
               "<table><tr><th>suite</th><th>layer</th><th>dtype</th><th>direction</th><th>backend</th>"
               f"<th>median ms</th><th>GFLOP/s</th><th>× {_esc(baseline)}</th><th>× matmul</th></tr>")
    for row in obj["rows"]:
        if row["status"] != "ok":
            cells = f'<td colspan="4">{_esc(row["status"])}: {_esc(row.get("message", ""))}</td>'
        else:
            cells = (f"<td>{_ms(row['median_s'])}</td><td>{_gflops(row['gflops'])}</td>"
                     f"{_ratio_bar(row['ratio_torch'])}<td>{_esc(_times(row['ratio_matmul']))}</td>")
        out.append(f"<tr><td>{_esc(row['suite'])}</td><td>{_esc(row['layer'])}</td><td>{_esc(row['dtype'])}</td>"
                   f"<td>{_esc(row['direction'])}</td><td>{_esc(row['backend'])}</td>{cells}</tr>")
    out.append("</table></details>")
    if obj["notes"]:
        out.append('<ul class="small">' + "".join(f"<li>{_esc(note)}</li>" for note in obj["notes"]) + "</ul>")
    return "".join(out)


def speed_markdown(obj: Mapping[str, Any]) -> str:
    baseline = obj["settings"].get("baseline") or "baseline"
    lines = [f"### Speed: {_md(', '.join(obj['settings'].get('suites', [])))}", "", _md(_bench_caption(obj)), "",
             f"| suite | dtype | direction | backend | layers | total ms | GFLOP/s | × {_md(baseline)} | × matmul |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in obj["summary"]:
        lines.append(f"| {_md(row['suite'])} | {_md(row['dtype'])} | {_md(row['direction'])} | {_md(row['backend'])} | "
                     f"{row['layers']} | {_total_ms(row['total_s'])} | {_gflops(row['geomean_gflops'])} | "
                     f"{_times(row['geomean_ratio_torch'])} | {_times(row['geomean_ratio_matmul'])} |")
    if obj["notes"]:
        lines += [""] + [f"- {_md(note)}" for note in obj["notes"]]
    return "\n".join(lines) + "\n"
