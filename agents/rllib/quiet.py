"""Silence the start-up messages of Ray and RLlib that are known to be harmless for
edmarl's runs, and nothing else (README, "Troubleshooting", explains what remains).

Each entry was checked against Ray 2.60's source:

* ``Token authentication is enabled for this Ray cluster`` — a notice: the local
  instance keeps token authentication on (``ray job submit`` needs the token, see the
  README); nothing is wrong.
* ``You are running PPO on the new API stack!`` — we use the new stack on purpose
  (our modules are RLModules).
* ``RLModule(config=[RLModuleConfig object])`` deprecation — RLlib's own
  ``RLModule.__init__`` builds that object for old custom models; our modules never
  pass ``config=``.
* ``Install gputil for GPU system monitoring.`` — Tune's optional GPU utilisation
  monitor; training and evaluation do not use it.
* ``Trainable.setup took 16.6 seconds ... consider setting reuse_actors=True`` (info) —
  advice for Tune sweeps; the front door builds one algorithm (start-up: Ray and the
  EnvRunners), and the sweep starts each trial once.
* ``... 'MultiAgentEnvRunner' ... has constructor arguments in the object store and
  max_restarts > 0`` (Ray core, error level) — RLlib ``ray.put``s the algorithm config
  and keeps the reference for the EnvRunner group's lifetime, so a restarted EnvRunner
  finds its arguments (Ray issue 53727 is about arguments that went out of scope or
  were lost with their node). ``tests/test_fault_tolerance.py`` kills an EnvRunner
  mid-training and checks that it comes back.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HARMLESS_LOGS: dict[str, tuple[str, ...]] = {
    "ray._private.authentication.authentication_token_setup": (
        "Token authentication is enabled for this Ray cluster",
    ),
    "ray.rllib.algorithms.algorithm_config": ("on the new API stack! This is the new default",),
    "ray._common.deprecation": ("RLModule(config=[RLModuleConfig object])",),
    "ray.tune.utils.util": ("Install gputil for GPU system monitoring",),
    "ray.tune.trainable.trainable": ("Trainable.setup took",),
}
"""Python logger name → substrings of the messages dropped from it."""
HARMLESS_STDERR: tuple[str, ...] = (
    "has constructor arguments in the object store and max_restarts > 0",
)
"""Substrings of the lines Ray's C++ core writes to stderr that are dropped."""


class _DropHarmless(logging.Filter):
    def __init__(self, needles: tuple[str, ...]) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in self.needles)


def silence_harmless_logs() -> None:
    """Attach the filters to the loggers that emit those messages (idempotent)."""
    for name, needles in HARMLESS_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropHarmless) for f in logger.filters):
            logger.addFilter(_DropHarmless(needles))


@contextmanager
def drop_stderr_lines(needles: tuple[str, ...] = HARMLESS_STDERR) -> Iterator[None]:
    """Drop the lines of file descriptor 2 (C++ logs included) that contain one of
    ``needles`` while the block runs; every other line passes through unchanged.
    Kept to short blocks (building the algorithm), where Ray core prints the line."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as src:
            for line in src:
                if not any(n.encode() in line for n in needles):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=5)
        os.close(saved)
