"""Every docstring example of every convspec module runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import convspec

MODULES = sorted(info.name for info in pkgutil.walk_packages(convspec.__path__, "convspec.")
                 if not info.name.endswith(".__main__"))  # importing a __main__ runs it


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_a_wrong_example_fails():
    """The check above can fail: a module whose example is wrong is reported."""
    import types

    module = types.ModuleType("wrong", '"""\n>>> 1 + 1\n3\n"""')
    assert doctest.testmod(module, report=False).failed == 1
