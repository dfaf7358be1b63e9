"""``NurseSimNumeric``: the fixed-shape numeric observation of ``NurseSim-Triage-v0``
(:mod:`envs.nursesim`) for RLlib."""

from __future__ import annotations

import zlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.clinical.news2 import PARAMETERS as NEWS2_PARAMETERS
from envs.clinical.news2 import news2
from envs.clinical.presentation import AVPU, VITAL_FIELDS
from envs.nursesim import DEMOGRAPHICS_HIGH, NO_FLOWCHART, VITALS_HIGH, NurseSimTriageEnv

TEXT_HASH_BUCKETS = 64
"""Bag-of-words buckets (CRC32 of each lower-case word) for complaint and history."""
NUMERIC_LAYOUT: tuple[tuple[str, int], ...] = (
    ("vitals", 8),  # value / physiological maximum, 0 when missing
    ("vitals_missing", 8),  # 1 when not recorded
    ("demographics", 5),  # value / maximum
    ("flowchart", NO_FLOWCHART + 1),  # one-hot, last = not recorded
    ("news2", len(NEWS2_PARAMETERS) + 1),  # subscores / 3, total / 20 (charted values)
    ("waiting_room", 1),  # / n_patients
    ("available_beds", 3),  # / beds
    ("bed_queue", 3),  # / n_patients
    ("text", TEXT_HASH_BUCKETS),  # 1 if a word of complaint/history hashes there
)
NUMERIC_SIZE = sum(n for _, n in NUMERIC_LAYOUT)
NEWS2_MAX = 20


def _hash_words(text: str, buckets: int = TEXT_HASH_BUCKETS) -> np.ndarray:
    out = np.zeros(buckets, dtype=np.float32)
    for word in "".join(c.lower() if c.isalnum() else " " for c in text).split():
        out[zlib.crc32(word.encode()) % buckets] = 1.0
    return out


class NurseSimNumeric(gym.ObservationWrapper):
    """Fixed-shape numeric observation for RLlib: ``Box(0, 1, (NUMERIC_SIZE,), float32)``.

    Layout in :data:`NUMERIC_LAYOUT` order. Built from the dict observation alone
    (never from hidden state); the text becomes hashed bag-of-words features, and
    NEWS2 is recomputed from the charted vitals (missing ones score 0).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, NurseSimTriageEnv):
            raise TypeError("NurseSimNumeric wraps a NurseSimTriageEnv")
        self._n = base.n_patients
        self._beds = np.array(base.beds, dtype=np.float32)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(NUMERIC_SIZE,), dtype=np.float32)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        vitals = np.asarray(observation["vitals"], dtype=np.float32)
        missing = (vitals < 0).astype(np.float32)
        scaled = np.where(missing > 0, 0.0, vitals / VITALS_HIGH)
        flow = np.zeros(NO_FLOWCHART + 1, dtype=np.float32)
        flow[int(observation["flowchart"])] = 1.0
        v = {f: (None if vitals[i] < 0 else float(vitals[i])) for i, f in enumerate(VITAL_FIELDS)}
        score = news2(rr=v["rr"], spo2=v["spo2"], sbp=v["sbp"], hr=v["hr"],
                      avpu=list(AVPU)[int(vitals[6])], temp=v["temp"])  # fmt: skip
        parts = [
            scaled,
            missing,
            np.asarray(observation["demographics"], dtype=np.float32) / DEMOGRAPHICS_HIGH,
            flow,
            np.array([*(s / 3 for s in score.subscores), min(score.total, NEWS2_MAX) / NEWS2_MAX]),
            np.array([observation["waiting_room"] / self._n]),
            np.asarray(observation["available_beds"], dtype=np.float32) / self._beds,
            np.asarray(observation["bed_queue"], dtype=np.float32) / self._n,
            _hash_words(f"{observation['complaint']} {observation['history']}"),
        ]
        return np.clip(np.concatenate(parts).astype(np.float32), 0.0, 1.0)


def make_numeric(**kwargs: Any) -> NurseSimNumeric:
    """``NurseSimNumeric(NurseSimTriageEnv(**kwargs))`` — the RLlib entry point."""
    return NurseSimNumeric(NurseSimTriageEnv(**kwargs))


__all__ = ["NUMERIC_LAYOUT", "NUMERIC_SIZE", "TEXT_HASH_BUCKETS", "NurseSimNumeric", "make_numeric"]
