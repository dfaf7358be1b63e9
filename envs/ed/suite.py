"""The ``ed`` scenario suite (:mod:`envs.ed.v1`): named, seeded distributions
of generated EDs, each with one documented challenge.

A scenario is a :class:`~envs.generator.GeneratorParams` (its ``name`` is the task
name of every draw) plus the :class:`~envs.ed.config.EdConfig` it is played with (the
v1 mechanisms, :data:`~envs.ed.config.V1`, with the scenario's capacities and stock).
Episode seed s plays ``generate_task(s, params)`` as drawn, like ``generated``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from envs.ed.config import N_DRUGS, V1, EdConfig
from envs.ed.scenario import SCHEDULE_BUILDERS, as_drawn
from envs.generator import GeneratedTaskSource, GeneratorParams


@dataclass(frozen=True)
class SuiteScenario:
    name: str
    challenge: str
    """The decision the scenario tests (one sentence; README's difficulty table)."""
    params: GeneratorParams
    config: EdConfig = V1

    @property
    def source(self) -> GeneratedTaskSource:
        return GeneratedTaskSource(self.params)


def _s(name: str, challenge: str, config: EdConfig = V1, **params) -> SuiteScenario:
    return SuiteScenario(name, challenge, GeneratorParams(name=name, **params), config)


SUITE: tuple[SuiteScenario, ...] = (
    _s("icu_surge",
       "surges of critical patients and one ICU bed: the consultant must keep the bed "
       "and the doctors for the patients whose reward they save most",
       doctors=2, arrival_rate=0.7, surge_prob=0.12, surge_size=(4, 7), icu_rate=0.4,
       surge_category_mix=(0.35, 0.40, 0.15, 0.10, 0.0)),
    _s("sepsis_wave",
       "half the patients deteriorate within 2-3 steps unless the pharmacist gives the "
       "indicated drug in time (one dose per step); two doctors",
       doctors=2, arrival_rate=0.9, category_mix=(0.05, 0.35, 0.35, 0.20, 0.05),
       deterioration_prob=0.55,
       deterioration_countdown=(2, 3)),
    _s("night_shift",
       "one doctor, no ICU, steady arrivals: which patient the consultant sees next "
       "decides who leaves or dies waiting",
       doctors=1, icu_beds=0, arrival_rate=0.8),
    _s("misreporters",
       "most patients misreport their urgency and the nurse triages one per step: the "
       "consultant only sees what the nurse assigns",
       replace(V1, triage_capacity=1), doctors=2, arrival_rate=1.3, misreport_prob=0.8),
    _s("drug_shortage",
       "deteriorating patients with one dose of each drug on the shelf: the pharmacist "
       "must not waste stock on patients who do not need it",
       replace(V1, stock=(1,) * N_DRUGS),
       deterioration_prob=0.45, category_mix=(0.05, 0.30, 0.35, 0.25, 0.05)),
    _s("long_shift",
       "a 48-step shift of mostly low-acuity patients with short patience: leaving "
       "without being seen is the main loss",
       replace(V1, lwbs_patience=(0, 0, 6, 4, 3)), horizon=48, doctors=2,
       arrival_rate=1.0, category_mix=(0.03, 0.12, 0.35, 0.35, 0.15), max_patients=72),
)  # fmt: skip
SCENARIOS: dict[str, SuiteScenario] = {s.name: s for s in SUITE}
TASK_CONFIGS: dict[str, EdConfig] = {
    "mass_casualty": replace(V1, treatment_steps=(4,) * 5),
}
"""v1 configs of the fixed tasks that differ from :data:`V1`: in a mass-casualty
incident every major-trauma patient holds a doctor for 40 minutes."""
"""Scenario name → scenario (task names accepted by ``ed_triage_v1`` and the CLIs)."""

# Suite draws are played as generated, like ``generated`` (no classic perturbation).
SCHEDULE_BUILDERS.update(dict.fromkeys(SCENARIOS, as_drawn))
