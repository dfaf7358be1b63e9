"""Old path of :mod:`envs.classic.tool_session` (the code lives there); kept for old imports."""

import sys

from envs.classic import tool_session as _module

# The same module object under both names: every name (private ones too) and any
# monkeypatching is shared, not copied.
sys.modules[__name__] = _module
