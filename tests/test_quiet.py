"""agents.rllib.quiet drops exactly the known-harmless Ray/RLlib start-up messages."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from agents.rllib.quiet import HARMLESS_LOGS, HARMLESS_STDERR, silence_harmless_logs

ROOT = Path(__file__).resolve().parent.parent


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_harmless_log_records_are_dropped_and_others_kept():
    silence_harmless_logs()
    silence_harmless_logs()  # idempotent: one filter per logger
    for name, needles in HARMLESS_LOGS.items():
        logger = logging.getLogger(name)
        assert len(logger.filters) == 1
        # Ray's loggers do not propagate to the root once Ray is imported: listen here.
        keep = _Keep()
        logger.addHandler(keep)
        try:
            logger.warning("prefix %s suffix", needles[0])
            logger.warning("something else went wrong")
        finally:
            logger.removeHandler(keep)
        assert keep.messages == ["something else went wrong"], name


def test_stderr_filter_drops_only_the_known_line_even_from_c_level_writes():
    script = (
        "import os, sys\n"
        "from agents.rllib.quiet import drop_stderr_lines, HARMLESS_STDERR\n"
        "with drop_stderr_lines():\n"
        "    os.write(2, b'[E core_worker.cc] Actor ' + HARMLESS_STDERR[0].encode() + b' x\\n')\n"
        "    os.write(2, b'a real error\\n')\n"
        "    print('python line', file=sys.stderr)\n"
        "os.write(2, b'after\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["a real error", "python line", "after"]
    assert HARMLESS_STDERR[0] not in proc.stderr
