"""Hypothesis profiles: ``dev`` (default, quick) and ``ci`` (more examples, still < 10 min on 2 cores).

Select with ``HYPOTHESIS_PROFILE=ci``; CI=true selects ``ci`` automatically.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
