"""An LLM as a :class:`~agents.base.Policy` (registered as ``"llm"``).

Two decision modes:

* ``score`` — the model ranks only the *legal* actions: every legal action's answer text
  (``SERVE 3``, ``WAIT``, ``CATEGORY 2``) is appended to the rendered prompt and
  the summed log-probability of its tokens is computed, for all candidates of all
  observations of a batch in one forward pass; the argmax acts. It cannot produce an
  illegal action. NurseSim adds a second pass for the intervention, conditioned on the
  chosen category line (``Recommended intervention: ...``).
* ``generate`` — the model writes an answer (greedy), :mod:`llm_policy.parsing` reads it
  and checks it against the mask; an unparsable or illegal answer is replaced by the
  named ``fallback`` policy's action and counted.

Every decision is counted (:class:`~llm_policy.parsing.FallbackCounter`):
``episode_fallbacks`` is what :func:`agents.evaluation.evaluate` writes to
``results.parquet``'s ``illegal_actions`` column. ``act_vec`` batches the envs of a
vector env / RLlib EnvRunner into one backend call (``batch_size`` prompts at a time).

Roles (:data:`ROLES`): ``consultant`` (classic queue envs), ``nursesim``
(``NurseSim-Triage-v0``) and the three roles of the multi-agent ``ed`` env
(:data:`ED_ROLES`, agent → role):

* ``ed_nurse`` (``triage_nurse``): the *patient* is chosen as the ``ed_nurse`` heuristic
  orders them, without its assessment — a re-triage or untriaged patient with the most
  urgent visible category (assigned, else self-reported, raised by a worse condition),
  then the longest wait — and the model chooses the *category* from that patient's
  charted presentation (the SFT card): ``score`` ranks ``CATEGORY 1`` … ``CATEGORY 5``.
  The nurse never ENDs while someone can be triaged (the env's ``idle_triage`` term).
* ``ed_consultant``: ``SERVE <slot>`` for each servable patient, or ``END``.
* ``ed_pharmacist``: two stages in ``score`` mode — ``PATIENT <slot>`` (patients with a
  legal drug) or ``NONE``, then the drug among that patient's legal drugs.

A decision with a single legal answer (END only) is taken without calling the model
for the ``ed`` roles (``forced`` in :meth:`LLMPolicy.stats`). The fallback of an ``ed``
role is its heuristic (``ed_nurse`` / ``ed_consultant`` / ``ed_pharmacist``) on the
same observation. In teams, :func:`ed_players` builds one policy per agent around one
shared backend; :func:`agents.roles.make_team` binds them to the env (``bind``), which
gives the nurse and pharmacist the presentations (``PolicyContext.presentation``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
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
    FallbackCounter,
    Parsed,
    TriageAnswer,
    parse_ed_nurse,
    parse_pharmacist,
    parse_queue,
    parse_serve_or_end,
    parse_triage,
)

MODES = ("score", "generate")
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


# -- the policy ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LLMConfig:
    role: str = "consultant"
    """consultant (classic queue envs), nursesim (NurseSim-Triage-v0), or an ed role:
    ed_nurse, ed_consultant, ed_pharmacist (ed_triage_v0; ED_ROLES maps agents)."""
    mode: str = "score"
    """score: rank the legal actions by log-likelihood; generate: free text, then parse."""
    backend: str = "transformers"
    """transformers, unsloth or openai (llm_policy.backends.BACKENDS)."""
    model: str | None = None
    """Model for the backend (None: SmolLM2-135M-Instruct for transformers)."""
    fallback: str | None = None
    """Policy acting on a failed answer (None: the role's default)."""
    max_new_tokens: int | None = None
    """Generation budget (None: the role's default)."""
    batch_size: int = 8
    """Observations per backend call."""
    threads: int | None = None
    """torch CPU threads for local backends (None: torch's default)."""

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown LLM role {self.role!r}; known: {', '.join(ROLES)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown LLM mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


def build_backend(config: LLMConfig) -> Any:
    from llm_policy.backends import make_backend

    options: dict[str, Any] = {}
    if config.backend == "transformers":
        options = {"model": config.model, "threads": config.threads}
    elif config.backend == "unsloth" and config.model:
        options = {"model": config.model}
    elif config.backend == "openai":  # Queue Doctor's variables, as experiments/llm_baseline
        import os

        env = {"base_url": "API_BASE_URL", "model": "MODEL_NAME", "api_key": "HF_TOKEN"}
        options = {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}
        if config.model:
            options["model"] = config.model
    return make_backend(config.backend, **options)


class SharedBackend:
    """One backend for several policies (the three roles of an ``ed`` team), built from
    ``config`` on first use, so that a team loads its model once and only if it plays."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._built: Any = None

    @property
    def built(self) -> bool:
        return self._built is not None

    def get(self) -> Any:
        if self._built is None:
            self._built = build_backend(self.config)
        return self._built

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def ed_players(
    config: LLMConfig | None = None, backend: Any = None, **options: Any
) -> dict[str, LLMPolicy]:
    """One :class:`LLMPolicy` per ``ed`` agent (``{"triage_nurse": …, "consultant": …,
    "pharmacist": …}``), all on one backend (``backend``, else a :class:`SharedBackend`
    of ``config``): ``extra={"llm": ed_players(...)}`` for
    :func:`agents.ed_evaluation.evaluate_teams` / :func:`agents.roles.make_team`."""
    base = config or LLMConfig()
    base = LLMConfig(**{**{f.name: getattr(base, f.name) for f in fields(LLMConfig)}, **options})
    shared = backend if backend is not None else SharedBackend(base)
    return {
        agent: LLMPolicy(config=base, backend=shared, role=role) for agent, role in ED_ROLES.items()
    }


class LLMPolicy(Policy):
    """``LLMPolicy(context, role="consultant", mode="score", backend="transformers",
    model=None, fallback=None, ...)``; ``backend`` may also be a built backend object."""

    name = "llm"

    def __init__(
        self,
        context: PolicyContext | None = None,
        config: LLMConfig | None = None,
        backend: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(context)
        if isinstance(backend, str):
            options["backend"], backend = backend, None
        known = {f.name for f in fields(LLMConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown LLMPolicy options {unknown}; known: {sorted(known)}")
        base = config or LLMConfig()
        self.config = cfg = LLMConfig(**{**{f: getattr(base, f) for f in known}, **options})
        cfg.validate()
        self.role = ROLES[cfg.role]
        self.fallback_name = cfg.fallback or self.role.fallback
        self.fallback_policy = make_fallback(self.fallback_name, context)
        self._backend = backend
        self.counter = FallbackCounter()
        self.forced = 0
        """Decisions with a single legal answer, taken without the model (ed roles)."""
        self.seconds = 0.0
        self.last: list[dict[str, Any]] = []
        """The last batch's decisions: answer text (generate), source, reason."""

    # -- backend ----------------------------------------------------------------------
    @property
    def backend(self) -> Any:
        """Built on first use, so registering and validating never loads a model."""
        if self._backend is None:
            self._backend = build_backend(self.config)
        if self.config.mode == "score" and not hasattr(self._backend, "score"):
            from llm_policy.backends import BackendUnavailableError

            raise BackendUnavailableError(
                f"score mode needs token log-probabilities from a local model; the "
                f"{getattr(self._backend, 'name', '?')} backend only chats: use mode='generate'"
            )
        return self._backend

    # -- Policy interface -------------------------------------------------------------
    def bind(self, context: PolicyContext) -> None:
        """Play in the env of ``context`` (called by :func:`agents.roles.make_team`): the
        ``ed`` nurse and pharmacist read presentations through it, and so does the
        fallback heuristic, rebuilt with it."""
        if context is not self.context:
            self.context = context
            self.fallback_policy = make_fallback(self.fallback_name, context)

    def reset(self, seed: int | None = None) -> None:
        self.counter.new_episode()
        self.fallback_policy.reset(seed)

    @property
    def episode_fallbacks(self) -> int:
        """Fallback decisions since the last ``reset`` (``illegal_actions`` in results)."""
        return self.counter.episode_fallbacks

    def act(self, observation: Observation) -> Action:
        return self.decide([observation])[0]

    def act_batch(self, observations: Sequence[Observation]) -> list[Action]:
        return self.decide(list(observations))

    def act_vec(self, observations: Observation) -> np.ndarray:
        n = len(next(iter(observations.values())))
        rows = [{k: v[i] for k, v in observations.items()} for i in range(n)]
        return np.asarray(self.decide(rows), dtype=np.int64)

    # -- decisions --------------------------------------------------------------------
    def view(self, observation: Observation) -> Any:
        """What the role's prompt, candidates and parser read (see :class:`RoleAdapter`)."""
        if self.role.view is None:
            return observation
        return self.role.view(observation, self.context)

    def messages(self, observation: Observation) -> list[dict[str, str]]:
        return self.role.messages(self.view(observation))

    def decide(self, observations: Sequence[Observation]) -> list[Action]:
        t0 = time.perf_counter()
        observations = list(observations)
        views = [self.view(o) for o in observations]
        out: list[Action] = [None] * len(observations)
        todo = []
        for i, v in enumerate(views):
            only = self.role.candidates(v) if self.role.skip_forced else None
            if only is not None and len(only) == 1:
                out[i] = only[0][0]
                self.forced += 1
            else:
                todo.append(i)
        self.last = []
        step = self.config.batch_size
        for lo in range(0, len(todo), step):
            idx = todo[lo : lo + step]
            if self.config.mode == "score":
                acts = self._score([views[i] for i in idx])
            else:
                acts = self._generate([views[i] for i in idx], [observations[i] for i in idx])
            for i, a in zip(idx, acts, strict=True):
                out[i] = a
        self.seconds += time.perf_counter() - t0
        return out

    def _score(self, views: Sequence[Any]) -> list[Action]:
        backend = self.backend
        rendered = [backend.render(self.role.messages(v)) for v in views]
        cands = [self.role.candidates(v) for v in views]
        scores = backend.score(
            rendered, [[t for _, t in c] for c in cands], complete=self.role.complete
        )
        best = [int(np.argmax(s)) for s in scores]
        actions = [c[b][0] for c, b in zip(cands, best, strict=True)]
        if self.role.followup is not None:
            follow = [self.role.followup(v, a) for v, a in zip(views, actions, strict=True)]
            idx = [i for i, f in enumerate(follow) if f is not None]
            if idx:
                prefixes = [rendered[i] + follow[i][0] for i in idx]
                # the follow-up answer ends the reply (NurseSim: the intervention is the SFT
                # answer's last line; ed pharmacist: the drug)
                second = backend.score(
                    prefixes, [[t for _, t in follow[i][1]] for i in idx], complete=True
                )
                for i, sc in zip(idx, second, strict=True):
                    actions[i] = follow[i][1][int(np.argmax(sc))][0]
        for a in actions:
            self.counter.record(OK)
            self.last.append({"source": "model", "reason": OK, "action": a})
        return actions

    def _generate(self, views: Sequence[Any], observations: Sequence[Observation]) -> list[Action]:
        backend = self.backend
        msgs = [self.role.messages(v) for v in views]
        budget = self.config.max_new_tokens or self.role.max_new_tokens
        if hasattr(backend, "generate_batch"):
            texts = backend.generate_batch([backend.render(m) for m in msgs], budget)
        else:  # chat-only backends (openai): one request per observation
            texts = [backend.chat(m) for m in msgs]
        actions = []
        for view, obs, text in zip(views, observations, texts, strict=True):
            parsed = self.role.parse(text, view)
            self.counter.record(parsed.reason)
            action = parsed.action if parsed.ok else self.fallback_policy.act(obs)
            source = "model" if parsed.ok else "fallback"
            self.last.append({"source": source, "reason": parsed.reason, "text": text,
                              "action": action})  # fmt: skip
            actions.append(action)
        return actions

    def stats(self) -> Mapping[str, Any]:
        d = dict(self.counter.as_dict())
        d["forced"] = self.forced
        d["seconds"] = round(self.seconds, 3)
        d["decisions_per_s"] = round(d["decisions"] / self.seconds, 3) if self.seconds else None
        return d


__all__ = [
    "ED_ROLES",
    "FALLBACKS",
    "MODES",
    "ROLES",
    "LLMConfig",
    "LLMPolicy",
    "EdView",
    "RoleAdapter",
    "SharedBackend",
    "build_backend",
    "ed_players",
    "nurse_slot",
    "presentation_from_nursesim",
    "triage_action",
]
