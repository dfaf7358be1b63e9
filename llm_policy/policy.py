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

Roles (:data:`ROLES`): ``consultant`` (classic queue envs) and ``nursesim``
(``NurseSim-Triage-v0``). A multi-agent ``ed`` role adds a :class:`RoleAdapter` with
its prompt builder from :mod:`llm_policy.prompts`, its candidates and parser, and its
heuristic as fallback; teams then name it like any policy (``nurse=llm,...``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
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
from llm_policy import prompts
from llm_policy.parsing import OK, FallbackCounter, Parsed, TriageAnswer, parse_queue, parse_triage

MODES = ("score", "generate")
Action = Any  # int for the queue envs, int64[2] for NurseSim


# -- roles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleAdapter:
    """How one role talks to a model: prompt, legal answers, parser, fallback."""

    messages: Callable[[Observation], list[dict[str, str]]]
    candidates: Callable[[Observation], list[tuple[Action, str]]]
    """Legal actions with their answer texts (score mode ranks exactly these)."""
    parse: Callable[[str, Observation], Parsed]
    """Answer text → :class:`Parsed` holding the final env action."""
    fallback: str
    """Named fallback (a key of :data:`FALLBACKS` or a registered policy)."""
    max_new_tokens: int
    complete: bool = True
    """Score the end-of-turn token after a candidate (answers that are whole replies)."""
    followup: Callable[[Observation, Action], tuple[str, list[tuple[Action, str]]]] | None = None
    """Optional second scoring stage: (answer text so far, appended to the prompt, and the
    candidates that continue it)."""


def _queue_candidates(obs: Observation) -> list[tuple[Action, str]]:
    mask = np.asarray(obs["action_mask"])
    wait = mask.shape[0] - 1
    return [(int(a), prompts.queue_answer(int(a), wait)) for a in np.flatnonzero(mask)]


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
}


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
        self_reported_urgency=urgency,
    )  # fmt: skip


def _rule_based_nurse(context: PolicyContext | None) -> Callable[[Observation], Action]:
    from agents.nurse import RuleBasedNurse

    nurse = RuleBasedNurse()

    def act(obs: Observation) -> Action:
        category, intervention = nurse.decide(presentation_from_nursesim(obs))
        return triage_action(category, intervention)

    return act


FALLBACKS: dict[str, Callable[[PolicyContext | None], Callable[[Observation], Action]]] = {
    "rule_based_nurse": _rule_based_nurse,
}
"""Fallbacks that are not registered queue policies (any registered policy name works too)."""


def make_fallback(name: str, context: PolicyContext | None) -> Callable[[Observation], Action]:
    if name in FALLBACKS:
        return FALLBACKS[name](context)
    return make_policy(name, context=context).act


# -- the policy ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LLMConfig:
    role: str = "consultant"
    """consultant (classic queue envs) or nursesim (NurseSim-Triage-v0)."""
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
        self._fallback = make_fallback(self.fallback_name, context)
        self._backend = backend
        self.counter = FallbackCounter()
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
    def reset(self, seed: int | None = None) -> None:
        self.counter.new_episode()

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
    def messages(self, observation: Observation) -> list[dict[str, str]]:
        return self.role.messages(observation)

    def decide(self, observations: Sequence[Observation]) -> list[Action]:
        t0 = time.perf_counter()
        out: list[Action] = []
        self.last = []
        step = self.config.batch_size
        for lo in range(0, len(observations), step):
            chunk = observations[lo : lo + step]
            if self.config.mode == "score":
                out += self._score(chunk)
            else:
                out += self._generate(chunk)
        self.seconds += time.perf_counter() - t0
        return out

    def _score(self, observations: Sequence[Observation]) -> list[Action]:
        backend = self.backend
        rendered = [backend.render(self.messages(o)) for o in observations]
        cands = [self.role.candidates(o) for o in observations]
        scores = backend.score(
            rendered, [[t for _, t in c] for c in cands], complete=self.role.complete
        )
        best = [int(np.argmax(s)) for s in scores]
        actions = [c[b][0] for c, b in zip(cands, best, strict=True)]
        if self.role.followup is not None:
            follow = [self.role.followup(o, a) for o, a in zip(observations, actions, strict=True)]
            prefixes = [r + text for r, (text, _) in zip(rendered, follow, strict=True)]
            # the follow-up answer ends the reply (the intervention is the SFT answer's last line)
            second = backend.score(prefixes, [[t for _, t in f[1]] for f in follow], complete=True)
            actions = [f[1][int(np.argmax(s))][0] for f, s in zip(follow, second, strict=True)]
        for a in actions:
            self.counter.record(OK)
            self.last.append({"source": "model", "reason": OK, "action": a})
        return actions

    def _generate(self, observations: Sequence[Observation]) -> list[Action]:
        backend = self.backend
        msgs = [self.messages(o) for o in observations]
        budget = self.config.max_new_tokens or self.role.max_new_tokens
        if hasattr(backend, "generate_batch"):
            texts = backend.generate_batch([backend.render(m) for m in msgs], budget)
        else:  # chat-only backends (openai): one request per observation
            texts = [backend.chat(m) for m in msgs]
        actions = []
        for obs, text in zip(observations, texts, strict=True):
            parsed = self.role.parse(text, obs)
            self.counter.record(parsed.reason)
            action = parsed.action if parsed.ok else self._fallback(obs)
            source = "model" if parsed.ok else "fallback"
            self.last.append({"source": source, "reason": parsed.reason, "text": text,
                              "action": action})  # fmt: skip
            actions.append(action)
        return actions

    def stats(self) -> Mapping[str, Any]:
        d = dict(self.counter.as_dict())
        d["seconds"] = round(self.seconds, 3)
        d["decisions_per_s"] = round(d["decisions"] / self.seconds, 3) if self.seconds else None
        return d


__all__ = [
    "FALLBACKS",
    "MODES",
    "ROLES",
    "LLMConfig",
    "LLMPolicy",
    "RoleAdapter",
    "build_backend",
    "presentation_from_nursesim",
    "triage_action",
]
