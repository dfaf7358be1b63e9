"""Old path of :mod:`envs.ed.v1` (the code lives there); kept for existing imports."""

import sys

from envs.ed import v1 as _module

# The same module object under both names: every name (private ones too) and any
# monkeypatching is shared, not copied.
sys.modules[__name__] = _module
