"""The frame of every HTML page (the HTML report, the speed page): head, inline stylesheet, navigation.
"""

from __future__ import annotations

from collections.abc import Sequence

from .common import esc

#: The one stylesheet of every page (inline: the page is self-contained).
CSS = """
:root { --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9; --na: #57606a;
  --na-bg: #eef1f4; --line: #d0d7de; --muted: #57606a; --accent: #0969da; --code-bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; }
header.top { background: #24292f; color: #fff; padding: 14px 0; }
header.top .inner { max-width: 1200px; margin: 0 auto; padding: 0 24px; display: flex; align-items: baseline;
  gap: 18px; flex-wrap: wrap; }
header.top h1 { font-size: 20px; margin: 0; font-weight: 600; }
header.top .meta { color: #c9d1d9; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line);
  padding: 8px 0; margin-bottom: 8px; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
.banner { margin: 16px 0 4px; padding: 12px 16px; border-radius: 6px; font-size: 16px; font-weight: 600; }
.glance { margin: 6px 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 8px;
  font-size: 13px; font-weight: 400; }
.glance li { background: #fff; border: 1px solid #ffcecb; border-radius: 4px; padding: 1px 8px; }
.glance a { color: var(--fail); text-decoration: none; }
.banner.pass { background: var(--pass-bg); color: var(--pass); border: 1px solid #aceebb; }
.banner.fail { background: var(--fail-bg); color: var(--fail); border: 1px solid #ffcecb; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
.backend { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.backend h3 { margin: 0 0 6px; font-size: 15px; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.verdict.pass { background: var(--pass-bg); color: var(--pass); }
.verdict.fail { background: var(--fail-bg); color: var(--fail); }
.verdict.na { background: var(--na-bg); color: var(--na); }
.counts { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 4px; font-size: 13px; }
.counts b { font-size: 15px; }
.small { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
th { background: var(--code-bg); font-weight: 600; }
table.matrix { width: 100%; table-layout: fixed; }
table.matrix thead th { position: sticky; top: 37px; z-index: 2; border-bottom: 1px solid var(--line); }
table.matrix col.label { width: 42%; }
table.matrix td.cell { text-align: center; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.matrix tr.op th { background: #eaeef2; font-size: 14px; }
table.matrix tr.op td.cell { font-weight: 600; background: #f6f8fa; }
table.matrix td.label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-left: 22px; }
table.matrix td.label code { font-size: 12px; }
table.matrix td.label .kind { display: inline-block; width: 62px; color: var(--muted); font-size: 11px;
  text-transform: uppercase; letter-spacing: .03em; }
table.matrix td.label .desc { color: var(--muted); margin-left: 6px; }
td.pass { background: var(--pass-bg); color: var(--pass); }
td.fail { background: var(--fail-bg); color: var(--fail); font-weight: 700; }
td.unsupported, td.adapter { background: var(--na-bg); color: var(--na); }
td.known { background: #fff8c5; color: #9a6700; font-weight: 600; }
.expected { border: 1px solid #eac54f; border-left: 4px solid #bf8700; border-radius: 6px; padding: 8px 14px;
  margin: 10px 0; background: #fffdf2; }
td.none { color: #c4c9cf; }
.na-note { color: var(--na); font-weight: 400; font-size: 11px; }
#only-failing:checked ~ table.matrix tbody tr.clean { display: none; }
label.toggle { font-size: 13px; margin-left: 4px; cursor: pointer; }
.legend { font-size: 12px; color: var(--muted); margin: 6px 0 10px; }
.legend span { display: inline-block; padding: 0 6px; border-radius: 3px; margin-right: 6px; }
.failure { border: 1px solid #ffcecb; border-left: 4px solid var(--fail); border-radius: 6px; padding: 10px 14px;
  margin: 10px 0; background: #fff; }
.failure h3 { margin: 0 0 4px; font-size: 14px; }
.failure .clause-text { color: #424a53; margin: 2px 0 8px; }
.failure dl { display: grid; grid-template-columns: 90px 1fr; gap: 2px 10px; margin: 6px 0; }
.failure dt { color: var(--muted); }
.failure dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--code-bg); border: 1px solid #eaeef2; border-radius: 5px; padding: 8px 10px; margin: 4px 0;
  overflow-x: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.repro { margin-top: 8px; }
.repro span { font-size: 12px; color: var(--muted); }
.repro pre.cli { white-space: pre-wrap; overflow-wrap: anywhere; }
table.worst td, table.worst th { font-variant-numeric: tabular-nums; }
.profile { display: grid; grid-template-columns: 620px 1fr; gap: 18px; align-items: start;
  border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 10px 0; }
.profile svg { display: block; }
.profile table { width: 100%; }
.bar-cell { width: 140px; }
.bar { height: 9px; border-radius: 2px; background: #54aeff; display: inline-block; vertical-align: middle; }
.bar.over { background: var(--fail); }
.bar.slow { background: #d4a72c; }
details > summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
.kv td:first-child { color: var(--muted); white-space: nowrap; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
.gap { background: #fff8c5; }
@media (max-width: 1000px) { .profile, .two { grid-template-columns: 1fr; } }
"""


def html_page(title: str, heading: str, meta: str, banner: str, sections: Sequence[tuple[str, str, str]],
               footer: str) -> str:
    nav = "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{esc(name)}</h2>{content}</section>' for key, name, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f'<header class="top"><div class="inner"><h1>{esc(heading)}</h1>'
            f'<span class="meta">{esc(meta)}</span></div></header><main>'
            f"<nav>{nav}</nav>{banner}{body}"
            f'<p class="small">{esc(footer)}</p>'
            "</main></body></html>\n")
