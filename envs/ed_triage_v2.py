"""Public path of :mod:`envs.ed.v2` (the code lives there), beside ``envs.ed_triage_v1``."""

import sys

from envs.ed import v2 as _module

# The same module object under both names: every name (private ones too) and any
# monkeypatching is shared, not copied.
sys.modules[__name__] = _module
