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

The multi-agent ``ed`` roles (triage nurse, pharmacist, consultant over the
``envs.ed.observation`` layouts) plug in the same way: one more pure function each,
registered under ``ed_nurse`` / ``ed_pharmacist`` / ``ed_consultant``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.clinical.presentation import INTERVENTIONS, Presentation, format_presentation
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


PROMPTS: dict[str, PromptBuilder] = {
    "consultant": consultant_messages,
    "nursesim": nursesim_messages,
}
"""Role name → pure ``observation → messages`` builder."""


def messages_for(role: str, observation: Any) -> list[Message]:
    try:
        builder = PROMPTS[role]
    except KeyError:
        raise ValueError(f"no prompt for role {role!r}; known: {', '.join(PROMPTS)}") from None
    return builder(observation)


def transcript(messages: Sequence[Mapping[str, str]]) -> str:
    """Plain-text rendering (for logs and models without a chat template)."""
    return "\n\n".join(f"{m['role'].upper()}:\n{m['content']}" for m in messages)


__all__ = [
    "CONSULTANT_SYSTEM",
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
