"""Golden vectors: check an implementation in any language without Python bindings.

``export_vectors(DIR)`` writes a vector set — for each case its inputs, the float64 reference
outputs, and what the error model needs (magnitude, K, the bound itself) as ``.npy`` files, plus
one ``manifest.json`` (and a line-per-case ``cases.txt`` for readers without a JSON parser). An
external program reads the inputs and writes its outputs under the same file names into a
results directory; ``check_vectors(DIR, RESULTS)`` applies the error model and returns the same
:class:`~convspec.conformance.results.Results` as ``convspec check``, so every report format and
exit code follows. The format is documented in ``docs/vectors.md``; the manifest entry of a case
is shared with the command backend (:mod:`convspec.backends.command`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import reference
from ..backends.base import Capabilities
from ..backends.command import MANIFEST_FORMAT, MANIFEST_VERSION, load_array, manifest_case, save_array, write_batch
from ..spec import OPS, SPEC_VERSION, UNIT_ROUNDOFF, Params, expected_shapes
from ..spec.accuracy import ALPHA, bound_overflows, error_bound, terms_per_output
from ..spec.dtypes import TINY
from .cases import SPECIAL_RECIPES, Case
from .results import BackendRun, CheckResult, Results
from .context import CheckContext, Settings, check_result, compare_outputs, exact_mask, summarise

__all__ = ["check_vectors", "export_vectors", "generated_cases", "read_manifest"]

#: Generated cases per op when ``count`` is not given.
DEFAULT_COUNT = 10

ERROR_MODEL_TEXT = ("|out - ref| <= bound = (alpha*K*u_acc + alpha*u_in + u_out) * mag + tiny(dtype), elementwise; "
                    "bound = inf where mag*(1 + alpha*K*u_acc) exceeds the dtype's largest finite value; "
                    "ref NaN requires NaN, ref +-inf the same infinity; mag == 0 requires out == ref exactly; "
                    "check 'exact' (max_pool y) requires out == ref bit for bit up to NaN, signed zeros included; "
                    "check 'indices' requires the same index except in windows whose reference is NaN, where "
                    "the index must point at a NaN of that window; where exact_mask is true out == ref exactly")


def generated_cases(op: str, *, ranks: Sequence[int] = (1, 2, 3), dtypes: Sequence[str] = ("float32",),
                    count: int = DEFAULT_COUNT, seed: int = 0) -> list[Case]:
    """``count`` distinct cases of ``op`` drawn from :func:`convspec.conformance.strategies.cases`.

    Deterministic for a given ``seed`` and Hypothesis version: the draws run under
    ``hypothesis.seed(seed)`` with no example database, generation phase only.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as seeded

    from .strategies import cases

    if count <= 0:
        return []
    drawn: dict[str, Case] = {}

    def collect(case: Case) -> None:
        if len(drawn) < count:
            drawn.setdefault(case.descriptor, case)

    run = settings(max_examples=3 * count, database=None, phases=[Phase.generate], deadline=None,
                   derandomize=False, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                   print_blob=False)(given(cases(op, ranks=tuple(ranks), dtypes=tuple(dtypes)))(collect))
    seeded(seed)(run)()
    return list(drawn.values())


def _catalogue(ops: Sequence[str], ranks: Sequence[int], dtypes: Sequence[str]) -> tuple[list[Case], dict[str, Any]]:
    from .catalogue import CATALOGUE, catalogue_cases

    entries = {entry.name: entry for entry in CATALOGUE}
    return catalogue_cases(ops=ops, ranks=ranks, dtypes=dtypes), entries


def _plain(accumulation: str | Mapping[str, str] | None) -> str | dict[str, str] | None:
    """``accumulation`` as a JSON value."""
    return dict(accumulation) if isinstance(accumulation, Mapping) else accumulation


def _bound(mag: np.ndarray, k: int, dtype: str, accumulation: str | None) -> np.ndarray:
    """ERR-BOUND-1 as :func:`convspec.conformance.compare.compare` applies it (overflow: infinite)."""
    bound = error_bound(mag, k, out_dtype=dtype, accumulation=accumulation)
    return np.where(bound_overflows(mag, k, dtype, accumulation), np.inf, bound)


def export_vectors(
    directory: str | os.PathLike[str],
    *,
    ops: Iterable[str] | None = None,
    ranks: Iterable[int] = (1, 2, 3),
    dtypes: Iterable[str] = ("float32",),
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    include_catalogue: bool = True,
    cases: Sequence[Case | str] | None = None,
    accumulation: str | Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write a golden-vector set into ``directory``; returns the manifest (also ``manifest.json``).

    Cases: the catalogue's (``include_catalogue``), ``count`` generated ones per op (deterministic
    for ``seed``), and any explicit ``cases`` (objects or descriptors), without duplicates. For
    each case ``<id>.<input>.npy`` (x, w, b, dy in the case dtype), ``<id>.<output>.npy`` (the
    float64 reference; indices int64), ``<id>.<output>.mag.npy`` and ``<id>.<output>.bound.npy``
    (float64; the bound with ``u_acc`` of ``accumulation`` — a dtype, or per input dtype as in
    :class:`~convspec.backends.Capabilities`; default the case dtype) and, where
    ERR-EXACT-1 applies to part of an output, ``<id>.<output>.exact.npy`` (bool).

    A max_pool_backward case whose x holds a NaN has no golden dx (which NaN receives dy is
    implementation-defined, MAXPOOL-NAN-1): it is listed under ``excluded`` with that reason.
    """
    chosen_ops = list(OPS) if ops is None else list(ops)
    unknown = [op for op in chosen_ops if op not in OPS]
    if unknown:
        raise ValueError(f"ops={unknown} are not ops of the spec; ops are {sorted(OPS)}")
    ranks, dtypes = tuple(ranks), tuple(dtypes)
    accumulating = Capabilities(accumulation=accumulation)  # validates it; accumulation_for per case
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if (root / "manifest.json").exists() or any(root.glob("*.npy")):
        raise ValueError(f"directory={str(root)!r} already holds a vector set; export into an empty directory")

    selected: dict[str, tuple[Case, str]] = {}
    entries_by_name: dict[str, Any] = {}
    if include_catalogue:
        catalogue, entries_by_name = _catalogue(chosen_ops, ranks, dtypes)
        for case in catalogue:
            selected.setdefault(case.descriptor, (case, "catalogue"))
    for op in chosen_ops:
        for case in generated_cases(op, ranks=ranks, dtypes=dtypes, count=count, seed=seed):
            selected.setdefault(case.descriptor, (case, "generated"))
    for item in cases or ():
        case = Case.parse(item) if isinstance(item, str) else item
        selected.setdefault(case.descriptor, (case, "explicit"))

    entries, excluded = [], []
    for number, (case, source) in enumerate(selected.values()):
        case_id = f"{number:05d}_{case.op}"
        op, params = case.op, case.params_object
        arrays = case.arrays()
        if op == "max_pool_backward" and np.isnan(np.asarray(arrays["x"], np.float64)).any():
            excluded.append({"descriptor": case.descriptor, "reason": "x holds a NaN: which NaN receives dy is "
                             "implementation-defined (MAXPOOL-NAN-1), so dx has no golden value"})
            continue
        entry = manifest_case(case_id, op, params, case.dtype, expected_shapes(op, params))
        catalogue_entry = entries_by_name.get(case.label)
        clauses = list(dict.fromkeys((catalogue_entry.clauses if catalogue_entry else ()) + OPS[op].clauses))
        entry.update(descriptor=case.descriptor, source=source, label=case.label,
                     equivalence_class=catalogue_entry.equivalence_class if catalogue_entry else "",
                     data=case.data, seed=case.seed, clauses=clauses, case=case.to_json())
        for name, spec in entry["inputs"].items():
            if spec is not None:
                save_array(root / spec["file"], np.asarray(arrays[name]))
        ref, mags, k_of = reference.evaluate(op, arrays, params), reference.magnitude(op, arrays, params), \
            terms_per_output(op, params)
        nan_ok = reference.zero_extension_nan(op, arrays, params)
        for name, spec in entry["outputs"].items():
            if spec is None:
                continue
            stem = f"{case_id}.{name}"
            value = ref[name]
            np.save(root / spec["file"], np.asarray(value, np.int64 if name == "indices" else np.float64))
            spec["reference_dtype"] = "int64" if name == "indices" else "float64"
            if op == "max_pool":
                spec.update(check="exact" if name == "y" else "indices", mag=None, bound=None, exact_mask=None,
                            nan_ok=None, K=None)
                continue
            mag = np.asarray(mags[name], np.float64)
            k = k_of[name]
            np.save(root / f"{stem}.mag.npy", mag)
            acc = accumulating.accumulation_for(case.dtype)
            np.save(root / f"{stem}.bound.npy", _bound(mag, k, case.dtype, acc))
            mask = exact_mask(op, case, params, arrays, mag, acc)
            if mask is not None and mask.any():
                np.save(root / f"{stem}.exact.npy", mask)
            either = nan_ok.get(name)
            either = None if either is None else either & ~np.isnan(np.asarray(value, np.float64))
            if either is not None and either.any():
                np.save(root / f"{stem}.nan_ok.npy", either)
            spec.update(check="bound", mag=f"{stem}.mag.npy", bound=f"{stem}.bound.npy",
                        exact_mask=f"{stem}.exact.npy" if mask is not None and mask.any() else None,
                        nan_ok=f"{stem}.nan_ok.npy" if either is not None and either.any() else None, K=k,
                        alpha=ALPHA, u_out=UNIT_ROUNDOFF[case.dtype],
                        u_acc=UNIT_ROUNDOFF[acc], u_in=0.0, tiny=TINY[case.dtype])
        entries.append(entry)

    from .. import __version__

    header = {
        "suite_version": __version__, "spec_version": SPEC_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {"ops": chosen_ops, "ranks": list(ranks), "dtypes": list(dtypes), "count": count, "seed": seed,
                     "include_catalogue": include_catalogue, "accumulation": _plain(accumulation)},
        "error_model": {"rule": ERROR_MODEL_TEXT, "alpha": ALPHA, "unit_roundoff": dict(UNIT_ROUNDOFF),
                        "tiny": dict(TINY), "accumulation": _plain(accumulation)},
        "excluded": excluded,
    }
    return write_batch(root, entries, header)


def read_manifest(vector_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a vector set; ValueError when it is missing or of another format."""
    import json

    path = Path(vector_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the vector manifest {path}: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a convspec vector manifest (format {manifest.get('format')!r})")
    if str(manifest.get("format_version", "")).split(".")[0] != MANIFEST_VERSION.split(".")[0]:
        raise ValueError(f"{path} has format_version {manifest.get('format_version')!r}; this convspec reads "
                         f"{MANIFEST_VERSION}")
    return manifest


class _VectorContext(CheckContext):
    """A check context whose magnitudes come from the vector set instead of the reference."""

    def __init__(self, name: str, spec: str, capabilities: Capabilities) -> None:
        backend = SimpleNamespace(name=name, capabilities=capabilities)
        super().__init__(backend, spec, invoker=None, settings=Settings(checks=("differential", "special")))  # type: ignore[arg-type]
        self.mags: dict[str, np.ndarray] = {}

    def magnitude(self, op: str, arrays: dict[str, Any], params: Params) -> dict[str, np.ndarray]:
        return self.mags


def check_vectors(
    vector_dir: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    *,
    name: str = "external",
    accumulation: str | Mapping[str, str] | None = None,
    program: str | None = None,
) -> Results:
    """Check the outputs an external program wrote into ``results_dir`` against a vector set.

    For each case of the manifest: ``results_dir/<id>.<output>.npy`` is compared with the
    reference under the error model (max_pool exactly, with the index rules), exactly as
    ``convspec check`` compares a backend (:func:`convspec.conformance.context.compare_outputs`),
    with ``u_acc`` of ``accumulation`` (a dtype, or per input dtype; default: the case dtype). ``<id>.unsupported`` (a reason)
    makes the case *unsupported*; a missing or unreadable output file fails the case under
    HYGIENE-2, naming the file; an output of the wrong dtype fails HYGIENE-2 as well.
    ``program`` (the command that produced the outputs) makes reproducers name ``cmd:program``;
    without it they say ``cmd:PROGRAM``, to be filled in. Returns one :class:`Results` with a
    single backend called ``name``.
    """
    vectors, outputs_root = Path(vector_dir), Path(results_dir)
    if not outputs_root.is_dir():
        raise ValueError(f"results_dir={str(outputs_root)!r} is not a directory")
    if outputs_root.resolve() == vectors.resolve():
        raise ValueError("results_dir must differ from the vector directory: the program's outputs would "
                         "overwrite the reference outputs, which have the same file names")
    manifest = read_manifest(vectors)
    started = time.perf_counter()
    spec = f"cmd:{program or 'PROGRAM'}"  # reproducers run the program as a command backend
    caps = Capabilities(accumulation=accumulation)
    ctx = _VectorContext(name, spec, caps)
    run = BackendRun(name=name, spec=spec, capabilities={"source": "golden vectors", "vectors": str(vectors),
                                                         "results": str(outputs_root), "accumulation": _plain(accumulation)})
    for entry in manifest["cases"]:
        run.results.extend(_check_entry(ctx, vectors, outputs_root, entry))
    run.seconds = run.harness_seconds = time.perf_counter() - started
    results = Results(backends=[run], settings={
        "vectors": str(vectors), "results_dir": str(outputs_root), "accumulation": _plain(accumulation),
        "vector_settings": manifest.get("settings", {}), "vector_suite_version": manifest.get("suite_version"),
        "cases": len(manifest["cases"]), "excluded": len(manifest.get("excluded", ()))})
    return results


def _check_entry(ctx: _VectorContext, vectors: Path, outputs_root: Path, entry: Mapping[str, Any]) -> list[CheckResult]:
    case = Case.from_json(entry["case"])
    op, params = case.op, case.params_object
    family = "special" if case.data in SPECIAL_RECIPES else "differential"
    clause = OPS[op].clauses[0]
    marker = outputs_root / f"{entry['id']}.unsupported"
    if marker.exists():
        reason = marker.read_text(encoding="utf-8", errors="replace").strip() or "declared unsupported"
        return [check_result(ctx, family, family, op, clause, "unsupported", case, params, reason)]
    arrays = {name: None if spec is None else load_array(vectors / spec["file"], spec["dtype"])
              for name, spec in entry["inputs"].items()}
    expected: dict[str, np.ndarray | None] = {}
    outputs: dict[str, np.ndarray | None] = {}
    ctx.mags = {}
    problems: list[str] = []
    for name, spec in entry["outputs"].items():
        if spec is None:
            expected[name] = None
            continue
        expected[name] = np.load(vectors / spec["file"], allow_pickle=False)
        if spec.get("mag"):  # max_pool is compared exactly and has none
            ctx.mags[name] = np.load(vectors / spec["mag"], allow_pickle=False)
        path = outputs_root / spec["file"]
        if not path.exists():
            outputs[name] = None
            problems.append(f"missing output file {path} (write it, or {entry['id']}.unsupported with a reason)")
            continue
        try:
            outputs[name] = load_array(path, spec["dtype"])
        except (OSError, ValueError) as exc:
            outputs[name] = None
            problems.append(f"unreadable output file {path}: {exc}")
    # compare_outputs reads the inputs only to locate windows (max pool), so float64 copies serve
    # and keep its reference calls on one dtype (DTYPE-1).
    wide = {name: None if value is None else np.asarray(value, np.float64) for name, value in arrays.items()}
    comparisons, notes = compare_outputs(ctx, case, op, params, wide, outputs, expected)  # type: ignore[arg-type]
    status, message = summarise(comparisons)
    failing = next((c for c in comparisons if not c.passed), None)
    results = [check_result(ctx, family, family, op, failing.clause if failing else clause, status, case, params,
                       "; ".join(filter(None, problems + [message] + notes)), comparisons)]
    wrong = [f"{name}: {value.dtype}" for name, value in outputs.items()
             if value is not None and name != "indices" and value.dtype.name != case.dtype]
    if wrong:
        results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-2", "failed", case, params,
                               f"output dtypes {wrong}, expected {case.dtype}"))
    indices = outputs.get("indices")
    if indices is not None and indices.dtype != np.int64:
        results.append(check_result(ctx, "hygiene", "hygiene", op, "MAXPOOL-INDEX-2", "failed", case, params,
                               f"indices have dtype {indices.dtype}, expected int64"))
    return results
