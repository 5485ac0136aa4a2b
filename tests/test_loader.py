"""The backend loader: every form of spec, and one clear line for every way loading can fail.

Throw-away backends are written into ``tmp_path``; an entry point is registered by writing a
``*.dist-info`` directory with ``entry_points.txt`` onto a directory put on ``sys.path``, which is
all ``importlib.metadata`` needs (no pip).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convspec.backends import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    Backend,
    BackendInfo,
    BackendLoadError,
    BuiltinBackend,
    Capabilities,
    FunctionalBackend,
    available_backends,
    capability_table,
    load,
)
from convspec.spec import ConvParams, ConvSpecError

ROOT = Path(__file__).resolve().parents[1]

BACKEND_SOURCE = '''
import numpy as np
from convspec.backends import Capabilities

class ZeroConv:
    """conv that returns zeros of the right shape: enough for the loader."""
    def __init__(self, name="zero"):
        self.name = name
        self.capabilities = Capabilities(ops={"conv"})
    def conv(self, x, w, b, params):
        return np.zeros(params.output_shape, x.dtype)

instance = ZeroConv("zero-instance")

def factory():
    return ZeroConv("zero-factory")

def failing_factory():
    raise RuntimeError("no licence\\nsecond line")

def needs_arguments(x, w, stride):
    return x

class NeedsArguments(ZeroConv):
    def __init__(self, device):
        super().__init__(device)

class NoCapabilities:
    name = "bare"
    def conv(self, x, w, b, params):
        return x

class WrongCapabilities(ZeroConv):
    def __init__(self):
        super().__init__()
        self.capabilities = {"ops": ["conv"]}

class MissingMethod(ZeroConv):
    def __init__(self):
        super().__init__("missing")
        self.capabilities = Capabilities(ops={"conv", "max_pool"})

class NoName(ZeroConv):
    def __init__(self):
        super().__init__()
        self.name = None

number = 3
'''

# A module that is a backend as it stands: module-level name, capabilities and op functions.
MODULE_BACKEND_SOURCE = '''
import numpy as np
from convspec.backends import Capabilities
name = "module-backend"
capabilities = Capabilities(ops={"conv"})
def conv(x, w, b, params):
    return np.zeros(params.output_shape, x.dtype)
'''

# A torch.nn.functional look-alike: only conv1d, in NumPy.
FUNCTIONAL_SOURCE = '''
import numpy as np
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError
'''


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    """Write modules into a fresh directory on sys.path: ``on_path(name=source, ...)``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(**modules: str) -> Path:
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        return tmp_path

    yield write
    for module in list(sys.modules):
        if module.startswith("loader_test_"):
            del sys.modules[module]


def one_line_error(spec) -> BackendLoadError:
    with pytest.raises(BackendLoadError) as info:
        load(spec)
    error = info.value
    assert isinstance(error, ConvSpecError)
    assert "\n" not in str(error), str(error)
    return error


ZERO_CONV = ConvParams(input_shape=(1, 1, 4), weight_shape=(1, 1, 2))


def assert_runs(backend):
    assert isinstance(backend, Backend)
    y = backend.conv(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32), None, ZERO_CONV)
    assert np.asarray(y).shape == ZERO_CONV.output_shape


# ---- each form of spec --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["naive", "im2col", "scipy", "scipy:fft", "torch"])
def test_every_cpu_builtin_loads_and_runs(name):  # CONV-SHAPE-1, DTYPE-1
    if name == "torch":
        pytest.importorskip("torch")
    backend = load(name)
    assert isinstance(backend.capabilities, Capabilities) and isinstance(backend.name, str)
    y = backend.conv(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32), None, ZERO_CONV)
    assert np.asarray(y).dtype == np.float32
    np.testing.assert_array_equal(y, np.full(ZERO_CONV.output_shape, 2.0))


def test_builtins_are_registered_by_dotted_path():
    assert set(BUILTIN_BACKENDS) == {"naive", "im2col", "scipy", "scipy:fft", "torch", "torch:cuda", "torch:cuda:tf32",
                                     "onnx:reference", "onnx:onnxruntime", "jax"}
    assert BUILTIN_BACKENDS["scipy:fft"].kwargs == {"method": "fft"}
    assert BUILTIN_BACKENDS["torch:cuda:tf32"].kwargs == {"device": "cuda", "tf32": True}
    assert str(BUILTIN_BACKENDS["torch:cuda"]) == "convspec.backends.torch_backend:TorchBackend(device='cuda')"


def test_a_builtin_entry_imports_its_target_on_first_use(on_path, monkeypatch):
    on_path(loader_test_builtin=BACKEND_SOURCE)
    monkeypatch.setitem(BUILTIN_BACKENDS, "zero", BuiltinBackend("loader_test_builtin:ZeroConv", {"name": "kw"}))
    assert "loader_test_builtin" not in sys.modules
    backend = load("zero")
    assert backend.name == "kw"
    assert_runs(backend)


def test_a_builtin_with_a_missing_dependency_names_it_and_how_to_install(on_path, monkeypatch):
    on_path(loader_test_builtin=BACKEND_SOURCE)
    monkeypatch.setitem(BUILTIN_BACKENDS, "zero", BuiltinBackend("loader_test_builtin:ZeroConv",
                                                                 requires=("loader_test_absent_dependency",)))
    error = one_line_error("zero")
    assert str(error) == ("cannot load backend 'zero': loader_test_absent_dependency is not installed "
                          "(pip install loader_test_absent_dependency)")
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_torch_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what an absent torch looks like to import
    for name in ("torch", "torch:cuda", "torch:cuda:tf32"):
        error = one_line_error(name)
        assert str(error) == f"cannot load backend '{name}': torch is not installed (pip install 'convspec[torch]')"
        assert isinstance(error.__cause__, ImportError)


def test_torch_cuda_needs_a_cuda_device():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert load("torch:cuda").capabilities is not None
    else:
        assert "CUDA is not available" in str(one_line_error("torch:cuda"))


@pytest.mark.parametrize("attribute, name", [
    ("instance", "zero-instance"), ("ZeroConv", "zero"), ("factory", "zero-factory"),
])
def test_module_attr_takes_an_instance_a_class_or_a_factory(on_path, attribute, name):
    on_path(loader_test_mod=BACKEND_SOURCE)
    backend = load(f"loader_test_mod:{attribute}")
    assert backend.name == name
    assert_runs(backend)


def test_a_module_can_be_a_backend_as_it_stands(on_path):
    on_path(loader_test_module_backend=MODULE_BACKEND_SOURCE)
    backend = load("loader_test_module_backend")
    assert backend.name == "module-backend"
    assert_runs(backend)
    assert "nothing after ':'" in str(one_line_error("loader_test_module_backend:"))


def test_a_functional_module_is_wrapped(on_path):
    on_path(loader_test_functional=FUNCTIONAL_SOURCE)
    backend = load("loader_test_functional")
    assert isinstance(backend, FunctionalBackend) and backend.name == "loader_test_functional"
    assert backend.capabilities.ops == {"conv"} and backend.capabilities.ranks == {1}


def test_dotted_attribute_paths(on_path):
    on_path(loader_test_dotted="import types\nfrom loader_test_mod import instance\nns = types.SimpleNamespace(b=instance)\n",
            loader_test_mod=BACKEND_SOURCE)
    assert load("loader_test_dotted:ns.b").name == "zero-instance"


@pytest.mark.parametrize("attribute, name", [
    ("instance", "zero-instance"), ("ZeroConv", "zero"), ("factory", "zero-factory"),
])
def test_file_attr_takes_an_instance_a_class_or_a_factory(tmp_path, attribute, name):
    path = tmp_path / "my backend.py"
    path.write_text(BACKEND_SOURCE)
    backend = load(f"{path}:{attribute}")
    assert backend.name == name
    assert_runs(backend)


def test_file_alone_and_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "functional.py").write_text(FUNCTIONAL_SOURCE)
    monkeypatch.chdir(tmp_path)
    backend = load("sub/functional.py")
    assert isinstance(backend, FunctionalBackend) and backend.name == "sub/functional.py"


def test_two_files_of_the_same_name_do_not_collide(tmp_path):
    for folder, name in (("a", "first"), ("b", "second")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "backend.py").write_text(BACKEND_SOURCE + f"\nchosen = ZeroConv({name!r})\n")
    first, second = load(f"{tmp_path}/a/backend.py:chosen"), load(f"{tmp_path}/b/backend.py:chosen")
    assert (first.name, second.name) == ("first", "second")
    assert type(first).__module__ != type(second).__module__


def test_the_readme_example_loads_from_its_path():
    backend = load(str(ROOT / "examples" / "my_conv.py") + ":backend")
    assert backend.name == "my_conv2d"


def test_an_object_is_validated_and_returned():
    backend = load(str(ROOT / "examples" / "my_conv.py") + ":backend")
    assert load(backend) is backend
    error = one_line_error(object())
    assert str(error).startswith("cannot load backend '<object object>': object object is not a backend")


# ---- entry points ---------------------------------------------------------------------------------


def register_entry_points(directory: Path, distribution: str, entries: dict[str, str]) -> None:
    """What ``pip install`` leaves behind, minus the install: a dist-info with entry_points.txt."""
    info = directory / f"{distribution}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def test_an_entry_point_is_loaded_by_name(on_path):
    directory = on_path(loader_test_plugin=BACKEND_SOURCE)
    register_entry_points(directory, "loader_test_plugin_dist", {
        "plugin-zero": "loader_test_plugin:factory",
        "plugin-broken": "loader_test_plugin_missing:thing",
        "naive": "loader_test_plugin:instance",  # shadowed by the built-in
    })
    backend = load("plugin-zero")
    assert backend.name == "zero-factory"
    assert_runs(backend)
    assert type(load("naive")).__name__ == "NaiveBackend"  # built-ins come first

    error = one_line_error("plugin-broken")
    assert str(error).startswith("cannot load backend 'plugin-broken': loading entry point plugin-broken = "
                                 "loader_test_plugin_missing:thing (group convspec.backends, "
                                 "loader_test_plugin_dist) failed: ModuleNotFoundError")

    infos = {(info.name, info.source): info for info in available_backends()}
    assert infos["plugin-zero", "entry point"].available
    assert infos["plugin-zero", "entry point"].capabilities.ops == {"conv"}
    assert infos["plugin-zero", "entry point"].target == "loader_test_plugin:factory"
    assert not infos["plugin-broken", "entry point"].available
    assert "ModuleNotFoundError" in infos["plugin-broken", "entry point"].reason
    assert infos["naive", "entry point"].reason == "shadowed by the built-in backend of the same name"


# ---- one clear line for every failure --------------------------------------------------------------


def test_unknown_name():
    error = one_line_error("foo")
    assert str(error) == (
        "no backend named 'foo': not a built-in (naive, im2col, scipy, scipy:fft, torch, torch:cuda, "
        "torch:cuda:tf32, onnx:reference, onnx:onnxruntime, jax), no entry point in group convspec.backends, and not of the form module:attr or file.py:attr"
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)
    assert one_line_error("not a name!").unknown


@pytest.mark.parametrize("spec", ["loader_test_nowhere:thing", "loader_test_nowhere.functional"])
def test_missing_module(spec):
    """module:attr, or a dotted module name (clearly not a built-in), that does not import."""
    error = one_line_error(spec)
    assert str(error) == (f"cannot load backend {spec!r}: no module named 'loader_test_nowhere' (is it installed, "
                          "or on sys.path? The convspec command does not search the current directory: run it "
                          "with PYTHONPATH=. or name path/to/file.py:attr)")
    assert isinstance(error.__cause__, ModuleNotFoundError) and not error.unknown


def test_a_module_failing_to_import_is_not_called_missing(on_path):
    on_path(loader_test_badimport="import loader_test_nowhere_dependency\n", loader_test_raises="1 / 0\n")
    assert str(one_line_error("loader_test_badimport:x")) == (
        "cannot load backend 'loader_test_badimport:x': importing module 'loader_test_badimport' failed: "
        "ModuleNotFoundError: No module named 'loader_test_nowhere_dependency'")
    error = one_line_error("loader_test_raises:x")
    assert "ZeroDivisionError: division by zero" in str(error)
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_missing_attr(on_path):
    on_path(loader_test_mod=BACKEND_SOURCE)
    error = one_line_error("loader_test_mod:thing")
    assert str(error) == "cannot load backend 'loader_test_mod:thing': module 'loader_test_mod' has no attribute 'thing'"
    assert isinstance(error.__cause__, AttributeError)


def test_file_not_found_and_file_failing(tmp_path):
    missing = tmp_path / "absent.py"
    assert str(one_line_error(f"{missing}:backend")) == (
        f"cannot load backend '{missing}:backend': file '{missing}' does not exist")
    (tmp_path / "folder.py").mkdir()
    assert "is not a file" in str(one_line_error(f"{tmp_path / 'folder.py'}:backend"))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad config')\n")
    error = one_line_error(f"{broken}:backend")
    assert str(error) == f"cannot load backend '{broken}:backend': running {broken} failed: RuntimeError: bad config"
    assert not any(name.startswith("_convspec_file_backend_broken") for name in sys.modules)
    (tmp_path / "ok.py").write_text(BACKEND_SOURCE)
    assert str(one_line_error(f"{tmp_path / 'ok.py'}:nothing")) == (
        f"cannot load backend '{tmp_path / 'ok.py'}:nothing': file '{tmp_path / 'ok.py'}' has no attribute 'nothing'")


@pytest.mark.parametrize("attribute, message", [
    ("number", "int 3 is not a backend: it has no 'capabilities' (a convspec.backends.Capabilities) and no "
               "torch.nn.functional-style functions"),
    ("NoCapabilities", "NoCapabilities object is not a backend: it has no 'capabilities'"),
    ("WrongCapabilities", "WrongCapabilities object is not a backend: its 'capabilities' is a dict, "
                          "not a convspec.backends.Capabilities"),
    ("MissingMethod", "MissingMethod object ('missing') declares ops max_pool in capabilities.ops but has no "
                      "callable method of that name"),
    ("NoName", "NoName object is not a backend: its 'name' is None, not a non-empty str"),
    ("needs_arguments", "function needs_arguments(x, w, stride) is neither a backend nor a factory taking no "
                        "arguments; wrap plain functions with convspec.backends.FunctionBackend"),
    ("failing_factory", "calling failing_factory() failed: RuntimeError: no licence"),
    ("NeedsArguments", "calling NeedsArguments() failed: TypeError: "),
])
def test_not_a_backend(on_path, attribute, message):
    on_path(loader_test_mod=BACKEND_SOURCE)
    error = one_line_error(f"loader_test_mod:{attribute}")
    assert str(error).startswith(f"cannot load backend 'loader_test_mod:{attribute}': {message}"), str(error)
    if attribute in ("failing_factory", "NeedsArguments"):
        assert error.__cause__ is not None


def test_a_module_that_is_neither_backend_nor_functional():
    error = one_line_error("json")
    assert str(error).startswith("cannot load backend 'json': module 'json' is not a backend")


def test_load_errors_pickle():  # they cross process boundaries
    error = BackendLoadError("x", "why", unknown=True)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.reason, copy.spec) == (str(error), "why", "x")


# ---- laziness, listing ---------------------------------------------------------------------------


def test_importing_the_backends_imports_neither_torch_nor_scipy():
    code = (
        "import sys, convspec.backends; convspec.backends.load('naive');"
        "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_available_backends_lists_every_builtin_with_capabilities_or_a_reason():
    infos = available_backends()
    builtins = [info for info in infos if info.source == "built-in"]
    assert [info.name for info in builtins] == list(BUILTIN_BACKENDS)
    for info in builtins:
        assert info.available == (info.capabilities is not None) == (info.reason is None)
        assert info.target == str(BUILTIN_BACKENDS[info.name])
    assert next(info for info in builtins if info.name == "naive").available


def test_accumulation_per_input_dtype():  # ERR-BOUND-1's u_acc
    caps = Capabilities(accumulation={"float16": "float32", "bfloat16": "float32"})
    assert [caps.accumulation_for(d) for d in ("float16", "bfloat16", "float32", "float64")] == [
        "float32", "float32", "float32", "float64"]
    assert Capabilities(accumulation="float64").accumulation_for("float16") == "float64"
    assert Capabilities().accumulation_for("bfloat16") == "bfloat16"
    with pytest.raises(TypeError):
        caps.accumulation["float16"] = "float64"  # type: ignore[index]  # frozen like the rest
    for wrong in ({"float16": "float8"}, {"half": "float32"}, "double"):
        with pytest.raises(ValueError, match="unknown ops .* or dtypes"):
            Capabilities(accumulation=wrong)
    row = capability_table([BackendInfo("half", "built-in", "m:H", True, None, caps)]).splitlines()[2]
    assert "f16→f32, bf16→f32" in row
    for wrong in (["float32"], 32, {"float16": ["float32"]}):
        with pytest.raises(ValueError, match="must be a dtype name, a mapping of input dtype names"):
            Capabilities(accumulation=wrong)  # type: ignore[arg-type]
    assert Capabilities(accumulation={}).accumulation is None


def test_capability_table():
    infos = [
        BackendInfo("fast", "built-in", "m:Fast", True, None, Capabilities(
            ops={"conv", "conv_backward", "max_pool"}, ranks={1, 2}, dtypes={"float32"}, accumulation="float64",
            local=False, unsupported={"groups": "one group only", "max_pool:dilation": "none"})),
        BackendInfo("every", "entry point", "p:E", True, None, Capabilities(input_precision="tf32",
                                                                          accumulation="float32")),
        BackendInfo("gone", "built-in", "m:Gone", False, "torch is not installed"),
    ]
    table = capability_table(infos).splitlines()
    assert table[0].split() == ["backend", "source", "available", "ops", "ranks", "dtypes", "accumulation",
                                "local", "deterministic", "layout", "unsupported"]
    assert set(table[1]) == {"-", " "}
    assert table[2].split("  ")[0] == "fast" and "conv+grad, max_pool" in table[2] and " 1,2 " in table[2]
    assert "float64" in table[2] and " f32 " in table[2] and " no " in table[2]
    assert "all 8" in table[3] and "any" in table[3] and "float32 (tf32 inputs)" in table[3]
    assert table[4].split()[:3] == ["gone", "built-in", "no"]
    assert table[5:] == [
        "", "Unsupported features:", "  fast", "    groups: one group only", "    max_pool:dilation: none",
        "", "Unavailable:", "  gone (m:Gone): torch is not installed",
    ]
