"""One tool session over every ruleset: what the environment server runs per client
session when ``ed`` is enabled. ``start_task``'s ``ruleset`` picks the engine's session
(:class:`envs.classic.tool_session.ToolSession` or
:class:`envs.ed.tool_session.EdToolSession`) that the tools go to."""

from __future__ import annotations

from envs.classic.tool_session import ToolError, ToolSession
from envs.ed.tool_session import EdToolSession
from envs.ed.tool_views import ED_RULESET
from envs.rulesets import RULESETS


class MultiRulesetSession:
    """What the environment server runs per client session when ``ed`` is enabled: a
    classic :class:`ToolSession` and an :class:`EdToolSession`; ``start_task``'s
    ``ruleset`` picks which one the tools go to (classic until a task says otherwise).
    Classic tool calls behave exactly as on a bare ``ToolSession``."""

    def __init__(self) -> None:
        # One session per registered ruleset, each its registry entry's tool session.
        self.sessions: dict[str, ToolSession | EdToolSession] = {
            name: entry.load("tool_session")() for name, entry in RULESETS.items()
        }
        self.classic: ToolSession = self.sessions["classic"]  # type: ignore[assignment]
        self.ed: EdToolSession = self.sessions[ED_RULESET]  # type: ignore[assignment]
        self._active: ToolSession | EdToolSession = self.classic

    @property
    def ruleset(self) -> str | None:
        return self._active.ruleset

    @property
    def active(self) -> ToolSession | EdToolSession:
        return self._active

    def list_tasks(self) -> list[dict]:
        """Every task of both rulesets (the ed list: the fixed tasks, then the suite
        scenarios, each with its ``rulesets`` and ``versions``)."""
        return self.ed.list_tasks()

    def start_task(
        self,
        task_id: str,
        seed: int | None = None,
        ruleset: str = "classic",
        version: str | None = None,
    ) -> dict:
        entry = RULESETS.get(ruleset) if isinstance(ruleset, str) else None
        if entry is None:
            raise ToolError(
                "bad_argument",
                f"ruleset {ruleset!r}: unknown ruleset; available: {', '.join(RULESETS)}",
            )
        versioned = [n for n, r in RULESETS.items() if len(r.envs) > 1]
        if version is not None and ruleset not in versioned:
            raise ToolError(
                "bad_argument",
                f"start_task: version {version!r} applies to the {', '.join(versioned)} "
                f"ruleset only; omit it (or pass ruleset={versioned[0]!r})",
            )
        target = self.sessions[ruleset]
        options = {} if version is None else {"version": version}
        out = target.start_task(task_id, seed=seed, ruleset=ruleset, **options)
        self._active = target  # only once the task started: a refused start changes nothing
        return out

    def get_queue_state(self, role: str | None = None) -> dict:
        if self._active is self.ed:
            return self.ed.get_queue_state(role)
        if role is not None:
            raise ToolError(
                "bad_argument",
                "get_queue_state: 'role' applies to the ed ruleset only; omit it in classic "
                "(or start_task(task_id, ruleset='ed'))",
            )
        return self.classic.get_queue_state()

    def serve_patient(self, patient_id: str) -> dict:
        return self._active.serve_patient(patient_id)

    def wait(self) -> dict:
        if self._active is self.ed:
            raise ToolError(
                "wrong_ruleset",
                "wait is a classic tool; in the ed ruleset a role that queues nothing ENDs "
                "its turn: call end_step()",
            )
        return self.classic.wait()

    def triage_patient(self, patient_id: str, category: int) -> dict:
        return self.ed.triage_patient(patient_id, category)

    def dispense_drug(self, patient_id: str, drug: str) -> dict:
        return self.ed.dispense_drug(patient_id, drug)

    def end_step(self) -> dict:
        return self.ed.end_step()

    def finalize_episode(self) -> dict:
        return self._active.finalize_episode()

    def get_current_state(self) -> dict:
        return self._active.get_current_state()
