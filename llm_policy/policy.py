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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from agents.base import Observation, Policy, PolicyContext
from llm_policy.decision import check_threshold, quantile_index
from llm_policy.parsing import (
    OK,
    FallbackCounter,
)
from llm_policy.roles import (  # noqa: F401 (re-exported: the role adapters used to live here)
    ED_ROLES,
    FALLBACKS,
    ROLES,
    Action,
    EdView,
    RoleAdapter,
    make_fallback,
    nurse_slot,
    presentation_from_nursesim,
    triage_action,
)

MODES = ("score", "generate")


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
    triage_threshold: float | None = None
    """Score mode, triage roles (ed_nurse, nursesim; the other roles ignore it): the most
    urgent category whose cumulative probability reaches this, instead of the most likely
    one (below 0.5 leans urgent; tune it on the val split with ``llm_policy.evaluate
    --tune-threshold``)."""

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown LLM role {self.role!r}; known: {', '.join(ROLES)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown LLM mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        check_threshold(self.triage_threshold)  # the other roles ignore it (one ed team config)


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
        tau = self.config.triage_threshold
        if tau is not None and self.role.by_urgency:
            best = [quantile_index(s, tau) for s in scores]
        else:
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
