"""Test-session settings shared by every test file."""

import os

from hypothesis import settings

# CI replays the same fuzzing examples on every run (a red CI is then a real regression,
# reproducible with CI=true); elsewhere each run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
