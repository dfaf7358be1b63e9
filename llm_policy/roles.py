"""How each role talks to an LLM (:class:`RoleAdapter`): the prompt, the legal answers
that ``score`` mode ranks, the parser that ``generate`` mode uses, the fallback player;
:data:`ROLES` (role name → adapter) and :data:`ED_ROLES` (``ed`` agent → role). The
policy that drives them is :class:`llm_policy.policy.LLMPolicy`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import Observation, Policy, PolicyContext, make_policy
from envs.clinical.presentation import (
    AVPU,
    INTERVENTIONS,
    ArrivalMode,
    Intervention,
    Presentation,
    Sex,
)
from envs.ed.codec import pharmacist_action
from envs.ed.config import DRUGS
from llm_policy import prompts
from llm_policy.parsing import (
    OK,
    UNPARSABLE,
    Parsed,
    TriageAnswer,
    parse_ed_nurse,
    parse_pharmacist,
    parse_queue,
    parse_serve_or_end,
    parse_triage,
)

Action = Any  # int for the queue envs, int64[2] for NurseSim


# -- roles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleAdapter:
    """How one role talks to a model: prompt, legal answers, parser, fallback."""

    messages: Callable[[Any], list[dict[str, str]]]
    candidates: Callable[[Any], list[tuple[Action, str]]]
    """Legal actions with their answer texts (score mode ranks exactly these)."""
    parse: Callable[[str, Any], Parsed]
    """Answer text → :class:`Parsed` holding the final env action (mask-checked)."""
    fallback: str
    """Named fallback (a key of :data:`FALLBACKS` or a registered policy)."""
    max_new_tokens: int
    complete: bool = True
    """Score the end-of-turn token after a candidate (answers that are whole replies)."""
    followup: Callable[[Any, Action], tuple[str, list[tuple[Action, str]]] | None] | None = None
    """Optional second scoring stage: (answer text so far, appended to the prompt, and the
    candidates that continue it); None keeps the first stage's action."""
    view: Callable[[Observation, PolicyContext | None], Any] | None = None
    """Observation (+ the env's context) → what the functions above read (None: the
    observation itself). The fallback always gets the observation."""
    skip_forced: bool = False
    """Take a decision with a single legal answer without calling the model."""
    by_urgency: bool = False
    """The first stage's candidates are triage categories, most urgent first (so
    ``LLMConfig.triage_threshold`` may pick among them by :func:`quantile_index`)."""


def _mask_candidates(
    obs: Observation, answer: Callable[[int, int], str]
) -> list[tuple[Action, str]]:
    """Every legal action of a serve-or-wait/end mask with its answer text."""
    mask = np.asarray(obs["action_mask"])
    last = mask.shape[0] - 1
    return [(int(a), answer(int(a), last)) for a in np.flatnonzero(mask)]


def _queue_candidates(obs: Observation) -> list[tuple[Action, str]]:
    return _mask_candidates(obs, prompts.queue_answer)


def _queue_parse(text: str, obs: Observation) -> Parsed:
    return parse_queue(text, obs["action_mask"])


AREA_INTERVENTION = {1: Intervention.SEND_TO_RESUS, 2: Intervention.SEND_TO_MAJORS,
                     3: Intervention.SEND_TO_MAJORS, 4: Intervention.SEND_TO_MINORS,
                     5: Intervention.SEND_TO_MINORS}  # fmt: skip
"""Intervention when an answer names a category but none: the area the category routes to."""


def triage_action(category: int, intervention: Intervention | None) -> np.ndarray:
    chosen = intervention or AREA_INTERVENTION[category]
    return np.array([category - 1, chosen.action_index], dtype=np.int64)


def _nursesim_candidates(obs: Observation) -> list[tuple[Action, str]]:
    return [(c, prompts.category_answer(c)) for c in range(1, 6)]


def _nursesim_followup(obs: Observation, category: int) -> tuple[str, list[tuple[Action, str]]]:
    # The rationale the SFT answers have between the two lines is skipped.
    text = prompts.category_line(category) + "\n" + prompts.INTERVENTION_PREFIX
    return text, [(triage_action(category, i), i.value) for i in INTERVENTIONS]


def _nursesim_parse(text: str, obs: Observation) -> Parsed:
    p = parse_triage(text)
    if not p.ok:
        return p
    answer: TriageAnswer = p.action
    return Parsed(triage_action(answer.category, answer.intervention), OK)


# -- ed roles ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EdView:
    """An ``ed`` observation with what the env's context adds: the patient the nurse
    triages (None: nobody can be triaged) and the charted presentations."""

    observation: Observation
    slot: int | None = None
    presentations: Mapping[int, Presentation | None] = field(default_factory=dict)


def nurse_slot(observation: Observation) -> int | None:
    """The patient the LLM nurse triages next: the ``ed_nurse`` heuristic's order
    (:func:`agents.roles.triage_choice`) on the visible category (assigned, else
    self-reported), then the longest wait, then the slot; None if nobody is legal."""
    from agents.roles import triage_choice

    choice = triage_choice(observation)
    return None if choice is None else choice[0]


def _presentation(context: PolicyContext | None, slot: int) -> Presentation | None:
    get = context.presentation if context is not None else None
    return get(slot) if get is not None else None


def _nurse_view(obs: Observation, context: PolicyContext | None) -> EdView:
    slot = nurse_slot(obs)
    pres = {} if slot is None else {slot: _presentation(context, slot)}
    return EdView(obs, slot, pres)


def _nurse_messages(v: EdView) -> list[dict[str, str]]:
    assert v.slot is not None
    return prompts.ed_nurse_messages(v.observation, v.slot, v.presentations.get(v.slot))


def _nurse_candidates(v: EdView) -> list[tuple[Action, str]]:
    mask = np.asarray(v.observation["action_mask"])
    if v.slot is None:
        return [(mask.shape[0] - 1, prompts.END_WORD)]
    acts = [(prompts.nurse_action(v.slot, c), prompts.category_answer(c)) for c in range(1, 6)]
    return [(a, t) for a, t in acts if mask[a]]


def _nurse_parse(text: str, v: EdView) -> Parsed:
    if v.slot is None:  # not reached: a forced END never asks the model
        return Parsed(None, UNPARSABLE)
    return parse_ed_nurse(text, v.slot, v.observation["action_mask"])


def _ed_consultant_candidates(obs: Observation) -> list[tuple[Action, str]]:
    return _mask_candidates(obs, prompts.ed_consultant_answer)


def _ed_consultant_parse(text: str, obs: Observation) -> Parsed:
    return parse_serve_or_end(text, obs["action_mask"])


def _pharmacist_view(obs: Observation, context: PolicyContext | None) -> EdView:
    slots = np.flatnonzero(prompts.pharmacist_pairs(obs).any(axis=1))
    return EdView(obs, None, {int(s): _presentation(context, int(s)) for s in slots})


def _pharmacist_messages(v: EdView) -> list[dict[str, str]]:
    return prompts.ed_pharmacist_messages(v.observation, v.presentations)


@dataclass(frozen=True)
class PatientChoice:
    """The pharmacist's first scoring stage: a patient, the drug still to choose."""

    slot: int


def _pharmacist_candidates(v: EdView) -> list[tuple[Action, str]]:
    end = np.asarray(v.observation["action_mask"]).shape[0] - 1
    slots = np.flatnonzero(prompts.pharmacist_pairs(v.observation).any(axis=1))
    out: list[tuple[Action, str]] = [(PatientChoice(int(s)), prompts.patient_answer(int(s)))
                                     for s in slots]  # fmt: skip
    return [*out, (end, prompts.NONE_WORD)]


def _pharmacist_followup(v: EdView, choice: Action) -> tuple[str, list[tuple[Action, str]]] | None:
    if not isinstance(choice, PatientChoice):
        return None  # NONE: the whole answer
    pairs = prompts.pharmacist_pairs(v.observation)
    drugs = np.flatnonzero(pairs[choice.slot])
    text = prompts.patient_answer(choice.slot) + ": "
    return text, [(pharmacist_action(choice.slot, int(d)), DRUGS[int(d)].value) for d in drugs]


def _pharmacist_parse(text: str, v: EdView) -> Parsed:
    return parse_pharmacist(text, v.observation["action_mask"])


ROLES: dict[str, RoleAdapter] = {
    "consultant": RoleAdapter(
        messages=prompts.consultant_messages,
        candidates=_queue_candidates,
        parse=_queue_parse,
        fallback="severity_greedy",
        max_new_tokens=12,
    ),
    "nursesim": RoleAdapter(
        messages=prompts.nursesim_messages,
        candidates=_nursesim_candidates,
        parse=_nursesim_parse,
        fallback="rule_based_nurse",
        max_new_tokens=128,
        complete=False,  # the category line is followed by a rationale, not end of turn
        followup=_nursesim_followup,
        by_urgency=True,
    ),
    "ed_nurse": RoleAdapter(
        messages=_nurse_messages,
        candidates=_nurse_candidates,
        parse=_nurse_parse,
        fallback="ed_nurse",
        max_new_tokens=24,
        complete=False,  # the SFT answer's category line goes on: (Name - COLOUR, target)
        view=_nurse_view,
        skip_forced=True,
        by_urgency=True,
    ),
    "ed_consultant": RoleAdapter(
        messages=prompts.ed_consultant_messages,
        candidates=_ed_consultant_candidates,
        parse=_ed_consultant_parse,
        fallback="ed_consultant",
        max_new_tokens=12,
        skip_forced=True,
    ),
    "ed_pharmacist": RoleAdapter(
        messages=_pharmacist_messages,
        candidates=_pharmacist_candidates,
        parse=_pharmacist_parse,
        fallback="ed_pharmacist",
        max_new_tokens=24,
        complete=False,  # stage 1 (PATIENT n / NONE) is a prefix; the drug ends the answer
        followup=_pharmacist_followup,
        view=_pharmacist_view,
        skip_forced=True,
    ),
}
ED_ROLES: dict[str, str] = {
    "triage_nurse": "ed_nurse",
    "consultant": "ed_consultant",
    "pharmacist": "ed_pharmacist",
}
"""``ed`` agent → LLM role."""


# -- fallbacks -----------------------------------------------------------------------------
_AVPU = tuple(AVPU)
_SEX = (Sex.MALE, Sex.FEMALE)
_ARRIVAL = (ArrivalMode.WALK_IN, ArrivalMode.AMBULANCE, ArrivalMode.OTHER)
MISSING = -1.0


def presentation_from_nursesim(obs: Observation) -> Presentation:
    """The nurse-visible chart of a ``NurseSim-Triage-v0`` observation (numeric fields
    and texts), for heuristics that read a :class:`Presentation`."""
    from envs.nursesim import FLOWCHART_LIST

    v = [None if float(x) == MISSING else float(x) for x in np.asarray(obs["vitals"])]
    age, sex, arrival, injury, urgency = (int(x) for x in np.asarray(obs["demographics"]))
    fc = int(obs["flowchart"])
    return Presentation(
        presentation_id="observed", age=age, sex=_SEX[sex], arrival_mode=_ARRIVAL[arrival],
        injury=bool(injury), complaint=str(obs["complaint"]),
        flowchart=FLOWCHART_LIST[fc] if fc < len(FLOWCHART_LIST) else None,
        history=str(obs["history"]), hr=v[0], rr=v[1], sbp=v[2], dbp=v[3], spo2=v[4],
        temp=v[5], avpu=_AVPU[int(v[6] or 0)], pain=None if v[7] is None else int(v[7]),
        self_reported_urgency=urgency or None,  # 0: not charted
    )  # fmt: skip


class _RuleBasedNurse(Policy):
    """NurseSim's rule-based nurse on the numeric observation (the chart read back)."""

    name = "rule_based_nurse"

    def __init__(self, context: PolicyContext | None = None) -> None:
        from agents.nurse import RuleBasedNurse

        super().__init__(context)
        self.nurse = RuleBasedNurse()

    def act(self, observation: Observation) -> Action:
        category, intervention = self.nurse.decide(presentation_from_nursesim(observation))
        return triage_action(category, intervention)


FALLBACKS: dict[str, Callable[[PolicyContext | None], Policy]] = {
    "rule_based_nurse": _RuleBasedNurse,
}
"""Fallbacks that are not registered queue policies (any registered policy name works too)."""


def make_fallback(name: str, context: PolicyContext | None) -> Policy:
    """The fallback player (a :class:`Policy`; its ``act`` replaces a failed answer)."""
    if name in FALLBACKS:
        return FALLBACKS[name](context)
    return make_policy(name, context=context)
