"""The three fixed tasks of Queue Doctor, and the task registry.

Schedules are Queue Doctor's (AjayBandiwaddar/queue-doctor, ``server/tasks.py``) as
data; docs/spec.md §1 lists them. Queue Doctor's ids (``task_1_easy`` …) are accepted aliases.
"""

from __future__ import annotations

from envs.types import Grader, PatientSpec, TaskSpec


def _p(
    step: int,
    pid: str,
    sev: int,
    reported: int | None = None,
    *,
    icu: bool = False,
    spec: bool = False,
    det: int = -1,
) -> PatientSpec:
    return PatientSpec(
        patient_id=pid,
        step=step,
        severity=sev,
        reported_severity=sev if reported is None else reported,
        deterioration_countdown=det,
        requires_icu=icu,
        requires_specialist=spec,
    )


BASIC_TRIAGE = TaskSpec(
    name="basic_triage",
    alias="task_1_easy",
    title="Basic Triage",
    difficulty="easy",
    max_steps=10,
    num_doctors=1,
    icu_beds=0,
    grader=Grader.EASY,
    description=(
        "One doctor, six patients waiting at the start, ten steps. Patients self-report "
        "their severity (1 = most critical, 5 = minor), which may not reflect true "
        "clinical urgency. Each step, serve one patient or wait."
    ),
    arrivals=(
        _p(0, "P001", 1, 4),
        _p(0, "P002", 2),
        _p(0, "P003", 3),
        _p(0, "P004", 3),
        _p(0, "P005", 4),
        _p(0, "P006", 5),
    ),
    optimal_reward=3.96,
)

DYNAMIC_QUEUE = TaskSpec(
    name="dynamic_queue",
    alias="task_2_medium",
    title="Dynamic Queue Management",
    difficulty="medium",
    max_steps=20,
    num_doctors=2,
    icu_beds=0,
    grader=Grader.MEDIUM,
    description=(
        "Two doctors, 29 patients arriving in waves over twenty steps: more than can be "
        "served. Two patients misreport their severity and two need a specialist (both "
        "doctors). Scored on throughput (60 %) and fairness of waits (40 %)."
    ),
    arrivals=(
        _p(0, "P001", 3, 1),
        _p(0, "P002", 2),
        _p(0, "P003", 4),
        _p(0, "P004", 5),
        _p(2, "P005", 1),
        _p(2, "P006", 2, spec=True),
        _p(4, "P007", 1),
        _p(4, "P008", 3),
        _p(6, "P009", 4, 2),
        _p(6, "P010", 3),
        _p(8, "P011", 2),
        _p(8, "P012", 4),
        _p(10, "P013", 1),
        _p(10, "P014", 2, spec=True),
        _p(10, "P015", 3),
        _p(13, "P016", 2),
        _p(13, "P017", 4),
        _p(15, "P023", 2),
        _p(15, "P024", 3),
        _p(15, "P025", 4),
        _p(15, "P026", 2),
        _p(15, "P027", 3),
        _p(17, "P028", 2),
        _p(17, "P029", 3),
        _p(17, "P030", 4),
        _p(17, "P031", 2),
        _p(17, "P032", 3),
        _p(19, "P033", 2),
        _p(19, "P034", 3),
    ),
    optimal_reward=14.073,
)

MASS_CASUALTY = TaskSpec(
    name="mass_casualty",
    alias="task_3_hard",
    title="Mass Casualty Resource Management",
    difficulty="hard",
    max_steps=30,
    num_doctors=3,
    icu_beds=1,
    grader=Grader.HARD,
    description=(
        "A major trauma centre: three doctors, one ICU bed (consumed for good when used), "
        "thirty steps, 21 patients in waves with a surge of five at step 12. Some patients "
        "deteriorate if untreated; some need the ICU bed or a specialist. Scored on "
        "survival (35 %), time to treatment (25 %), fairness (20 %) and resource use "
        "(20 %), minus a penalty per step a severity-1 patient waits."
    ),
    arrivals=(
        _p(0, "P001", 1, icu=True),
        _p(0, "P002", 2, spec=True),
        _p(0, "P003", 3),
        _p(0, "P004", 4),
        _p(3, "P005", 2, det=3),
        _p(3, "P006", 3, det=2),
        _p(6, "P007", 1),
        _p(6, "P008", 3, 2),
        _p(6, "P009", 4),
        _p(9, "P010", 2, det=4),
        _p(9, "P011", 3),
        _p(12, "P012", 1, icu=True),
        _p(12, "P013", 1),
        _p(12, "P014", 1, spec=True),
        _p(12, "P015", 2, icu=True),
        _p(12, "P016", 2),
        _p(18, "P017", 2),
        _p(18, "P018", 3),
        _p(18, "P019", 4),
        _p(24, "P020", 3),
        _p(24, "P021", 2),
    ),
    optimal_reward=10.05,
)

TASKS: dict[str, TaskSpec] = {t.name: t for t in (BASIC_TRIAGE, DYNAMIC_QUEUE, MASS_CASUALTY)}
"""Task name → spec. Queue Doctor's ids resolve through :func:`get_task`."""

TASK_ALIASES: dict[str, str] = {t.alias: t.name for t in TASKS.values()}


class UnknownTaskError(ValueError):
    """Raised for a task name that is neither a task nor an alias."""


def get_task(name: str) -> TaskSpec:
    """Return the task spec for a name or a Queue Doctor alias (``task_3_hard``)."""
    key = TASK_ALIASES.get(name, name)
    try:
        return TASKS[key]
    except (KeyError, TypeError):
        valid = ", ".join([*TASKS, *TASK_ALIASES])
        raise UnknownTaskError(f"unknown task {name!r}; choose one of: {valid}") from None
