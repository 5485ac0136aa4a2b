"""Packaging: every third-party module that convspec's own code imports is a declared dependency
(a fresh `pip install convspec` must run `convspec check` and `convspec bench`), except the optional
runtimes, which are imported lazily and only by the backends that wrap them."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "convspec"

#: import name -> distribution name, where they differ.
DISTRIBUTION = {"ml_dtypes": "ml-dtypes"}
#: optional runtimes (extras or the user's own environment), never needed by `convspec check` itself.
OPTIONAL = {"torch", "jax", "pytest", "jsonschema"}


def _declared() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)\]", text, flags=re.S | re.M)
    assert block, "pyproject.toml has no dependencies list"
    return {re.sub(r"[-_.]+", "-", name).lower() for name in re.findall(r'"([A-Za-z0-9_.\-]+)', block.group(1))}


def _third_party_imports() -> dict[str, str]:
    """Top-level third-party module -> the first file importing it."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "convspec":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_a_dependency_or_optional() -> None:
    declared = _declared()
    missing = {module: where for module, where in _third_party_imports().items()
               if module not in OPTIONAL and DISTRIBUTION.get(module, module).lower() not in declared}
    assert not missing, f"imported by convspec but not in pyproject's dependencies: {missing}"


def test_check_and_bench_needs_are_core_dependencies() -> None:
    # hypothesis draws the cases of `convspec check`; ml_dtypes holds its default bfloat16 cases;
    # threadpoolctl pins OpenBLAS for `convspec bench --threads 1` (without it torch's ratios skew 2-5x).
    assert {"numpy", "scipy", "hypothesis", "threadpoolctl", "ml-dtypes"} <= _declared()
    assert "torch" not in _declared()
