"""The machine a bench ran on: CPU, which BLAS with which settings (threadpoolctl, else numpy's
config), the environment variables that steer it, the git commit; and the header lines that show it.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Environment variables that steer the BLAS and thread pools; shown in the header.
BLAS_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> tuple[str, list[dict[str, Any]]]:
    """(source, libraries): threadpoolctl's view of the loaded BLAS and OpenMP libraries when
    threadpoolctl is importable (it sees the core type OpenBLAS picked), else numpy's build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        libraries = [{"user_api": info.get("user_api"), "internal_api": info.get("internal_api"),
                      "version": info.get("version"), "architecture": info.get("architecture"),
                      "num_threads": info.get("num_threads"), "threading_layer": info.get("threading_layer"),
                      "library": os.path.basename(str(info.get("filepath", "")))}
                     for info in threadpool_info()]
        return "threadpoolctl", libraries
    try:
        config = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
        blas = config["Build Dependencies"]["blas"]
        return "numpy config", [{"user_api": "blas", "internal_api": blas.get("name"), "version": blas.get("version"),
                                 "architecture": None, "num_threads": None, "threading_layer": None,
                                 "library": blas.get("lib directory")}]
    except Exception:  # noqa: BLE001 - older numpy: no mode="dicts"
        return "numpy config", []


def _git_commit() -> str | None:
    """The checkout's commit (``+changes`` when convspec/ differs from it); None outside a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "convspec"], cwd=root, capture_output=True,
                               timeout=5, check=False).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "") if commit else None


def machine_info() -> dict[str, Any]:
    """Date, platform, CPU, versions, BLAS libraries and the BLAS environment variables."""
    from .. import __version__

    source, libraries = blas_info()
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "convspec": __version__, "git_commit": _git_commit(),
        "platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "torch": None, "torch_threads": None,
        "blas": libraries, "blas_source": source,
        "environment": {name: os.environ.get(name) for name in BLAS_ENVIRONMENT},
    }
    torch = sys.modules.get("torch")  # only when a torch backend was loaded: never import it here
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def header_lines(machine: Mapping[str, Any]) -> list[str]:
    torch = f" · torch {machine['torch']} ({machine['torch_threads']} threads)" if machine.get("torch") else ""
    commit = f" (commit {machine['git_commit']})" if machine.get("git_commit") else ""
    lines = [(f"convspec bench {machine.get('convspec', '')}{commit} · {machine['date']} · {machine['cpu']} · "
              f"{machine['cpu_count']} CPUs · Python {machine['python']} · numpy {machine['numpy']}{torch}")]
    blas = "; ".join(
        f"{lib['internal_api']} {lib['version'] or ''}".strip()
        + (f" core {lib['architecture']}" if lib.get("architecture") else "")
        + (f", {lib['num_threads']} threads" if lib.get("num_threads") else "")
        + (f" ({lib['library']})" if lib.get("library") else "")
        for lib in machine["blas"]) or "unknown"
    lines.append(f"BLAS ({machine['blas_source']}): {blas}")
    lines.append("env: " + " ".join(f"{key}={'<unset>' if value is None else value}"
                                    for key, value in machine["environment"].items()))
    load = machine.get("load_average")
    if load and load.get("before"):
        lines.append(f"load average (1, 5, 15 min): before {load['before']}, after {load.get('after')} "
                     f"on {machine['cpu_count']} CPUs — a load above the CPU count skews every timing")
    return lines
