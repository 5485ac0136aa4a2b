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


# -- layers inside convspec.conformance ------------------------------------------------------------
# Each module's layer; a module may import its own layer and those below, never one above
# (README.md, "Development"). Packages (checks, properties, render) take the layer of their modules.
CONFORMANCE_LAYERS = {
    # 0 data: cases and their catalogue and strategies, comparisons, results, their clusters,
    #   coverage and expected failures
    "cases": 0, "catalogue": 0, "strategies": 0, "compare": 0, "results": 0, "clusters": 0, "coverage": 0,
    "xfail": 0,
    # 1 calling a backend, and what every check needs
    "invoke": 1, "context": 1,
    # 2 the check families and the properties
    "checks": 2, "properties": 2,
    # 3 streams, orchestration, run_conformance
    "engine": 3,
    # 4 what turns runs into artefacts, and the package's front door
    "render": 4, "campaign": 4, "survey": 4, "vectors": 4, "pytest_plugin": 4, "__init__": 4,
}
#: The one upward import, function-level: Results.summary() (public API) prints with the terminal
#: renderer. Any other upward import fails the test.
UPWARD_ALLOWED = {("results", "render.terminal")}
CONFORMANCE = PACKAGE / "conformance"


def conformance_module(path: Path) -> str:
    """``checks.differential`` for convspec/conformance/checks/differential.py, ``render`` for its __init__."""
    parts = path.relative_to(CONFORMANCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> int:
    return CONFORMANCE_LAYERS[module.split(".")[0]]


def conformance_imports(module: str, source: str, is_package: bool = False) -> list[tuple[str, tuple[str, ...], int]]:
    """(imported conformance module, names imported from it, line) for every import of ``source``
    (function-level and TYPE_CHECKING ones included). ``module`` is the importer's name inside
    convspec.conformance; a name that is a module of ours counts as importing that module."""
    package = ["convspec", "conformance"] + ([] if module == "__init__" else module.split("."))
    if not is_package:
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{base}.{name}" for name in names
                          if (CONFORMANCE.parent.parent / (f"{base}.{name}".replace(".", "/") + ".py")).is_file()
                          or (CONFORMANCE.parent.parent / f"{base}.{name}".replace(".", "/")).is_dir()]
            targets = [(name, ()) for name in submodules] or [(base, names)]
        else:
            continue
        for target, names in targets:
            if target.startswith("convspec.conformance.") and target != "convspec.conformance":
                found.append((target.removeprefix("convspec.conformance."), names, node.lineno))
    return found


def layering_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Upward imports and private names (``_x``) imported from another module."""
    problems = []
    for target, names, line in conformance_imports(module, source, is_package):
        if target.split(".")[0] not in CONFORMANCE_LAYERS:
            continue  # e.g. results_schema.json is data, not a module
        if layer_of(target) > layer_of(module) and (module, target) not in UPWARD_ALLOWED:
            problems.append(f"{module}:{line} imports {target} (layer {layer_of(target)} > {layer_of(module)})")
        private = [name for name in names if name.startswith("_") and not name.startswith("__")]
        if private and target != module:
            problems.append(f"{module}:{line} imports private {', '.join(private)} from {target}")
    return problems


def conformance_sources() -> dict[str, tuple[str, bool]]:
    return {conformance_module(path): (path.read_text(), path.name == "__init__.py")
            for path in sorted(CONFORMANCE.rglob("*.py"))}


def test_every_conformance_module_has_a_layer():
    assert sorted({m for m in conformance_sources() if m.split(".")[0] not in CONFORMANCE_LAYERS}) == []


def test_conformance_imports_only_its_own_layer_and_below_and_no_private_names():
    problems = [p for module, (source, is_package) in conformance_sources().items()
                for p in layering_violations(module, source, is_package)]
    assert problems == []


def test_the_layering_check_catches_a_violation():
    """A check that cannot fail checks nothing: an upward import (function-level too), a private
    name from another module, and both through a package-relative import, are all reported."""
    source = ("from .compare import _fail, compare\n"
              "def run():\n"
              "    from .engine import run_conformance\n"
              "    from .render import terminal\n")
    problems = layering_violations("context", source)
    assert len(problems) == 3, problems
    assert any("imports engine" in p for p in problems) and any("imports render.terminal" in p for p in problems)
    assert any("private _fail from compare" in p for p in problems)
    assert layering_violations("checks.oracle", "from ..engine import run_stream\n") != []
    assert layering_violations("engine", "from .checks.differential import check_differential\n") == []


def test_no_import_cycles_among_conformance_modules():
    """Module-level and function-level imports alike (only the allowed upward edge is left out)."""
    sources = conformance_sources()
    graph = {module: {target for target, _, _ in conformance_imports(module, source, is_package)
                      if target in sources and target != module and (module, target) not in UPWARD_ALLOWED}
             for module, (source, is_package) in sources.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
    assert {"cases", "engine"} <= graph["__init__"] and "context" in graph["checks.differential"]  # it sees imports
