"""Old path of :mod:`envs.ed.parallel_env` (the code lives there); kept for existing imports."""

import sys

from envs.ed import parallel_env as _module

# The same module object under both names: every name (private ones too) and any
# monkeypatching is shared, not copied.
sys.modules[__name__] = _module
