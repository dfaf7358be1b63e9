"""Old path of :mod:`agents.report` (the code lives there); kept for old imports."""

import sys

from agents import report as _module

# The same module object under both names: every name (private ones too) and any
# monkeypatching is shared, not copied.
sys.modules[__name__] = _module
