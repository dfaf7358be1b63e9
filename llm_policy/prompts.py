"""Observation → chat messages, one pure function per role, and each role's answer format.

Every builder takes an observation (or a chart) and returns ``[{"role": "system", ...},
{"role": "user", ...}]``; nothing here touches a model, an env or a random generator, so
prompts are reproducible and testable. Registered in :data:`PROMPTS` by role name:

* ``consultant`` — the classic single-agent queue envs (``edmarl/*-v0``): the waiting
  patients by patient slot with reported severity, wait, condition, deterioration
  countdown, ICU/specialist flags and whether they can be served now, the step and the
  resources, and the legal answers. Answer: ``SERVE <slot>`` or ``WAIT``.
* ``nursesim`` — ``NurseSim-Triage-v0``: the nurse-visible card with the SFT data's
  instruction (:data:`llm_policy.data.INSTRUCTION`), so a model fine-tuned on
  ``llm_policy.data`` sees exactly its training format. Answer: the first line
  ``CATEGORY n (Name - COLOUR, target m min)`` then, after a rationale,
  ``Recommended intervention: <name>``.

The multi-agent ``ed`` roles (:mod:`envs.ed_triage_v0`, column layouts in
:mod:`envs.ed.observation`), registered under ``ed_nurse`` / ``ed_consultant`` /
``ed_pharmacist``:

* ``ed_nurse`` — one patient at a time (the policy picks which, see
  :mod:`llm_policy.policy`): the SFT card of its charted presentation (complaint,
  flowchart, history, vitals, age, allergies, self-reported urgency; rebuilt from the
  numeric chart when no presentation is available) with the SFT instruction, plus a
  ``Now:`` line when its condition has changed or it is being re-triaged. Answer: the
  NurseSim first line, ``CATEGORY n``.
* ``ed_consultant`` — the waiting patients by slot (visible category and whether the
  nurse set it, wait, condition, countdown, medicated, ICU/specialist, can serve now),
  the doctors and ICU beds left. Answer: ``SERVE <slot>`` or ``END`` (done this step).
* ``ed_pharmacist`` — the patients who may get a drug now (complaint and flowchart,
  category, condition, countdown, allergies, drugs given), the stock. Answer:
  ``PATIENT <slot>: <drug>`` or ``NONE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.clinical.presentation import (
    AVPU,
    INTERVENTIONS,
    ArrivalMode,
    Presentation,
    Sex,
    format_presentation,
)
from envs.ed import codec
from envs.ed.codec import (
    CONSULTANT_CONTEXT,
    CONSULTANT_FEATURES,
    NURSE_CONTEXT,
    NURSE_FEATURES,
    PHARMACIST_CONTEXT,
    PHARMACIST_FEATURES,
    nurse_action,
)
from envs.ed.config import DRUGS, FLOWCHARTS, Role
from envs.observation import (
    CAN_SERVE,
    CONDITION,
    COUNTDOWN,
    DOCTORS,
    ICU,
    ICU_AVAILABLE,
    ICU_TOTAL,
    PRESENT,
    REPORTED,
    SERVED,
    SPECIALIST,
    STEP,
    STEPS_REMAINING,
    WAIT,
    F,
)
from envs.types import MINUTES_PER_STEP, Condition, Severity
from llm_policy.data import CATEGORY_NAMES, INSTRUCTION

Message = dict[str, str]
PromptBuilder = Callable[..., list[Message]]

# -- answer formats ------------------------------------------------------------------------
SERVE_WORD, WAIT_WORD = "SERVE", "WAIT"
INTERVENTION_PREFIX = "Recommended intervention: "
URGENT_COUNTDOWN = 2
"""Countdowns at or below this are flagged 'deteriorates soon' (as the tool API does)."""


def serve_answer(slot: int) -> str:
    return f"{SERVE_WORD} {slot}"


def queue_answer(action: int, wait_action: int) -> str:
    """The consultant's answer text for a queue action (slot index or the wait action)."""
    return WAIT_WORD if action == wait_action else serve_answer(action)


def category_line(category: int) -> str:
    """The first line of a triage answer, exactly as the SFT data writes it."""
    sev = Severity(category)
    return (
        f"CATEGORY {category} ({CATEGORY_NAMES[category]} - {sev.colour}, "
        f"target {sev.target_minutes} min)"
    )


def category_answer(category: int) -> str:
    """What ``score`` mode ranks for a triage decision: ``CATEGORY n``. The five answers
    differ only in the digit, so the ranking is the model's own distribution over the
    category, not a length effect of the names that follow it in :func:`category_line`."""
    return f"CATEGORY {category}"


def intervention_answer(index: int) -> str:
    return INTERVENTIONS[index].value


# -- classic queue consultant --------------------------------------------------------------
CONSULTANT_SYSTEM = (
    "You are the consultant running an emergency department queue. Each step (10 "
    "minutes) you either serve ONE waiting patient who can be served now, or wait.\n"
    "Manchester Triage severity: 1 IMMEDIATE (its reward is lost within 3 steps), "
    "2 VERY_URGENT, 3 URGENT, 4 LESS_URGENT, 5 NON_URGENT. Severities are what patients "
    "report; some are wrong. A patient with a deterioration countdown gets worse when it "
    "reaches 0. Serve the most urgent servable patient first, the longest-waiting among "
    "equals; wait only when nobody can be served.\n"
    f"Answer with exactly one line: {SERVE_WORD} <slot> or {WAIT_WORD}."
)


def _patient_line(slot: int, row: np.ndarray) -> str:
    sev = Severity(int(row[REPORTED]))
    wait = int(row[WAIT])
    countdown = int(row[COUNTDOWN])
    parts = [
        f"slot {slot}: reported severity {int(sev)} ({sev.name})",
        f"waited {wait} step{'s' if wait != 1 else ''}",
        Condition(int(row[CONDITION])).label,
    ]
    if countdown > 0:
        soon = " (soon)" if countdown <= URGENT_COUNTDOWN else ""
        parts.append(f"deteriorates in {countdown} step{'s' if countdown != 1 else ''}{soon}")
    flags = [name for name, col in (("needs ICU", ICU), ("specialist", SPECIALIST)) if row[col]]
    parts += flags
    parts.append("can serve now" if row[CAN_SERVE] else "cannot serve now")
    return "- " + ", ".join(parts)


def consultant_messages(observation: Mapping[str, np.ndarray]) -> list[Message]:
    """Messages for one classic queue observation ``{"observation", "action_mask"}``."""
    mask = np.asarray(observation["action_mask"])
    n = mask.shape[0] - 1
    flat = np.asarray(observation["observation"])
    rows = flat[: n * F].reshape(n, F)
    ctx = flat[n * F :]
    step, left = int(ctx[STEP]), int(ctx[STEPS_REMAINING])
    waiting = [s for s in range(n) if rows[s, PRESENT]]
    lines = [
        f"Step {step} of {step + left} ({left} left, {MINUTES_PER_STEP} min each). "
        f"Doctors: {int(ctx[DOCTORS])}. ICU beds free: {int(ctx[ICU_AVAILABLE])} of "
        f"{int(ctx[ICU_TOTAL])}. Served so far: {int(ctx[SERVED])}.",
        f"Waiting patients ({len(waiting)}):" if waiting else "Nobody is waiting.",
        *(_patient_line(s, rows[s]) for s in waiting),
        "Legal answers: " + ", ".join(queue_answer(a, n) for a in np.flatnonzero(mask)) + ".",
    ]
    return [
        {"role": "system", "content": CONSULTANT_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


# -- NurseSim triage nurse -----------------------------------------------------------------
def sft_messages(instruction: str, card: str) -> list[Message]:
    """The chat form of one SFT record (``instruction`` as system, ``input`` as user)."""
    return [{"role": "system", "content": instruction}, {"role": "user", "content": card}]


def nursesim_messages(observation: Mapping[str, Any] | Presentation) -> list[Message]:
    """Messages for a ``NurseSim-Triage-v0`` observation (its ``patient`` card) or a
    :class:`~envs.clinical.Presentation`. Only the card is shown: the bed state is not in
    the SFT data, and a fine-tuned model should see its training format."""
    if isinstance(observation, Presentation):
        card = format_presentation(observation)
    else:
        card = str(observation["patient"])
    return sft_messages(INSTRUCTION, card)


def record_messages(record: Mapping[str, Any]) -> list[Message]:
    """Messages for an SFT record of :mod:`llm_policy.data` or :mod:`llm_policy.queue_data`."""
    return sft_messages(str(record["instruction"]), str(record["input"]))


# -- multi-agent ed roles ------------------------------------------------------------------
END_WORD, NONE_WORD, PATIENT_WORD = "END", "NONE", "PATIENT"
NOT_CHARTED = "not recorded"
"""Complaint text of a card rebuilt from the numeric chart (no presentation available)."""


def ed_table(
    observation: Mapping[str, np.ndarray], features: Sequence[str], context: Sequence[str]
) -> tuple[np.ndarray, dict[str, float]]:
    """(N × F rows, context by name) of an ``ed`` role's flat observation."""
    flat = np.asarray(observation["observation"])
    f, g = len(features), len(context)
    n = (flat.shape[0] - g) // f
    ctx = {k: float(v) for k, v in zip(context, flat[n * f :], strict=True)}
    return flat[: n * f].reshape(n, f), ctx


def _c(features: Sequence[str], name: str) -> int:
    return features.index(name)


def _steps(n: int) -> str:
    return f"{n} step{'s' if n != 1 else ''}"


def _category_name(category: int) -> str:
    return f"{category} ({Severity(category).name})"


def chart_presentation(row: np.ndarray) -> Presentation:
    """A nurse observation row's numeric chart as a :class:`Presentation` (no complaint
    text or history: those are only in the charted presentation itself)."""
    v = {name: float(row[_c(NURSE_FEATURES, name)]) for name in NURSE_FEATURES}
    vital = {k: None if v[f"{k}_missing"] else v[k] for k in ("hr", "rr", "sbp", "dbp")}
    vital |= {k: None if v[f"{k}_missing"] else v[k] for k in ("spo2", "temp")}
    flow = int(v["flowchart"])
    return Presentation(
        presentation_id="observed", age=int(v["age"]),
        sex=Sex.MALE if v["male"] else Sex.FEMALE,
        arrival_mode=tuple(ArrivalMode)[int(v["arrival_mode"])], injury=bool(v["injury"]),
        complaint=NOT_CHARTED, flowchart=FLOWCHARTS[flow - 1] if flow > 0 else None,
        history=NOT_CHARTED, **vital, avpu=tuple(AVPU)[int(v["avpu"])],
        pain=None if v["pain_missing"] else int(v["pain"]),
        self_reported_urgency=int(v["self_reported_urgency"]) or 3,
    )  # fmt: skip


def nurse_status(row: np.ndarray) -> str:
    """The ``Now:`` line of a nurse card: a changed condition or a re-triage (empty for a
    stable patient seen the first time, whose card is exactly the SFT format)."""
    parts = []
    cond = Condition(int(row[_c(NURSE_FEATURES, "condition")]))
    if cond != Condition.STABLE:
        parts.append(f"condition {cond.label.replace('_', ' ')} (worse than on arrival)")
    if row[_c(NURSE_FEATURES, "triaged")]:
        cat = int(row[_c(NURSE_FEATURES, "assigned_category")])
        parts.append(f"triaged category {cat} before, re-triage now")
    return "Now: " + "; ".join(parts) + "." if parts else ""


def ed_nurse_messages(
    observation: Mapping[str, np.ndarray], slot: int, presentation: Presentation | None = None
) -> list[Message]:
    """Messages triaging patient ``slot`` of a ``triage_nurse`` observation: the SFT
    instruction and the card of its presentation (``PolicyContext.presentation(slot)``;
    None: rebuilt from the numeric chart), plus :func:`nurse_status`."""
    rows, _ = ed_table(observation, NURSE_FEATURES, NURSE_CONTEXT)
    row = rows[slot]
    card = format_presentation(presentation if presentation is not None
                               else chart_presentation(row))  # fmt: skip
    status = nurse_status(row)
    return sft_messages(INSTRUCTION, card + ("\n" + status if status else ""))


ED_CONSULTANT_SYSTEM = (
    "You are the consultant in an emergency department. Every 10-minute step you hand "
    "the free doctors to waiting patients: each answer serves ONE patient who can be "
    f"served now, or says {END_WORD} to serve nobody more this step.\n"
    "Categories are Manchester Triage: 1 IMMEDIATE, 2 VERY_URGENT, 3 URGENT, 4 LESS_URGENT, "
    "5 NON_URGENT; the nurse's when triaged, else what the patient reports. A patient at "
    "risk or critical, or with a deterioration countdown, gets worse unless seen. Serve "
    "the most urgent servable patient first, the longest-waiting among equals; "
    f"{END_WORD} only when nobody can be served.\n"
    f"Answer with exactly one line: {SERVE_WORD} <slot> or {END_WORD}."
)


def ed_consultant_answer(action: int, end_action: int) -> str:
    return END_WORD if action == end_action else serve_answer(action)


def _status_parts(slot: int, category: str, g: Mapping[str, int]) -> list[str]:
    """What the consultant and the pharmacist both see of a waiting patient: slot and
    category, wait, condition, and a visible deterioration countdown."""
    parts = [
        f"slot {slot}: category {category}",
        f"waited {_steps(g['wait'])}",
        Condition(g["condition"]).label.replace("_", " "),
    ]
    if g["countdown"] > 0:
        soon = " (soon)" if g["countdown"] <= URGENT_COUNTDOWN else ""
        parts.append(f"deteriorates in {_steps(g['countdown'])}{soon}")
    return parts


def _ed_patient_line(slot: int, row: np.ndarray, can: bool) -> str:
    g = {name: int(row[i]) for i, name in enumerate(CONSULTANT_FEATURES)}
    how = "triaged" if g["triaged"] else "self-reported, untriaged"
    # ed_triage_v1 hides an untriaged patient's self-report (visible category 0).
    seen = _category_name(g["visible_category"]) if g["visible_category"] else "urgency unknown,"
    parts = _status_parts(slot, f"{seen} {how if g['visible_category'] else 'untriaged'}", g)
    parts += [name for name, col in (("medicated", "medicated"), ("needs ICU", "requires_icu"),
                                     ("specialist", "requires_specialist")) if g[col]]  # fmt: skip
    parts.append("can serve now" if can else "cannot serve now")
    return "- " + ", ".join(parts)


def ed_consultant_messages(observation: Mapping[str, np.ndarray]) -> list[Message]:
    """Messages for a ``consultant`` observation of ``ed_triage_v0`` or ``_v1``."""
    rows, ctx = ed_table(observation, CONSULTANT_FEATURES, CONSULTANT_CONTEXT)
    mask = np.asarray(observation["action_mask"])
    end = mask.shape[0] - 1
    present = _c(CONSULTANT_FEATURES, "present")
    waiting = [s for s in range(rows.shape[0]) if rows[s, present]]
    step, left = int(ctx["step"]), int(ctx["steps_remaining"])
    lines = [
        f"Step {step} of {step + left} ({left} left, {MINUTES_PER_STEP} min each). "
        f"Doctors free: {int(ctx['doctors_left'])} of {int(ctx['doctors_total'])}. "
        f"ICU beds free: {int(ctx['icu_available'])} of {int(ctx['icu_total'])}. "
        f"Untriaged: {int(ctx['untriaged'])}.",
        f"Waiting patients ({len(waiting)}):" if waiting else "Nobody is waiting.",
        *(_ed_patient_line(s, rows[s], bool(mask[s])) for s in waiting),
        "Legal answers: "
        + ", ".join(ed_consultant_answer(int(a), end) for a in np.flatnonzero(mask))
        + ".",
    ]
    return [
        {"role": "system", "content": ED_CONSULTANT_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


ED_PHARMACIST_SYSTEM = (
    "You are the emergency department pharmacist. Each answer gives ONE time-critical "
    f"drug to ONE listed patient, or says {NONE_WORD}. Give a drug only when the complaint "
    "clearly calls for it (adrenaline for anaphylaxis, salbutamol_nebuliser for asthma, "
    "aspirin for cardiac chest pain, naloxone for opioid overdose, iv_antibiotics for "
    "sepsis, glucose for a low sugar, ...), patients who will deteriorate soonest first; "
    "never a drug the patient is allergic to or already had. An unneeded high-alert drug "
    "(adrenaline, insulin, midazolam, morphine) harms the patient.\n"
    f"Answer with exactly one line: {PATIENT_WORD} <slot>: <drug> or {NONE_WORD}."
)


def patient_answer(slot: int) -> str:
    return f"{PATIENT_WORD} {slot}"


def pharmacist_answer(slot: int, drug_index: int) -> str:
    """The whole answer for giving drug ``DRUGS[drug_index]`` to ``slot``."""
    return f"{patient_answer(slot)}: {DRUGS[drug_index].value}"


def pharmacist_pairs(observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """Legal (slot, drug) pairs of a pharmacist mask (bool, N × N_DRUGS)."""
    mask = np.asarray(observation["action_mask"])
    role = Role.PHARMACIST
    return codec.by_slot(role, mask, codec.slots_of(role, mask.shape[0])) != 0


def _pharmacist_line(slot: int, row: np.ndarray, p: Presentation | None) -> str:
    g = {name: int(row[i]) for i, name in enumerate(PHARMACIST_FEATURES)}
    text = ", ".join(_status_parts(slot, _category_name(g["category"]), g))
    if p is not None:
        text += f"\n  Complaint: {p.complaint}"
    flow = g["flowchart"]
    if flow > 0:
        text += f"\n  Flowchart: {FLOWCHARTS[flow - 1].label}"
    allergic = [d.value for d in DRUGS if g[f"allergy_{d.value}"]]
    given = [d.value for d in DRUGS if g[f"given_{d.value}"]]
    text += f"\n  Allergies: {', '.join(allergic) or 'none known'}"
    if given:
        text += f"\n  Already given: {', '.join(given)}"
    return "- " + text


def ed_pharmacist_messages(
    observation: Mapping[str, np.ndarray],
    presentations: Mapping[int, Presentation | None] | None = None,
) -> list[Message]:
    """Messages for a ``pharmacist`` observation: the patients who may get a drug now
    (complaint from ``presentations[slot]`` where given), the stock and the answer."""
    rows, ctx = ed_table(observation, PHARMACIST_FEATURES, PHARMACIST_CONTEXT)
    pairs = pharmacist_pairs(observation)
    slots = [int(s) for s in np.flatnonzero(pairs.any(axis=1))]
    presentations = presentations or {}
    step, left = int(ctx["step"]), int(ctx["steps_remaining"])
    stock = [f"{d.value} {int(ctx[f'stock_{d.value}'])}" for d in DRUGS]
    lines = [
        f"Step {step} of {step + left} ({left} left, {MINUTES_PER_STEP} min each). "
        f"Doses left to give this step: {int(ctx['dispense_left'])}.",
        "Stock: " + ", ".join(stock) + ".",
        f"Patients who can get a drug now ({len(slots)}):" if slots else "Nobody can get a drug.",
        *(_pharmacist_line(s, rows[s], presentations.get(s)) for s in slots),
        f"Answer {PATIENT_WORD} <slot>: <drug> (a drug in stock the patient has not had) "
        f"or {NONE_WORD}.",
    ]
    return [
        {"role": "system", "content": ED_PHARMACIST_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


PROMPTS: dict[str, PromptBuilder] = {
    "consultant": consultant_messages,
    "nursesim": nursesim_messages,
    "ed_nurse": ed_nurse_messages,
    "ed_consultant": ed_consultant_messages,
    "ed_pharmacist": ed_pharmacist_messages,
}
"""Role name → pure ``observation (, slot / presentations) → messages`` builder."""


def messages_for(role: str, observation: Any, *args: Any) -> list[Message]:
    try:
        builder = PROMPTS[role]
    except KeyError:
        raise ValueError(f"no prompt for role {role!r}; known: {', '.join(PROMPTS)}") from None
    return builder(observation, *args)


def transcript(messages: Sequence[Mapping[str, str]]) -> str:
    """Plain-text rendering (for logs and models without a chat template)."""
    return "\n\n".join(f"{m['role'].upper()}:\n{m['content']}" for m in messages)


__all__ = [
    "CONSULTANT_SYSTEM",
    "ED_CONSULTANT_SYSTEM",
    "ED_PHARMACIST_SYSTEM",
    "END_WORD",
    "NONE_WORD",
    "PATIENT_WORD",
    "chart_presentation",
    "ed_consultant_answer",
    "ed_consultant_messages",
    "ed_nurse_messages",
    "ed_pharmacist_messages",
    "ed_table",
    "nurse_action",
    "nurse_status",
    "patient_answer",
    "pharmacist_answer",
    "pharmacist_pairs",
    "INTERVENTION_PREFIX",
    "PROMPTS",
    "SERVE_WORD",
    "WAIT_WORD",
    "category_answer",
    "category_line",
    "consultant_messages",
    "intervention_answer",
    "messages_for",
    "nursesim_messages",
    "queue_answer",
    "record_messages",
    "serve_answer",
    "sft_messages",
    "transcript",
]
