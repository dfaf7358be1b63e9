"""Test-session settings and fixtures shared by every test file."""

import os

import httpx
import pytest
from hypothesis import settings
from server_fixtures import start_servers

# CI replays the same fuzzing examples on every run (a red CI is then a real regression,
# reproducible with CI=true); elsewhere each run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def servers():
    # Classic-only servers: exactly Queue Doctor's tool set (the ed tools, on by
    # default: tests/test_server_ed_http.py).
    classic = ("--rulesets", "classic")
    main, small = start_servers(classic, ("--max-sessions", "3", "--idle-timeout", "1", *classic))
    yield main, small
    for s in (main, small):
        s.stop()


@pytest.fixture(scope="module")
def server(servers):
    return servers[0]


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        yield c


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny per-step forwards: on a shared 2-core box two intra-op threads are ~10× slower.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
