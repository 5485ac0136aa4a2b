"""``python -m convspec.bench ...``: the bench command line without the convspec CLI."""

import sys

from . import standalone

sys.exit(standalone())
