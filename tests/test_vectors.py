"""Golden vectors and the command backend, end to end with the C example (examples/c).

Export → the C program → check_vectors passes; the same program built with a one-line seeded
bug fails under the clause it breaks (MAXPOOL-TIE-1 for the tie-breaking bug, AVGPOOL-DEF-1's
divisor on count_include_pad cases for the divisor bug). The command backend runs the same binary
batch-wise. Tests that need the C compiler skip when ``cc`` is not installed.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convspec.reference as reference
from convspec.backends import Capabilities
from convspec.backends.command import DEFAULT_CAPABILITIES, CommandBackend, case_line, load_array, save_array
from convspec.conformance.cases import Case
from convspec.conformance.compare import compare
from convspec.conformance.vectors import check_vectors, export_vectors, generated_cases, read_manifest
from convspec.spec import OPS, MaxPoolParams, Unsupported
from convspec.spec.accuracy import terms_per_output

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "c"
CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler: `cc` is not installed")

OPS_C = ("conv", "max_pool", "avg_pool")
#: Cases that make each seeded bug visible whatever the generator draws.
TIES = "max_pool x=1,2,6,6 k=3,3 s=1,1 p=1:1,1:1 d=1,1 dtype=float32 data=ties seed=0"
COUNTED_PAD = "avg_pool x=1,2,7 k=3 s=2 p=1:1 d=1 cip=1 dtype=float32 data=random seed=4"
SAME_LOWER = "conv x=1,2,7 w=3,2,4 s=1 p=same_lower d=1 g=1 dtype=float32 data=random seed=2"


def _build(directory: Path, bug: int = 0) -> Path:
    binary = directory / f"convspec_c_bug{bug}"
    subprocess.run([CC, "-O2", "-std=c99", "-Wall", "-Werror", f"-DBUG={bug}", "-o", str(binary),
                    str(EXAMPLE / "convspec_c.c"), str(EXAMPLE / "npy.c"), "-lm"], check=True)
    return binary


def _run(binary: Path, vectors: Path, out: Path) -> None:
    """The README's flow: the program creates its output folder."""
    assert not out.exists()
    subprocess.run([str(binary), str(vectors), str(out)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    """Catalogue + 6 generated cases per op of conv, max_pool, avg_pool (float32, ranks 1-3)."""
    directory = tmp_path_factory.mktemp("vectors")
    export_vectors(directory, ops=OPS_C, count=6, seed=0, cases=[TIES, COUNTED_PAD, SAME_LOWER])
    return directory


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict[int, Path]:
    if CC is None:
        pytest.skip("no C compiler: `cc` is not installed")
    directory = tmp_path_factory.mktemp("build")
    return {bug: _build(directory, bug) for bug in (0, 1, 2)}


def _perfect_outputs(vectors: Path, out: Path) -> dict:
    """What a correctly rounding implementation writes: the reference in the case dtype."""
    out.mkdir()
    manifest = read_manifest(vectors)
    for entry in manifest["cases"]:
        for spec in entry["outputs"].values():
            if spec is not None:
                save_array(out / spec["file"], np.load(vectors / spec["file"]).astype(spec["dtype"]))
    return manifest


# -- the vector set itself --------------------------------------------------------------------------

def test_manifest_lists_every_case_with_explicit_pads_and_files(vectors):
    """PAD-5: a 'same_lower' case carries its resolved pads, so no convention is guessed."""
    manifest = read_manifest(vectors)
    assert manifest["format"] == "convspec-vectors" and manifest["format_version"] == "1.0"
    entries = {entry["descriptor"]: entry for entry in manifest["cases"]}
    same = entries[SAME_LOWER]
    assert same["params"]["pads"] == [[2, 1]] and same["params"]["padding_requested"] == "same_lower"
    assert same["params"]["kernel_size"] == [4] and same["params"]["output_shape"] == [1, 3, 7]
    assert same["inputs"]["b"] is None and same["outputs"]["y"]["K"] == 2 * 4
    assert {"catalogue", "generated", "explicit"} <= {entry["source"] for entry in manifest["cases"]}
    for entry in manifest["cases"]:
        assert entry["op"] in OPS_C and entry["dtype"] == "float32"
        assert set(OPS[entry["op"]].clauses) <= set(entry["clauses"])
        for spec in list(entry["inputs"].values()) + list(entry["outputs"].values()):
            if spec is not None:
                assert np.load(vectors / spec["file"]).shape == tuple(spec["shape"])
    lines = (vectors / "cases.txt").read_text().splitlines()
    assert lines == [case_line(entry) for entry in manifest["cases"]]


def test_bound_files_apply_the_error_model(vectors):
    """ERR-BOUND-1: the float32 rounding of the reference lies within the written bound, and the
    bound file is what compare() derives from the magnitude file and K."""
    manifest = read_manifest(vectors)
    for entry in manifest["cases"][:40]:
        for name, spec in entry["outputs"].items():
            if spec is None or spec["check"] != "bound":
                continue
            ref = np.load(vectors / spec["file"])
            bound = np.load(vectors / spec["bound"])
            mag = np.load(vectors / spec["mag"])
            rounded = ref.astype(np.float32).astype(np.float64)
            finite = np.isfinite(ref) & np.isfinite(rounded)
            assert np.all(np.abs(rounded[finite] - ref[finite]) <= bound[finite])
            direct = compare(name, rounded.astype(np.float32), ref, None, k=spec["K"], dtype="float32",
                             bound=bound)
            via_mag = compare(name, rounded.astype(np.float32), ref, mag, k=spec["K"], dtype="float32")
            assert direct.max_ratio == pytest.approx(via_mag.max_ratio)


def test_max_pool_outputs_are_checked_exactly(vectors):
    """ERR-EXACT-1, MAXPOOL-INDEX-1: y is exact, indices are int64 flat indices."""
    manifest = read_manifest(vectors)
    pool = next(e for e in manifest["cases"] if e["descriptor"] == TIES)
    assert pool["outputs"]["y"]["check"] == "exact" and pool["outputs"]["indices"]["check"] == "indices"
    assert np.load(vectors / pool["outputs"]["indices"]["file"]).dtype == np.int64


def test_export_is_deterministic_for_a_seed(tmp_path):
    first = export_vectors(tmp_path / "a", ops=["avg_pool", "conv_backward"], count=3, seed=7, include_catalogue=False)
    second = export_vectors(tmp_path / "b", ops=["avg_pool", "conv_backward"], count=3, seed=7, include_catalogue=False)
    assert [e["descriptor"] for e in first["cases"]] == [e["descriptor"] for e in second["cases"]]
    for path in sorted((tmp_path / "a").glob("*.npy")):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    other = generated_cases("avg_pool", count=3, seed=8)
    assert [c.descriptor for c in other] != [e["descriptor"] for e in first["cases"] if e["op"] == "avg_pool"]


def test_export_refuses_a_directory_holding_vectors(vectors):
    with pytest.raises(ValueError, match="already holds a vector set"):
        export_vectors(vectors, ops=["conv"], count=1, include_catalogue=False)


def test_gradient_vectors_carry_every_output(tmp_path):
    """CONV-GRAD-1: dx, dw and db with their own K; db absent without a bias."""
    manifest = export_vectors(tmp_path, ops=["conv_backward"], count=0, include_catalogue=False, cases=[
        "conv_backward x=1,2,5 w=3,2,2 b s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=1",
        "conv_backward x=1,2,5 w=3,2,2 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=1"])
    with_bias, without = manifest["cases"]
    assert with_bias["outputs"]["db"]["K"] == 4 and without["outputs"]["db"] is None
    assert with_bias["outputs"]["dw"]["K"] == 4 and with_bias["outputs"]["dx"]["K"] == 3 * 2


def test_check_vectors_passes_a_correctly_rounded_implementation(vectors, tmp_path):
    _perfect_outputs(vectors, tmp_path / "out")
    results = check_vectors(vectors, tmp_path / "out", name="perfect")
    counts = results.backends[0].counts()
    assert results.exit_code == 0 and counts["passed"] == len(read_manifest(vectors)["cases"])


def test_missing_output_file_fails_naming_the_file(vectors, tmp_path):
    """HYGIENE-2: an output the program did not write fails that case, with the file's name."""
    manifest = _perfect_outputs(vectors, tmp_path / "out")
    victim = manifest["cases"][0]
    (tmp_path / "out" / victim["outputs"]["y"]["file"]).unlink()
    results = check_vectors(vectors, tmp_path / "out")
    failed = results.failures()
    assert len(failed) == 1 and failed[0].clause == "HYGIENE-2"
    assert f"missing output file {tmp_path / 'out' / victim['outputs']['y']['file']}" in failed[0].message
    assert results.exit_code == 1


def test_unsupported_marker_and_wrong_dtype(vectors, tmp_path):
    """A <id>.unsupported file makes the case unsupported; a float64 output fails HYGIENE-2."""
    manifest = _perfect_outputs(vectors, tmp_path / "out")
    first, second = manifest["cases"][:2]
    (tmp_path / "out" / f"{first['id']}.unsupported").write_text("rank 1 not implemented\n")
    spec = second["outputs"]["y"]
    save_array(tmp_path / "out" / spec["file"], np.load(vectors / spec["file"]))  # float64
    results = check_vectors(vectors, tmp_path / "out")
    by_case = {(r.case.descriptor, r.family): r for r in results.backends[0].results}
    assert by_case[(first["descriptor"], "differential")].status in ("unsupported",)
    assert by_case[(first["descriptor"], "differential")].message == "rank 1 not implemented"
    hygiene = by_case[(second["descriptor"], "hygiene")]
    assert hygiene.status == "failed" and hygiene.clause == "HYGIENE-2"


def test_check_vectors_refuses_the_vector_directory_as_results(vectors):
    with pytest.raises(ValueError, match="must differ from the vector directory"):
        check_vectors(vectors, vectors)


def test_nan_max_pool_gradient_is_excluded_with_its_reason(tmp_path):
    """MAXPOOL-NAN-1: which NaN receives dy is implementation-defined: no golden dx."""
    descriptor = "max_pool_backward x=1,2,10 k=2 s=2 p=0:0 d=1 dtype=float32 data=nan seed=0"
    assert np.isnan(Case.parse(descriptor).arrays()["x"]).any()
    manifest = export_vectors(tmp_path, ops=["max_pool_backward"], count=0, include_catalogue=False,
                              cases=[descriptor])
    assert manifest["cases"] == [] and manifest["excluded"][0]["descriptor"] == descriptor
    assert "MAXPOOL-NAN-1" in manifest["excluded"][0]["reason"]


# -- the C example ------------------------------------------------------------------------------------

@needs_cc
def test_c_example_passes_the_vectors(vectors, binaries, tmp_path):
    _run(binaries[0], vectors, tmp_path / "out")
    results = check_vectors(vectors, tmp_path / "out", name="c-example", program=str(binaries[0]))
    run = results.backends[0]
    assert results.exit_code == 0, results.summary()
    assert run.counts()["passed"] == len(read_manifest(vectors)["cases"])
    assert {r.op for r in run.results} == set(OPS_C)


@needs_cc
def test_c_example_tie_bug_fails_MAXPOOL_TIE_1(vectors, binaries, tmp_path):
    """BUG=1 keeps the last of equal maxima: MAXPOOL-TIE-1 on max_pool, nothing else."""
    _run(binaries[1], vectors, tmp_path / "out")
    results = check_vectors(vectors, tmp_path / "out", name="c-bug-1", program=str(binaries[1]))
    failures = results.failures()
    assert results.exit_code == 1
    assert {r.op for r in failures} == {"max_pool"}
    assert "MAXPOOL-TIE-1" in {r.clause for r in failures}
    tie = next(r for r in failures if r.case.descriptor == TIES)
    assert tie.clause == "MAXPOOL-TIE-1" and tie.reproducer()["cli"].startswith(f"convspec check cmd:{binaries[1]}")
    unnamed = check_vectors(vectors, tmp_path / "out").failures()[0]  # no program given: a placeholder
    assert unnamed.reproducer()["cli"].startswith("convspec check cmd:PROGRAM --case")


@needs_cc
def test_c_example_divisor_bug_fails_on_count_include_pad(vectors, binaries, tmp_path):
    """BUG=2 ignores count_include_pad: AVGPOOL-DEF-1's divisor, caught by ERR-BOUND-1 on avg_pool
    cases that count padding — and only those."""
    _run(binaries[2], vectors, tmp_path / "out")
    results = check_vectors(vectors, tmp_path / "out", name="c-bug-2")
    failures = results.failures()
    assert failures and {r.op for r in failures} == {"avg_pool"}
    assert {r.clause for r in failures} == {"ERR-BOUND-1"}
    assert all("count_include_pad" in r.features for r in failures)
    assert any(r.case.descriptor == COUNTED_PAD for r in failures)


# -- the command backend -----------------------------------------------------------------------------------

def _differential(backend, descriptors):
    from convspec.conformance.invoke import Invoker
    from convspec.conformance.checks.differential import check_differential
    from convspec.conformance.context import CheckContext, Settings

    ctx = CheckContext(backend, backend.name, Invoker(backend), Settings(checks=("differential", "hygiene")))
    return [r for d in descriptors for r in check_differential(ctx, Case.parse(d))]


COMMAND_CASES = [
    TIES, COUNTED_PAD, SAME_LOWER,
    "conv x=2,4,6,5 w=4,2,3,2 b s=2,1 p=1:0,2:1 d=1,2 g=2 mode=reflect dtype=float32 data=wide seed=3",
    "conv x=1,2,4,4,4 w=2,2,2,2,2 s=1,1,1 p=1:1,1:1,1:1 d=1,1,1 g=1 mode=circular dtype=float32 data=random seed=9",
    "max_pool x=1,3,7,8 k=3,3 s=2,3 p=1:1,1:1 d=2,1 ceil dtype=float32 data=nan seed=5",
]


@needs_cc
def test_command_backend_runs_the_c_example_through_the_runner(binaries):
    backend = CommandBackend(str(binaries[0]), name="c")
    assert backend.capabilities.ops == frozenset(OPS_C) and backend.capabilities.ranks == frozenset({1, 2, 3})
    results = _differential(backend, COMMAND_CASES)
    assert {r.status for r in results} == {"passed"}, [r.message for r in results if r.status != "passed"]


@needs_cc
def test_command_backend_catches_the_seeded_bug(binaries):
    results = _differential(CommandBackend(str(binaries[1])), [TIES])
    assert results[0].status == "failed" and results[0].clause == "MAXPOOL-TIE-1"


@needs_cc
def test_prefetch_runs_one_batch_for_many_calls(binaries):
    """Two runs of the whole batch: one per call of each case and its HYGIENE-3 repeat."""
    backend = CommandBackend(str(binaries[0]))
    cases = [Case.parse(d) for d in COMMAND_CASES]
    requests = [(case.op, case.arrays(), case.params_object) for case in cases]
    assert backend.prefetch(requests) == len(cases) and backend.runs == 2
    for _ in range(2):
        for op, arrays, params in requests:
            out = getattr(backend, op)(*(arrays.get(name) for name in OPS[op].inputs), params)
            y = out[0] if isinstance(out, tuple) else out
            assert y.dtype == np.float32 and y.shape == params.output_shape
    assert backend.runs == 2  # every call came from the cache
    op, arrays, params = requests[0]
    backend.max_pool(arrays["x"], params)
    assert backend.runs == 3  # used up: a third call runs the program again
    assert backend.prefetch(requests[:1], repeats=1) == 1 and backend.runs == 4


@needs_cc
def test_catalogue_through_the_command_backend_needs_two_start_ups(binaries):
    """The catalogue after a prefetch: each case checked against the reference, then called again
    for determinism (HYGIENE-3), from two program runs in all."""
    from convspec.conformance.catalogue import catalogue_cases
    from convspec.conformance.invoke import Invoker
    from convspec.conformance.checks.differential import check_differential
    from convspec.conformance.context import CheckContext, Settings

    backend = CommandBackend(str(binaries[0]))
    cases = [c for c in catalogue_cases(ops=OPS_C, ranks=(1, 2, 3))
             if backend.capabilities.unsupported_reason(c.op, c.params_object, c.dtype) is None]
    assert backend.prefetch([(c.op, c.arrays(), c.params_object) for c in cases]) == len(cases)
    ctx = CheckContext(backend, backend.name, Invoker(backend), Settings(checks=("differential",)))
    statuses = Counter()
    for case in cases:
        statuses.update(r.status for r in check_differential(ctx, case))
        again = ctx.call(case.op, case.arrays(), case.params_object)
        expected = reference.evaluate(case.op, case.arrays(), case.params_object)
        assert again.outputs["y"].shape == expected["y"].shape
    assert statuses == Counter({"passed": len(cases)})
    assert backend.runs == 2


@needs_cc
def test_prefetch_skips_what_the_program_declares_unsupported(binaries):
    backend = CommandBackend(str(binaries[0]))
    case = Case.parse("conv_backward x=1,2,5 w=3,2,2 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=1")
    wide = Case.parse(COUNTED_PAD).with_(dtype="float64")
    assert backend.prefetch([(c.op, c.arrays(), c.params_object) for c in (case, wide)]) == 0
    assert backend.runs == 0


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(body)
    return f"{sys.executable} {path}"


def test_command_backend_refuses_invalid_configurations_before_running(tmp_path):
    """Every invalid configuration of the catalogue raises, citing its clause, and the program
    never runs on it (it only ever sees valid, resolved parameters)."""
    from convspec.conformance.catalogue import INVALID, forge
    from convspec.spec import InvalidParams

    backend = CommandBackend(_script(tmp_path, "import sys; sys.exit(0)\n"),
                             capabilities=Capabilities())
    from convspec.spec import CORE_OPS

    core = [entry for entry in INVALID if entry.op in CORE_OPS]  # the command protocol's ops
    for entry in core:
        params, arrays = forge(entry)
        with pytest.raises(InvalidParams) as caught:
            getattr(backend, entry.op)(*(arrays.get(name) for name in OPS[entry.op].inputs), params)
        assert caught.value.clause == entry.clause, entry.name
    assert backend.prefetch([(entry.op, *reversed(forge(entry))) for entry in core]) == 0
    assert backend.runs == 0


def test_command_backend_defaults_when_the_program_declares_nothing(tmp_path):
    backend = CommandBackend(_script(tmp_path, "import sys; sys.exit(3)\n"))
    assert backend.capabilities == DEFAULT_CAPABILITIES
    assert backend.name.startswith("cmd:")


def test_command_backend_reports_program_failures_with_stderr(tmp_path):
    backend = CommandBackend(_script(tmp_path, "import sys\nif sys.argv[1] != '--capabilities':\n"
                                               "    sys.exit('boom: cannot read the manifest')\n"))
    case = Case.parse(COUNTED_PAD)
    with pytest.raises(RuntimeError, match="exited with status 1 .*boom: cannot read the manifest"):
        backend.avg_pool(case.arrays()["x"], case.params_object)


def test_command_backend_reads_unsupported_markers_and_capabilities(tmp_path):
    """A Python stand-in for an external program: declares capabilities, marks one call unsupported,
    answers the others from the manifest alone (reference outputs, so the comparison passes)."""
    program = _script(tmp_path, f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import numpy as np
if sys.argv[1] == "--capabilities":
    print(json.dumps({{"ops": ["max_pool", "avg_pool"], "ranks": [1], "unsupported": {{"ceil_mode": "no"}}}}))
    sys.exit(0)
from convspec.backends.command import save_array
from convspec.conformance.cases import Case
import convspec.reference as reference
root = sys.argv[1]
manifest = json.load(open(root + "/manifest.json"))
for entry in manifest["cases"]:
    if entry["params"]["count_include_pad"] is False:
        open(root + "/" + entry["id"] + ".unsupported", "w").write("no count_include_pad=False\\n")
        continue
    p = entry["params"]
    from convspec.spec import AvgPoolParams, MaxPoolParams
    kind = MaxPoolParams if entry["op"] == "max_pool" else AvgPoolParams
    extra = {{}} if entry["op"] == "max_pool" else {{"count_include_pad": p["count_include_pad"],
                                                     "divisor_override": p["divisor_override"]}}
    params = kind(input_shape=tuple(p["input_shape"]), kernel_size=tuple(p["kernel_size"]), stride=tuple(p["stride"]),
                  padding=tuple(map(tuple, p["pads"])), dilation=tuple(p["dilation"]), ceil_mode=p["ceil_mode"], **extra)
    x = np.load(root + "/" + entry["inputs"]["x"]["file"])
    out = reference.evaluate(entry["op"], {{"x": x}}, params)
    for name, spec in entry["outputs"].items():
        save_array(root + "/" + spec["file"], np.asarray(out[name]).astype(spec["dtype"]))
""")
    backend = CommandBackend(program, name="py-program")
    assert backend.capabilities.ops == frozenset({"max_pool", "avg_pool"})
    assert backend.capabilities.dtypes == frozenset({"float32"})  # the default where not declared
    assert backend.capabilities.unsupported["ceil_mode"] == "no"
    results = _differential(backend, [COUNTED_PAD, "max_pool x=1,2,9 k=3 s=2 p=1:1 d=2 dtype=float32 data=ties seed=1"])
    assert [r.status for r in results if r.family == "differential"] == ["passed", "passed"]
    plain = Case.parse("avg_pool x=1,1,5 k=2 s=2 p=0:0 d=1 cip=0 dtype=float32 data=random seed=3")
    with pytest.raises(Unsupported, match="no count_include_pad=False"):
        backend.avg_pool(plain.arrays()["x"], plain.params_object)


def test_command_backend_rejects_malformed_capabilities(tmp_path):
    with pytest.raises(ValueError, match="not a JSON object"):
        CommandBackend(_script(tmp_path, "print('ops: conv')\n"))
    with pytest.raises(ValueError, match="unknown keys \\['speedy'\\]"):
        CommandBackend(_script(tmp_path, "import json; print(json.dumps({'speedy': True}))\n"))
    with pytest.raises(ValueError, match="not found"):
        CommandBackend("/no/such/program")


def test_bfloat16_arrays_travel_as_bit_patterns(tmp_path):
    """DTYPE-1: .npy cannot name bfloat16; its uint16 bit patterns go instead."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([1.0, -2.5, 3.0e38], dtype=ml_dtypes.bfloat16)
    save_array(tmp_path / "x.npy", x)
    assert np.load(tmp_path / "x.npy").dtype == np.uint16
    back = load_array(tmp_path / "x.npy", "bfloat16")
    assert back.dtype == x.dtype and back.tobytes() == x.tobytes()


def test_manifest_case_is_shared_by_vectors_and_the_command_backend(tmp_path):
    """The batch a command backend writes has the vector manifest's entries, minus the references."""
    captured = tmp_path / "captured.json"
    program = _script(tmp_path, f"""
import shutil, sys
if sys.argv[1] == "--capabilities":
    sys.exit(1)
shutil.copy(sys.argv[1] + "/manifest.json", {str(captured)!r})
sys.exit(2)
""")
    case = Case.parse(SAME_LOWER)
    with pytest.raises(RuntimeError):
        CommandBackend(program).conv(*(case.arrays()[n] for n in ("x", "w", "b")), case.params_object)
    batch = json.loads(captured.read_text())["cases"][0]
    exported = export_vectors(tmp_path / "v", ops=["conv"], count=0, include_catalogue=False, cases=[case])["cases"][0]
    for key in ("op", "dtype", "params", "features"):
        assert batch[key] == exported[key]
    assert batch["outputs"]["y"]["shape"] == exported["outputs"]["y"]["shape"]
    assert "K" not in batch["outputs"]["y"] and "K" in exported["outputs"]["y"]


def test_reference_of_a_vector_is_the_reference_of_its_case(vectors):
    entry = next(e for e in read_manifest(vectors)["cases"] if e["descriptor"] == COUNTED_PAD)
    case = Case.from_json(entry["case"])
    expected = reference.evaluate(case.op, case.arrays(), case.params_object)["y"]
    assert np.array_equal(np.load(vectors / entry["outputs"]["y"]["file"]), expected)
    assert entry["outputs"]["y"]["K"] == terms_per_output(case.op, case.params_object)["y"]
    assert isinstance(case.params_object, type(case.params_object)) and not isinstance(case.params_object, MaxPoolParams)


def test_vectors_page_documents_every_manifest_key(vectors):
    """docs/vectors.md names every key of a manifest case, its params and outputs."""
    page = (ROOT / "docs" / "vectors.md").read_text(encoding="utf-8")
    entry = read_manifest(vectors)["cases"][0]
    output = next(spec for spec in entry["outputs"].values() if spec is not None and spec["check"] == "bound")
    keys = set(entry) | set(entry["params"]) | set(output)
    missing = sorted(key for key in keys if f"`{key}`" not in page and f'"{key}"' not in page)
    assert missing == []


def test_loader_maps_cmd_specs_to_the_command_backend(tmp_path):
    from convspec.backends import load

    command = _script(tmp_path, "import sys; sys.exit(3)\n")
    backend = load(f"cmd:{command}")
    assert isinstance(backend, CommandBackend)
    assert backend.name == f"cmd:{command}"


def test_accumulation_per_input_dtype_in_the_bound_files(tmp_path):  # ERR-BOUND-1
    """--accumulation float16=float32: float16 cases get float32's u_acc, float64 cases their own."""
    from convspec import cli

    manifest = export_vectors(tmp_path / "v", ops=["conv"], dtypes=["float16", "float64"], count=4, seed=1,
                              include_catalogue=False, accumulation={"float16": "float32"})
    assert manifest["settings"]["accumulation"] == {"float16": "float32"}
    u_acc = {entry["case"]["dtype"]: entry["outputs"]["y"]["u_acc"] for entry in manifest["cases"]}
    assert u_acc == {"float16": 2.0**-24, "float64": 2.0**-53}
    assert cli.main(["vectors", "export", str(tmp_path / "w"), "--ops", "conv", "--dtypes", "float16",
                     "--count", "1", "--no-catalogue", "--accumulation", "float16=float32"]) == 0
    assert read_manifest(tmp_path / "w")["settings"]["accumulation"] == {"float16": "float32"}
    assert cli.main(["vectors", "export", str(tmp_path / "x"), "--accumulation", "float16=float8"]) == 2
    _perfect_outputs(tmp_path / "v", tmp_path / "out")
    results = check_vectors(tmp_path / "v", tmp_path / "out", accumulation={"float16": "float32"})
    assert results.exit_code == 0
    assert results.backends[0].capabilities["accumulation"] == {"float16": "float32"}


def test_nan_ok_masks_accept_the_zero_extended_gradient_only_there(tmp_path):  # CONVT-GRAD-1, ERR-SPECIAL-1
    """A conv_transpose_backward case with NaN inputs and cropped targets exports a ``nan_ok`` mask;
    NaN is accepted where it is true (the zero-extended outcome), the strict value too, and a NaN
    anywhere else is still a failure."""
    case = "conv_transpose_backward x=2,2,2 w=2,1,2 s=1 p=1:1 outpad=0 d=1 g=1 dtype=float32 data=nan seed=0"
    manifest = export_vectors(tmp_path / "v", cases=[case], include_catalogue=False, count=0, ops=[])
    (entry,) = manifest["cases"]
    spec = entry["outputs"]["dw"]
    assert spec["nan_ok"] is not None
    either = np.load(tmp_path / "v" / spec["nan_ok"])
    ref = np.load(tmp_path / "v" / spec["file"])
    assert either.any() and not np.isnan(ref[either]).any()
    for label, where, conformant in (("strict", np.zeros_like(either), True), ("zero-extended", either, True)):
        out = tmp_path / label
        _perfect_outputs(tmp_path / "v", out)
        save_array(out / spec["file"], np.where(where, np.nan, ref).astype(np.float32))
        assert check_vectors(tmp_path / "v", out).conformant is conformant, label
    dx = entry["outputs"]["dx"]  # no element of dx may be NaN here: it has no mask
    assert dx["nan_ok"] is None
    _perfect_outputs(tmp_path / "v", tmp_path / "stray")
    stray = np.load(tmp_path / "v" / dx["file"])
    stray.flat[0] = np.nan
    save_array(tmp_path / "stray" / dx["file"], stray.astype(np.float32))
    failed = check_vectors(tmp_path / "v", tmp_path / "stray")
    assert not failed.conformant and "dx" in failed.failures()[0].message
