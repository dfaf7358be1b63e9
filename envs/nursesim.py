"""``NurseSim-Triage-v0`` (also ``edmarl/NurseSim-Triage-v0``): triage a stream of
arriving ED patients into an MTS category and an intervention, with beds that fill.

Description
    One episode is a triage shift of ``n_patients`` arrivals (default 12), drawn by
    :class:`~envs.clinical.PatientGenerator` (true category from the category mix,
    charted presentation with noise and missing values). Arrivals follow a Poisson
    process (mean gap ``mean_interarrival_minutes``, first arrival at minute 0). Each
    step the agent triages the patient at the head of the waiting room; triage takes
    ``triage_minutes``, so the next decision is at
    ``max(now + triage_minutes, next arrival)``.

    The ED has three areas with ``beds = (resus, majors, minors)`` beds (default
    ``(2, 4, 3)``). The intervention decides where the patient goes:
    ``send_to_resus`` / ``send_to_majors`` / ``send_to_minors`` to that area;
    ``order_ecg`` / ``give_analgesia`` do that and then route by the *assigned*
    category (1 → resus, 2–3 → majors, 4–5 → minors); ``discharge`` / ``refer_to_gp``
    send the patient away (no bed). A patient takes a free bed at once, else joins
    that area's bed queue, served in order of *assigned* category, then triage time.
    A bed is held for a length of stay drawn per patient (:data:`MEAN_STAY_MINUTES`
    by true category, ×U(0.7, 1.3)). So the category and the area chosen decide who
    waits: over-triage fills resus, under-triage puts a critical patient behind others.

Action space
    ``MultiDiscrete([5, 7])``: ``(category - 1, intervention index)`` with
    interventions in :data:`~envs.clinical.INTERVENTIONS` order: 0 send_to_resus,
    1 send_to_majors, 2 send_to_minors, 3 order_ecg, 4 give_analgesia, 5 discharge,
    6 refer_to_gp. ``step`` also accepts ``{"category": 1..5, "intervention": name or
    index}``. Anything else (wrong shape, out of range, unknown intervention name) raises
    ``ValueError`` before the state changes; no action is penalised for its form.

Observation space (``Dict``; ``-1`` = not recorded)
    * ``complaint``: ``Text`` — the presenting complaint, free text.
    * ``history``: ``Text`` — the background history.
    * ``patient``: ``Text`` — the whole nurse-visible card (LLM prompt material).
    * ``vitals``: ``Box(-1, high, (8,), float32)`` — hr, rr, sbp, dbp, spo2 (%),
      temp (°C), avpu code (0 A, 1 C, 2 V, 3 P, 4 U), pain 0–10.
    * ``demographics``: ``Box(0, high, (5,), float32)`` — age, sex (0 M, 1 F),
      arrival mode (0 walk-in, 1 ambulance, 2 other), injury 0/1, self-reported
      urgency 1–5 (0: not charted).
    * ``flowchart``: ``Discrete(len(Flowchart) + 1)`` — enum index; the last value
      means not recorded.
    * ``waiting_room``: ``Discrete(n_patients)`` — other arrived patients not yet
      triaged.
    * ``available_beds``: ``Box(0, beds, (3,), int64)`` — free beds (resus, majors,
      minors) now.
    * ``bed_queue``: ``Box(0, n_patients, (3,), int64)`` — triaged patients waiting
      for a bed in each area.

    The true category is never in the observation. :class:`NurseSimNumeric` turns
    the dict into one fixed-shape ``Box`` for RLlib.

Rewards (per step, each term also in ``info["reward_terms"]``)
    * ``correct_category``: **+10** when the assigned category equals the truth.
    * ``safety_failure``: **−50**, at most once per patient, for a critical safety
      failure: a true category 1–2 patient discharged or referred to the GP; a true
      category 1 sent to minors; or a true category 1–2 under-triaged by two or more
      levels.
    * ``critical_wait``: **−1 per minute** that each critical patient (true category
      ≤ ``critical_max_category``, default 1) spends triaged but waiting for a bed,
      counted from this decision to the next (on the last step, until every queue
      has drained). Arrivals before triage are not counted: triage order is fixed.

Episode end
    ``terminated`` after the ``n_patients``-th decision (the remaining bed queues are
    drained then and their critical waiting charged to that step); never truncated.
    ``info`` after each step names the triaged patient's ``true_category``,
    ``presentation_id`` and ``discriminators`` (for analysis, after the decision).

Arguments
    ``n_patients`` (12), ``beds`` ((2, 4, 3)), ``mean_interarrival_minutes`` (8.0),
    ``triage_minutes`` (5), ``category_mix`` (generator default 5/15/35/35/10 %),
    ``presentation_ids`` (a template subset, e.g. a test split), ``charting``
    (:class:`~envs.clinical.ChartingConfig`), ``critical_max_category`` (1),
    ``render_mode`` (``"ansi"`` or None). ``reset(seed=s)`` reseeds everything;
    equal seeds give equal episodes. ``reset(options=...)`` may script an episode:
    ``patients`` (``n_patients`` :class:`~envs.clinical.GeneratedPatient`),
    ``arrival_minutes`` (sorted, first 0) and ``stay_minutes`` (bed occupancy per
    patient) replace the drawn ones; other keys raise ``ValueError``.

Version history
    v0: first release — NurseSim-RL's reward terms on a multi-patient shift with beds.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.clinical.generator import (
    DEFAULT_CATEGORY_MIX,
    PHYSIOLOGICAL_RANGE,
    REALISTIC_CHARTING,
    ChartingConfig,
    GeneratedPatient,
    PatientGenerator,
)
from envs.clinical.presentation import (
    AVPU,
    INTERVENTIONS,
    VITAL_FIELDS,
    ArrivalMode,
    Flowchart,
    Intervention,
    Presentation,
    Sex,
    format_presentation,
)
from envs.types import Severity
from envs.validation import check_action, check_seed


class Area(IntEnum):
    RESUS = 0
    MAJORS = 1
    MINORS = 2


CORRECT_CATEGORY_REWARD = 10.0
SAFETY_FAILURE_PENALTY = -50.0
CRITICAL_WAIT_PENALTY_PER_MINUTE = -1.0
DANGEROUS_UNDER_TRIAGE_LEVELS = 2
MEAN_STAY_MINUTES = {1: 120, 2: 90, 3: 75, 4: 45, 5: 30}
STAY_JITTER = (0.7, 1.3)
DEFAULT_BEDS = (2, 4, 3)
MISSING = -1.0
MAX_TEXT = 1024
TEXT_CHARSET = frozenset(string.ascii_letters + string.digits + " .,;:'\"!?()[]-/+%<>=&*#_\n")

AREA_OF_INTERVENTION = {
    Intervention.SEND_TO_RESUS: Area.RESUS,
    Intervention.SEND_TO_MAJORS: Area.MAJORS,
    Intervention.SEND_TO_MINORS: Area.MINORS,
}
AREA_OF_CATEGORY = {1: Area.RESUS, 2: Area.MAJORS, 3: Area.MAJORS, 4: Area.MINORS,
                    5: Area.MINORS}  # fmt: skip
LEAVES = frozenset({Intervention.DISCHARGE, Intervention.REFER_TO_GP})
AVPU_CODES = {a: i for i, a in enumerate(AVPU)}
SEX_CODES = {Sex.MALE: 0, Sex.FEMALE: 1}
ARRIVAL_CODES = {ArrivalMode.WALK_IN: 0, ArrivalMode.AMBULANCE: 1, ArrivalMode.OTHER: 2}
FLOWCHART_LIST: tuple[Flowchart, ...] = tuple(Flowchart)
NO_FLOWCHART = len(FLOWCHART_LIST)
VITALS_HIGH = np.array(
    [PHYSIOLOGICAL_RANGE[f][1] for f in VITAL_FIELDS] + [len(AVPU) - 1, 10], dtype=np.float32
)
DEMOGRAPHICS_HIGH = np.array([120, 1, 2, 1, 5], dtype=np.float32)
MAX_AGE = 120


def sanitize_text(text: str) -> str:
    """Map text into :data:`TEXT_CHARSET` (° and other symbols become spaces)."""
    text = text.replace("\u00b0", " ").replace("\u2013", "-").replace("\u2014", "-")
    return "".join(c if c in TEXT_CHARSET else " " for c in text)[:MAX_TEXT]


@dataclass(slots=True)
class _Waiting:
    """A triaged patient waiting for a bed (sortable by priority)."""

    key: tuple[int, int, int]  # (assigned category, triage minute, patient index)
    index: int
    since: int  # minute they joined the queue
    charged_until: int
    critical: bool


@dataclass(slots=True)
class _Ward:
    free_at: list[int]  # per bed, the minute it frees
    queue: list[_Waiting] = field(default_factory=list)


class NurseSimTriageEnv(gym.Env[dict[str, Any], np.ndarray]):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        n_patients: int = 12,
        beds: Sequence[int] = DEFAULT_BEDS,
        mean_interarrival_minutes: float = 8.0,
        triage_minutes: int = 5,
        category_mix: Sequence[float] = DEFAULT_CATEGORY_MIX,
        presentation_ids: Sequence[str] | None = None,
        charting: ChartingConfig = REALISTIC_CHARTING,
        critical_max_category: int = 1,
        render_mode: str | None = None,
    ) -> None:
        if n_patients < 1:
            raise ValueError(f"n_patients must be >= 1, got {n_patients}")
        beds = tuple(int(b) for b in beds)
        if len(beds) != len(Area) or min(beds) < 1:
            raise ValueError(f"beds must be 3 positive counts (resus, majors, minors), got {beds}")
        if mean_interarrival_minutes <= 0 or triage_minutes < 0:
            raise ValueError("mean_interarrival_minutes must be > 0 and triage_minutes >= 0")
        if not 1 <= critical_max_category <= 5:
            raise ValueError("critical_max_category must be in 1..5")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.n_patients = n_patients
        self.beds = beds
        self.mean_interarrival = float(mean_interarrival_minutes)
        self.triage_minutes = int(triage_minutes)
        self.critical_max_category = critical_max_category
        self.render_mode = render_mode
        self._generator = PatientGenerator(
            0, category_mix=category_mix, presentation_ids=presentation_ids, charting=charting
        )
        self.action_space = spaces.MultiDiscrete([len(Severity), len(INTERVENTIONS)])
        text = spaces.Text(MAX_TEXT, min_length=0, charset=TEXT_CHARSET)
        self.observation_space = spaces.Dict(
            {
                "complaint": text,
                "history": text,
                "patient": text,
                "vitals": spaces.Box(MISSING, VITALS_HIGH, shape=(8,), dtype=np.float32),
                "demographics": spaces.Box(0.0, DEMOGRAPHICS_HIGH, shape=(5,), dtype=np.float32),
                "flowchart": spaces.Discrete(NO_FLOWCHART + 1),
                "waiting_room": spaces.Discrete(n_patients),
                "available_beds": spaces.Box(0, np.array(beds), shape=(3,), dtype=np.int64),
                "bed_queue": spaces.Box(0, n_patients, shape=(3,), dtype=np.int64),
            }
        )
        self._patients: list[GeneratedPatient] = []
        self._arrivals: list[int] = []
        self._stays: list[int] = []
        self._wards: list[_Ward] = []
        self._k = 0
        self._now = 0
        self._done = True
        self.episode_return = 0.0
        self._last: dict[str, Any] = {}

    # ------------------------------------------------------------------ episode
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=check_seed(seed))
        rng = self.np_random
        self._generator.rng = rng
        self._patients = self._generator.sample_many(self.n_patients)
        gaps = rng.exponential(self.mean_interarrival, size=self.n_patients - 1)
        self._arrivals = [0, *np.round(np.cumsum(gaps)).astype(int).tolist()]
        jitter = rng.uniform(*STAY_JITTER, size=self.n_patients)
        self._stays = [
            max(1, round(MEAN_STAY_MINUTES[int(p.category)] * j))
            for p, j in zip(self._patients, jitter, strict=True)
        ]
        if options:
            self._script(options)
        self._wards = [_Ward([0] * n) for n in self.beds]
        self._k = 0
        self._now = 0
        self._done = False
        self.episode_return = 0.0
        self._last = {}
        return self._obs(), {"time_minutes": self._now, "n_patients": self.n_patients}

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("call reset() before step() (the episode is over or not started)")
        category, intervention = self.parse_action(action)
        k = self._k
        patient = self._patients[k]
        true = int(patient.category)
        terms = {"correct_category": 0.0, "safety_failure": 0.0, "critical_wait": 0.0}
        if category == true:
            terms["correct_category"] = CORRECT_CATEGORY_REWARD
        failure = self.safety_failure(true, category, intervention)
        if failure:
            terms["safety_failure"] = SAFETY_FAILURE_PENALTY

        area: Area | None = None
        if intervention not in LEAVES:
            area = AREA_OF_INTERVENTION.get(intervention, AREA_OF_CATEGORY[category])
            self._admit(k, area, category, critical=true <= self.critical_max_category)

        self._k += 1
        terminated = self._k >= self.n_patients
        if terminated:
            wait_minutes = self._drain()
            self._done = True
        else:
            nxt = max(self._now + self.triage_minutes, self._arrivals[self._k])
            wait_minutes = self._advance(nxt)
            self._now = nxt
        if wait_minutes:
            terms["critical_wait"] = CRITICAL_WAIT_PENALTY_PER_MINUTE * wait_minutes
        reward = float(sum(terms.values()))
        self.episode_return += reward
        info = {
            "patient_index": k,
            "presentation_id": patient.presentation_id,
            "true_category": true,
            "assigned_category": category,
            "intervention": intervention.value,
            "area": None if area is None else area.name.lower(),
            "discriminators": [d.value for d in patient.discriminators],
            "safety_failure": failure,
            "critical_wait_minutes": wait_minutes,
            "reward_terms": terms,
            "time_minutes": self._now,
        }
        if terminated:
            info["episode_return"] = self.episode_return
        self._last = info
        return self._obs(), reward, terminated, False, info

    def _script(self, options: dict[str, Any]) -> None:
        """Replace drawn parts of the episode (scripted scenarios, tests, curricula)."""
        unknown = set(options) - {"patients", "arrival_minutes", "stay_minutes"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}")
        n = self.n_patients
        if "patients" in options:
            patients = list(options["patients"])
            if len(patients) != n or not all(isinstance(p, GeneratedPatient) for p in patients):
                raise ValueError(f"options['patients'] must be {n} GeneratedPatient objects")
            self._patients = patients
        if "arrival_minutes" in options:
            arrivals = [int(t) for t in options["arrival_minutes"]]
            if len(arrivals) != n or arrivals[0] != 0 or arrivals != sorted(arrivals):
                raise ValueError(f"options['arrival_minutes'] must be {n} sorted ints from 0")
            self._arrivals = arrivals
        if "stay_minutes" in options:
            stays = [int(t) for t in options["stay_minutes"]]
            if len(stays) != n or min(stays) < 1:
                raise ValueError(f"options['stay_minutes'] must be {n} positive ints")
            self._stays = stays

    # ------------------------------------------------------------------ rules
    @staticmethod
    def parse_action(action: Any) -> tuple[int, Intervention]:
        """``(category 1–5, Intervention)`` from an array/sequence or a dict; else ValueError."""
        if isinstance(action, dict):
            if "category" not in action or "intervention" not in action:
                raise ValueError(
                    f"dict action needs 'category' (1-5) and 'intervention', got {action!r:.200}"
                )
            category = check_action(action["category"], "an int 1..5", "category")
            raw = action["intervention"]
            if isinstance(raw, str):
                try:
                    intervention = Intervention(raw)
                except ValueError:
                    names = ", ".join(i.value for i in INTERVENTIONS)
                    raise ValueError(f"unknown intervention {raw!r}; one of: {names}") from None
            else:
                intervention = NurseSimTriageEnv._intervention_at(raw)
        else:
            form = "2 integers (category-1 in 0..4, intervention in 0..6)"
            items = list(action) if isinstance(action, (list, tuple)) else None
            if items is not None:  # [True, 1] would become an integer array: check each
                if len(items) != 2:
                    raise ValueError(f"action must be {form}, got {action!r:.200}")
                items = [check_action(x, "an integer", "action element") for x in items]
            arr = np.asarray(action if items is None else items)
            if arr.shape != (2,) or not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"action must be {form}, got {action!r:.200}")
            category = int(arr[0]) + 1
            intervention = NurseSimTriageEnv._intervention_at(arr[1])
        if not 1 <= category <= 5:
            raise ValueError(f"category must be 1..5 (action[0] in 0..4), got {category}")
        return category, intervention

    @staticmethod
    def _intervention_at(index: Any) -> Intervention:
        i = check_action(index, f"an int in 0..{len(INTERVENTIONS) - 1}", "intervention index")
        if not 0 <= i < len(INTERVENTIONS):
            raise ValueError(f"intervention index must be in 0..{len(INTERVENTIONS) - 1}, got {i}")
        return INTERVENTIONS[i]

    @staticmethod
    def safety_failure(true: int, assigned: int, intervention: Intervention) -> bool:
        """Critical safety failure (see the module docstring)."""
        if true <= 2 and intervention in LEAVES:
            return True
        if true == 1 and intervention is Intervention.SEND_TO_MINORS:
            return True
        return true <= 2 and assigned - true >= DANGEROUS_UNDER_TRIAGE_LEVELS

    # ------------------------------------------------------------------ beds
    def _admit(self, k: int, area: Area, category: int, critical: bool) -> None:
        ward = self._wards[area]
        # _advance(now) ran before, so a non-empty queue means no bed is free now.
        if not ward.queue:
            bed = int(np.argmin(ward.free_at))
            if ward.free_at[bed] <= self._now:
                ward.free_at[bed] = self._now + self._stays[k]
                return
        ward.queue.append(_Waiting((category, self._now, k), k, self._now, self._now, critical))
        ward.queue.sort(key=lambda w: w.key)

    def _advance(self, until: int) -> int:
        """Move the wards to minute ``until``; return critical waiting minutes accrued."""
        minutes = 0
        for ward in self._wards:
            while ward.queue:
                bed = int(np.argmin(ward.free_at))
                start = max(ward.free_at[bed], ward.queue[0].since)
                if start > until:
                    break
                w = ward.queue.pop(0)
                if w.critical:
                    minutes += start - w.charged_until
                ward.free_at[bed] = start + self._stays[w.index]
            for w in ward.queue:
                if w.critical:
                    minutes += until - w.charged_until
                w.charged_until = until
        return minutes

    def _drain(self) -> int:
        horizon = self._now + sum(self._stays) + 1  # every queue is empty by then
        return self._advance(horizon)

    # ------------------------------------------------------------------ views
    @property
    def current_presentation(self) -> Presentation:
        """The charted record of the patient being triaged — the observation's content
        as a :class:`~envs.clinical.Presentation`, for rule-based nurses. (It carries
        the record's pharmacist/consultant fields too; a triage policy must not use them.)"""
        if not self._patients:
            raise RuntimeError("call reset() first")
        return self._patients[min(self._k, self.n_patients - 1)].presentation

    def _obs(self) -> dict[str, Any]:
        k = min(self._k, self.n_patients - 1)  # after the last step: repeat the last patient
        p = self._patients[k].presentation
        vitals = [MISSING if v is None else float(v) for v in p.vitals]
        vitals += [float(AVPU_CODES[p.avpu]), MISSING if p.pain is None else float(p.pain)]
        waiting = sum(1 for t in self._arrivals[k + 1 :] if t <= self._now)
        return {
            "complaint": sanitize_text(p.complaint),
            "history": sanitize_text(p.history),
            "patient": sanitize_text(format_presentation(p)),
            "vitals": np.array(vitals, dtype=np.float32),
            "demographics": np.array(
                [
                    min(p.age, MAX_AGE),
                    SEX_CODES[p.sex],
                    ARRIVAL_CODES[p.arrival_mode],
                    float(p.injury),
                    p.self_reported_urgency or 0,  # 0: not charted (real charts)
                ],
                dtype=np.float32,
            ),  # fmt: skip
            "flowchart": NO_FLOWCHART if p.flowchart is None else FLOWCHART_LIST.index(p.flowchart),
            "waiting_room": min(waiting, self.n_patients - 1),
            "available_beds": np.array(
                [sum(1 for f in w.free_at if f <= self._now) for w in self._wards]
                if self._wards
                else list(self.beds),
                dtype=np.int64,
            ),
            "bed_queue": np.array(
                [len(w.queue) for w in self._wards] if self._wards else [0, 0, 0], dtype=np.int64
            ),
        }

    def render(self) -> str | None:
        if self.render_mode != "ansi" or not self._patients:
            return None
        obs = self._obs()
        beds = ", ".join(
            f"{a.name.lower()} {int(obs['available_beds'][a])}/{self.beds[a]} free"
            f" (+{int(obs['bed_queue'][a])} queued)"
            for a in Area
        )
        head = f"minute {self._now}  patient {min(self._k + 1, self.n_patients)}/{self.n_patients}"
        lines = [f"{head}  waiting {obs['waiting_room']}  {beds}"]
        if self._last:
            last = self._last
            lines.append(
                f"last: {last['presentation_id']} true {last['true_category']} assigned "
                f"{last['assigned_category']} {last['intervention']} reward "
                f"{sum(last['reward_terms'].values()):+.0f}"
            )
        if not self._done:
            lines.append(obs["patient"])
        return "\n".join(lines)


NurseSimTriageEnv.__doc__ = __doc__


def __getattr__(name: str) -> Any:  # the numeric wrapper: envs.nursesim_numeric (imports us)
    from envs import nursesim_numeric

    if name in nursesim_numeric.__all__:
        return getattr(nursesim_numeric, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
