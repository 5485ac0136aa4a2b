"""Expected failures: known bugs of an implementation, recorded in a file and reported as such.

The ecosystem's usual way to live with an upstream bug (pytest's ``xfail``, array-api-tests'
``--xfails-file``): ``convspec check torch --xfail known-failures/torch.toml``. A non-conforming
result that an entry matches is reported as ``known_failure`` with the entry's reason — shown,
never counted as non-conforming — and an entry whose scope ran without that failure is reported
as *unexpectedly passed*: a warning, or with ``strict = true`` a non-conformance (the bug was fixed,
or the entry is wrong: remove it). An entry whose scope did not run at all is "not run".

The file is TOML (or JSON of the same shape, chosen by a ``.json`` suffix)::

    [[xfail]]
    backend = "torch"                 # the name or spec the backend was loaded by
    op = "conv"
    dtype = "bfloat16"
    rank = 3                          # spatial rank
    features = ["stride"]             # the case uses every one of these (convspec.spec.features)
    clause = "ERR-BOUND-1"            # the clause the result cites
    reason = "oneDNN bfloat16 conv3d with N=2 and stride (1, 1, 2) on AMX CPUs"   # required
    link = "https://..."              # optional
    strict = false                    # optional (default false)

Every match key is optional (an entry needs at least one) and takes one exact value or a list of
values, any of which matches; ``features`` lists features that must all be used. The first entry
that matches a result wins. Entries are applied after the run (:func:`apply_xfail`), so they never
change what runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec import CLAUSES, DTYPE_NAMES, OPS, ConvSpecError
from ..spec.features import FEATURES
from .results import NONCONFORMING, BackendRun, CheckResult, Results, clauses_met

__all__ = ["MATCH_KEYS", "XfailEntry", "XfailFileError", "apply_xfail", "load_xfail"]

#: The keys an entry matches results by.
MATCH_KEYS = ("backend", "op", "clause", "features", "dtype", "rank")
_OTHER_KEYS = ("reason", "link", "strict")


class XfailFileError(ConvSpecError, ValueError):
    """An expected-failures file that cannot be read; the message names the file, entry and key."""


@dataclass(frozen=True)
class XfailEntry:
    """One expected failure. A match key that is None matches anything.

    Attributes
    ----------
    backend, op, clause, dtype : the values any of which matches (exact, no globs).
    features : features the case must all use.
    rank : spatial ranks any of which matches.
    reason : why it fails (shown with every known failure it matches).
    link : where the bug is tracked, or "".
    strict : an unexpected pass is a non-conformance, not a warning.
    source : where the entry comes from, e.g. ``known-failures/torch.toml entry 1``.
    """

    reason: str
    backend: tuple[str, ...] | None = None
    op: tuple[str, ...] | None = None
    clause: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    dtype: tuple[str, ...] | None = None
    rank: tuple[int, ...] | None = None
    link: str = ""
    strict: bool = False
    source: str = ""

    def applies_to(self, run: BackendRun) -> bool:
        return self.backend is None or run.name in self.backend or run.spec in self.backend

    def in_scope(self, result: CheckResult) -> bool:
        """Whether ``result`` is one this entry speaks of (whatever its status)."""
        case = result.case
        if self.op is not None and result.op not in self.op:
            return False
        if self.clause is not None and not set(self.clause) & set(clauses_met(result)):
            return False
        if self.features is not None and not set(self.features) <= set(result.features):
            return False
        if self.dtype is not None and (case is None or case.dtype not in self.dtype):
            return False
        if self.rank is not None and (case is None or case.params_object.rank not in self.rank):
            return False
        return True

    def keys(self) -> dict[str, Any]:
        """The match keys it sets, as plain JSON values."""
        return {key: list(value) for key in MATCH_KEYS if (value := getattr(self, key)) is not None}


# -- reading ------------------------------------------------------------------------------------------

def _read(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise XfailFileError(f"expected-failures file {str(path)!r}: cannot read it: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise XfailFileError(f"{path}: not valid JSON: {exc}") from exc
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise XfailFileError(f"{path}: reading TOML needs Python 3.11 or the tomli package "
                                 "(pip install tomli); or write the file as .json") from exc
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise XfailFileError(f"{path}: not valid TOML: {exc}") from exc


def _values(where: str, key: str, value: Any, allowed: Iterable[Any] | None, kind: type) -> tuple[Any, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise XfailFileError(f"{where}: key {key!r}: an empty list matches nothing; remove the key to match any")
    for item in items:
        if kind is int and (isinstance(item, bool) or not isinstance(item, int) or item < 1):
            raise XfailFileError(f"{where}: key {key!r}: {item!r} is not a spatial rank (an integer >= 1)")
        if kind is str and (not isinstance(item, str) or not item):
            raise XfailFileError(f"{where}: key {key!r}: {item!r} is not a non-empty string")
        if allowed is not None and item not in allowed:
            known = ", ".join(str(a) for a in allowed)
            raise XfailFileError(f"{where}: key {key!r}: {item!r} is not one of {known}")
    return tuple(items)


_ALLOWED: dict[str, Iterable[Any] | None] = {"backend": None, "op": tuple(OPS), "clause": tuple(CLAUSES),
                                             "features": tuple(FEATURES), "dtype": DTYPE_NAMES, "rank": None}


def _entry(where: str, table: Any) -> XfailEntry:
    if not isinstance(table, Mapping):
        raise XfailFileError(f"{where}: expected a table of keys, got {type(table).__name__}")
    unknown = sorted(set(table) - set(MATCH_KEYS) - set(_OTHER_KEYS))
    if unknown:
        hint = " (did you mean 'features'?)" if "feature" in unknown else ""
        raise XfailFileError(f"{where}: unknown key {unknown[0]!r}{hint}; keys: "
                             f"{', '.join(MATCH_KEYS + _OTHER_KEYS)}")
    reason = table.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise XfailFileError(f"{where}: key 'reason' is required: a non-empty string saying why it fails")
    link, strict = table.get("link", ""), table.get("strict", False)
    if not isinstance(link, str):
        raise XfailFileError(f"{where}: key 'link': {link!r} is not a string")
    if not isinstance(strict, bool):
        raise XfailFileError(f"{where}: key 'strict': {strict!r} is not true or false")
    if not any(key in table for key in MATCH_KEYS):
        raise XfailFileError(f"{where}: no match key: give at least one of {', '.join(MATCH_KEYS)} "
                             "(an entry matching everything would hide every failure)")
    keys = {key: _values(where, key, table[key], _ALLOWED[key], int if key == "rank" else str)
            for key in MATCH_KEYS if key in table}
    return XfailEntry(reason=reason.strip(), link=link, strict=strict, source=where, **keys)


def load_xfail(path: str | os.PathLike[str]) -> list[XfailEntry]:
    """The entries of an expected-failures file (TOML, or JSON for a ``.json`` suffix).

    Raises :class:`XfailFileError` (a ``ValueError``) naming the file, the entry and the key.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "x.toml").write_text('[[xfail]]\\nbackend = "torch"\\nop = "conv"\\nreason = "upstream bug"\\n')
    >>> load_xfail(folder / "x.toml")[0].op
    ('conv',)
    """
    file = Path(path)
    data = _read(file)
    if not isinstance(data, Mapping) or set(data) - {"xfail"}:
        extra = sorted(set(data) - {"xfail"}) if isinstance(data, Mapping) else []
        raise XfailFileError(f"{file}: expected only [[xfail]] entries at the top level"
                             + (f", found key {extra[0]!r}" if extra else ""))
    tables = data.get("xfail", [])
    if not isinstance(tables, list):
        raise XfailFileError(f"{file}: 'xfail' must be a list of entries ([[xfail]] tables)")
    return [_entry(f"{file} entry {number}", table) for number, table in enumerate(tables, 1)]


# -- applying -------------------------------------------------------------------------------------------

def apply_xfail(results: Results, entries: Sequence[XfailEntry]) -> Results:
    """Mark the non-conforming results that an entry matches as ``known_failure`` and record, per
    backend, each applicable entry's outcome ("known failure", "unexpectedly passed", "not run")
    in ``BackendRun.expected_failures``. Returns ``results`` (changed in place)."""
    for run in results.backends:
        applicable = [entry for entry in entries if entry.applies_to(run)]
        matched = [0] * len(applicable)
        ran = [0] * len(applicable)
        for result in run.results:
            scopes = [i for i, entry in enumerate(applicable) if entry.in_scope(result)]
            if result.status in NONCONFORMING and scopes:
                entry = applicable[scopes[0]]
                result.expected = {"reason": entry.reason, "link": entry.link, "strict": entry.strict,
                                   "status": result.status, "source": entry.source}
                result.status = "known_failure"
                matched[scopes[0]] += 1
            if result.status in ("passed", "known_failure", *NONCONFORMING):
                for i in scopes:
                    ran[i] += 1
        for entry, hits, scope in zip(applicable, matched, ran):
            outcome = "known failure" if hits else "unexpectedly passed" if scope else "not run"
            run.expected_failures.append({"source": entry.source, "match": entry.keys(), "reason": entry.reason,
                                          "link": entry.link, "strict": entry.strict, "outcome": outcome,
                                          "matched": hits, "in_scope": scope})
    return results
