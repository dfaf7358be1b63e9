"""The engines' behaviour is pinned: every action, reward, observation, mask and final
grader of 20 seeded episodes per (ruleset, task, team) hashes to the committed
fingerprint. A change that alters seeded episodes must say so (a new env version) and
regenerate the file with ``python experiments/behaviour_hash.py --out
tests/data/behaviour_fingerprint.json``."""

import json
from pathlib import Path

from experiments.behaviour_hash import fingerprint

FINGERPRINT = Path(__file__).parent / "data" / "behaviour_fingerprint.json"


def test_seeded_episodes_match_the_committed_fingerprint():
    expected = json.loads(FINGERPRINT.read_text())
    got = fingerprint(20)
    assert sorted(got) == sorted(expected)
    differ = [k for k in expected if got[k] != expected[k]]
    assert not differ, f"seeded episodes changed for {differ}"
