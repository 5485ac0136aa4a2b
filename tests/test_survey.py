"""``convspec survey``: every installed runtime checked the same way, one generated page.

Clauses cited: PAD-4 (the seeded 'same_upper' bug the page must show with its reproducer).
"""

from __future__ import annotations

import mutants
import pytest

from convspec import cli
from convspec.conformance import run_conformance
from convspec.conformance import survey
from convspec.conformance.survey import RUNTIMES, Runtime, inventory, render_survey_markdown, run_survey


def test_inventory_says_what_is_missing(monkeypatch):
    """A runtime whose package is absent is listed as not installed, never silently dropped."""
    monkeypatch.setattr(survey, "_version", lambda package: None if package == "torch" else "1.0")
    rows = {row["spec"]: row for row in inventory()}
    assert rows["torch"]["status"] == "not installed (torch)"
    assert rows["scipy"]["status"] == "checked" and rows["scipy"]["versions"] == {"scipy": "1.0"}
    assert [row["spec"] for row in inventory()] == [runtime.spec for runtime in RUNTIMES]


def test_an_unknown_backend_name_is_not_checked():
    (row,) = inventory([Runtime("nosuch", ("numpy",), "no such backend")])
    assert row["status"] == "not a backend of this convspec version"
    with pytest.raises(ValueError, match="no runtime of the survey is installed"):
        run_survey([Runtime("nosuch", ("numpy",), "no such backend")])


def test_a_survey_page_lists_runtimes_versions_and_the_matrix(tmp_path):
    """One command writes both pages; the Markdown page names the runtime, its version, its verdict
    and the op × clause matrix."""
    md, html = tmp_path / "m.md", tmp_path / "m.html"
    assert cli.main(["survey", "--runtimes", "scipy", "--max-examples", "2", "--quiet",
                     "--markdown", str(md), "--html", str(html)]) == 0
    page = md.read_text(encoding="utf-8")
    assert "| `scipy` |" in page and "conformant" in page and "### Op × clause" in page
    assert "None: every checked runtime conforms." in page
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_every_distinct_failure_is_on_the_page_with_its_reproducer():  # PAD-4
    results = run_conformance(mutants.SameUpperPadsSwapped(), ops=["conv"], ranks=[1, 2], max_examples=10,
                              checks=["differential"])
    assert not results.conformant
    rows = [{"spec": results.backends[0].spec, "what": "a seeded bug", "versions": {"numpy": "x"},
             "status": "checked"}]
    page = render_survey_markdown(results, rows, "convspec survey")
    section = page.split("## Distinct failures", 1)[1].split("## Matrix", 1)[0]
    assert section.count("- **conv** `") >= 1 and "[differential]" in section
    assert "reproduce: `convspec check" in section and "--case" in section
    assert "non-conformant" in page


def test_unknown_runtime_is_a_usage_error(capsys):
    assert cli.main(["survey", "--runtimes", "nosuch"]) == 2
    assert "not a runtime of the survey" in capsys.readouterr().err
