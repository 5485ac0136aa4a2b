"""The JSON report: the results object itself, and its JSON Schema (``results_schema.json``,
documented in docs/results-schema.md) to validate it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..results import Results


def finite_json(value: Any) -> Any:
    """Non-finite floats as the strings of the schema ('inf', '-inf', 'nan'), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {key: finite_json(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def render_json(results: Results, full: bool = False) -> str:
    """The results as JSON (the schema of ``results_schema.json``). Passed results are compact
    (descriptor, label, features, per-output histogram) and the text unindented unless ``full``:
    a default run's report is about 3.5 times smaller (naive: 3.2 MB -> 0.9 MB)."""
    obj = finite_json(results.to_json(compact=not full))
    if full:
        return json.dumps(obj, indent=1, allow_nan=False) + "\n"
    return json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n"  # one line: `jq .` reads it


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema of results (``convspec/conformance/results_schema.json``)."""
    from importlib import resources

    text = resources.files("convspec.conformance").joinpath("results_schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def validate(obj: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` (parsed results JSON) meets the schema.

    Needs the ``jsonschema`` package (in the ``test`` extra).
    """
    import jsonschema

    jsonschema.Draft202012Validator(load_schema()).validate(obj)
