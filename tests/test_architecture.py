"""The walls that carry the house: import rules, lazy heavy imports, and SPEC.md ↔ code ↔ tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convspec.spec import CLAUSES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "convspec"

# layer -> layers of ours it may import (README.md, "Development")
ALLOWED = {
    "spec": {"spec"},
    "reference": {"spec", "reference"},
    "backends": {"spec", "backends"},
}


def imported_layers(path: Path) -> set[str]:
    """The convspec subpackages a module imports, resolving relative imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package_parts = path.relative_to(ROOT).with_suffix("").parts[:-1]
    layers = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
                names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            elif node.module:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "convspec" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    offenders = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = imported_layers(path) - ALLOWED[layer]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"forbidden imports: {offenders}"


def test_a_backend_never_imports_the_reference():
    hits = [
        str(path.relative_to(ROOT))
        for path in (PACKAGE / "backends").rglob("*.py")
        if "reference" in imported_layers(path) or "convspec.reference" in path.read_text()
    ]
    assert hits == []


def test_importing_convspec_imports_neither_torch_nor_scipy():
    code = (
        "import sys, convspec, convspec.spec, convspec.backends, convspec.reference;"
        "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def spec_md_clauses() -> list[str]:
    return re.findall(r"^### ([A-Z0-9-]+) — ", (ROOT / "SPEC.md").read_text(), flags=re.M)


def test_spec_md_has_exactly_the_clauses_of_the_code_in_order():  # every clause id is stable
    assert spec_md_clauses() == list(CLAUSES)


def test_every_clause_has_at_least_one_test():  # every clause is tested
    text = "\n".join(path.read_text() for path in (ROOT / "tests").glob("*.py") if path.name != Path(__file__).name)
    untested = [clause for clause in CLAUSES if not re.search(rf"\b{re.escape(clause)}\b", text)]
    assert untested == []


def test_every_clause_cited_in_code_exists():
    cited = set()
    for path in PACKAGE.rglob("*.py"):
        cited.update(re.findall(r"\b((?:[A-Z]+-)+\d+)\b", path.read_text()))
    unknown = sorted(c for c in cited if c not in CLAUSES and not c.startswith(("UTF-", "ISO-")))
    assert unknown == []


def test_documents_cited_in_code_are_in_the_repository():
    """A comment or docstring that cites ``NAME.md`` or ``docs/….md`` names a file of this repository
    (a citation of a file readers do not have explains nothing)."""
    missing = []
    for folder in ("convspec", "tests", "benchmarks", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():  # this file quotes example names
                continue
            for cited in re.findall(r"(?<![\w/.-])((?:docs/[\w.-]+|[A-Z][A-Z_-]*)\.md)\b", path.read_text()):
                if not (ROOT / cited).is_file():
                    missing.append(f"{path.relative_to(ROOT)}: {cited}")
    assert missing == []


def test_the_document_check_catches_a_missing_file(tmp_path):
    """The pattern above finds the citations it is meant to (a check that cannot fail checks nothing)."""
    text = "# see DESIGN.md and docs/nowhere.md, not bench.md or tmp_path / 'r.md'"
    assert re.findall(r"(?<![\w/.-])((?:docs/[\w.-]+|[A-Z][A-Z_-]*)\.md)\b", text) == ["DESIGN.md", "docs/nowhere.md"]
