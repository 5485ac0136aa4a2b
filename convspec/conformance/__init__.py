"""convspec.conformance — cases, checks, the engine and reports.

May import spec, reference and backends. Hypothesis is imported only when cases are generated.
"""

from .cases import RECIPES, Case
from .compare import Comparison, compare
from .results import BackendRun, CheckResult, Results
from .engine import run_conformance

__all__ = ["BackendRun", "Case", "CheckResult", "Comparison", "RECIPES", "Results", "compare", "run_conformance"]
