"""Role policies for the multi-agent ED (``envs.ed_triage_v0``) on the shared
:class:`~agents.base.Policy` interface, and teams (one policy per role, any mix).

* ``ed_nurse`` — :class:`~agents.nurse.RuleBasedNurse` (MTS discriminators + NEWS2)
  on each untriaged patient's presentation (through ``PolicyContext.presentation``;
  without it, the self-reported urgency), most urgent first (then longest wait);
  a patient whose visible condition worsened is upgraded: critical → 1, at risk →
  one level up from the assigned (or assessed) category.
* ``ed_consultant`` — deterioration-aware greedy on the *visible* category (nurse's,
  else self-report): a critical patient counts as 1, a pending countdown ≤
  :data:`DETERIORATION_HORIZON` (not medicated) one level more urgent; ties by
  longest wait, then arrival. The mask already respects doctor slots and the ICU.
* ``ed_pharmacist`` — protocol: the complaint (and flowchart, charted or inferred)
  matched against :data:`PROTOCOL` gives the drug; never one the patient is
  allergic to or already had; patients with a visible countdown first (soonest
  first), then by category and wait. No protocol match → no drug.
* ``random`` (registered in :mod:`agents.heuristics`) is the random legal policy of
  every role.

Team specs: ``"nurse=heuristic,consultant=random,pharmacist=heuristic"`` (role names
``nurse``/``triage_nurse``, ``consultant``, ``pharmacist``; ``heuristic`` = the role's
heuristic above, any registered policy name otherwise; unnamed roles default to
``heuristic``), see :func:`parse_team` and :func:`make_team`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agents.base import Observation, Policy, PolicyContext, make_policy, register
from agents.nurse import TEXT_CACHE_SIZE, RuleBasedNurse, infer_flowchart
from envs.clinical.presentation import Drug, Flowchart, Presentation
from envs.ed import codec
from envs.ed.codec import COLUMNS
from envs.ed.config import AGENTS, DRUG_INDEX, FLOWCHARTS, Role
from envs.types import Condition

DETERIORATION_HORIZON = 2
UNKNOWN_CATEGORY = 3.0
"""How the consultant ranks an untriaged patient whose urgency it cannot see (v1)."""
_CRITICAL = int(Condition.CRITICAL)  # plain int: enum class lookups are slow on hot paths
_WAIT_WEIGHT = 1_000.0


def _rows(observation: Observation, role: Role, n_slots: int) -> np.ndarray:
    return codec.split(role, observation["observation"], n_slots)[0]


# ------------------------------------------------------------------------- nurse
_N_TRIAGED, _N_ASSIGNED, _N_COND, _N_WAIT, _N_SELF = (
    COLUMNS[Role.NURSE][c]
    for c in ("triaged", "assigned_category", "condition", "wait", "self_reported_urgency")
)


def upgrade(category: int, condition: int) -> int:
    """Category after a visible change of condition (MTS: re-triage on change)."""
    if condition == Condition.CRITICAL:
        return 1
    if condition == Condition.AT_RISK:
        return max(1, category - 1)
    return category


class _ReadsCharts(Policy):
    """A role that reads the charted presentations (``PolicyContext.presentation``)
    and memoises its judgement of each presentation for the episode."""

    def __init__(self, context: PolicyContext | None = None) -> None:
        super().__init__(context)
        self._cache: dict[int, int] = {}

    def reset(self, seed: int | None = None) -> None:
        self._cache.clear()

    def presentation(self, slot: int) -> Presentation | None:
        get = self.context.presentation if self.context else None
        return get(slot) if get else None

    def judged(self, p: Presentation, judge: Callable[[Presentation], int]) -> int:
        key = id(p)
        if key not in self._cache:
            self._cache[key] = judge(p)
        return self._cache[key]


@register("ed_nurse")
class EdNurse(_ReadsCharts):
    name = "ed_nurse"

    def __init__(self, context: PolicyContext | None = None) -> None:
        super().__init__(context)
        self.nurse = RuleBasedNurse()

    def assess(self, slot: int, self_report: int) -> int:
        p = self.presentation(slot)
        return self_report if p is None else self.judged(p, self.nurse.triage)

    def act(self, observation: Observation) -> int:
        mask = observation["action_mask"]
        end = len(mask) - 1
        choice = triage_choice(observation, self.assess)
        if choice is None:
            return end
        a = codec.nurse_action(*choice)
        return a if mask[a] else end


def triage_choice(
    observation: Observation, assess: Callable[[int, int], int] | None = None
) -> tuple[int, int] | None:
    r"""The ``ed_nurse`` order: (slot, category) of the legal patient with the most urgent
    category — assigned if triaged, else ``assess(slot, self-report)`` (default: the
    self-report), :func:`upgrade`\ d for a worse condition —, then the longest wait,
    then the lowest slot; None if nobody can be triaged."""
    mask = observation["action_mask"]
    n = codec.slots_of(Role.NURSE, len(mask))
    legal = codec.by_slot(Role.NURSE, mask, n).any(axis=1)
    if not legal.any():
        return None
    rows = _rows(observation, Role.NURSE, n)
    best: tuple | None = None
    for slot in np.flatnonzero(legal):
        r = rows[slot]
        if r[_N_TRIAGED]:
            base = int(r[_N_ASSIGNED])
        elif assess is None:
            base = int(r[_N_SELF])
        else:
            base = assess(int(slot), int(r[_N_SELF]))
        cat = upgrade(base, int(r[_N_COND]))
        key = (cat, -r[_N_WAIT], slot)
        if best is None or key < best[0]:
            best = (key, int(slot), cat)
    _, slot, cat = best  # type: ignore[misc]
    return slot, cat


# -------------------------------------------------------------------- consultant
_C_CAT, _C_WAIT, _C_COND, _C_CD, _C_MED = (
    COLUMNS[Role.CONSULTANT][c]
    for c in ("visible_category", "wait", "condition", "countdown", "medicated")
)


def serve_choices(observation: Observation) -> tuple[int, np.ndarray]:
    """(END action = slot count, legal serves as bool per slot) of a consultant."""
    mask = observation["action_mask"]
    n = codec.slots_of(Role.CONSULTANT, len(mask))
    return n, mask[:n] != 0


@register("ed_consultant")
class EdConsultant(Policy):
    name = "ed_consultant"

    def act(self, observation: Observation) -> int:
        n, legal = serve_choices(observation)
        if not legal.any():
            return n
        rows = _rows(observation, Role.CONSULTANT, n)
        cat = rows[:, _C_CAT].astype(float)
        cat[cat == 0] = UNKNOWN_CATEGORY  # v1: untriaged, urgency not shown
        cat = np.where(rows[:, _C_COND] == _CRITICAL, 1.0, cat)
        cd = rows[:, _C_CD]
        soon = (cd > 0) & (cd <= DETERIORATION_HORIZON) & (rows[:, _C_MED] == 0)
        urgency = np.maximum(1.0, cat - soon) - 0.5 * soon
        key = urgency * _WAIT_WEIGHT - rows[:, _C_WAIT]
        return int(np.argmin(np.where(legal, key, np.inf)))


# -------------------------------------------------------------------- pharmacist
F = Flowchart


@dataclass(frozen=True, slots=True)
class ProtocolRule:
    drug: Drug
    pattern: str
    flowcharts: frozenset[Flowchart] = frozenset()  # empty: any flowchart


def _p(drug: Drug, pattern: str, *flowcharts: Flowchart) -> ProtocolRule:
    return ProtocolRule(drug, pattern, frozenset(flowcharts))


PROTOCOL: tuple[ProtocolRule, ...] = (
    _p(Drug.ADRENALINE, r"throat closing|noisy breathing|stridor|tongue.{0,20}swell|wheez",
       F.ALLERGY),
    _p(Drug.CHLORPHENAMINE, r"swell|swollen|hives|itchy raised|urticaria", F.ALLERGY),
    _p(Drug.MIDAZOLAM, r"not stopping|continuous seizure|still fitting|fitting for", F.FITS),
    _p(Drug.NALOXONE, r"needle|heroin|pinpoint|opioid", F.OVERDOSE_AND_POISONING),
    _p(Drug.ACETYLCYSTEINE, r"paracetamol", F.OVERDOSE_AND_POISONING),
    _p(Drug.INSULIN, r"deep and fast|sweet.smelling|ketone|meter says hi|very thirsty"),
    _p(Drug.GLUCOSE, r"(diabetic|sugars?|insulin).{0,60}(unresponsive|rous|confus|muddled|"
       r"sweaty|low|slurr|skipped)|(unresponsive|rous|confus|muddled|sweaty|slurr).{0,60}"
       r"(diabetic|sugars?|insulin)"),
    _p(Drug.TRANEXAMIC_ACID, r"spurting|pumping|soaked through|high.speed|\d+ ?mph.{0,40}"
       r"(clammy|pale)", F.WOUNDS, F.MAJOR_TRAUMA),
    _p(Drug.SALBUTAMOL_NEBULISER, r"asthma|wheez|inhaler|peak flow",
       F.ASTHMA, F.SHORTNESS_OF_BREATH),
    _p(Drug.ASPIRIN, r"crush|heav|tight|elephant|pressure|squeez", F.CHEST_PAIN),
    _p(Drug.MORPHINE, r"bone (sticking|through)|badly broken|dinner fork|shortened|turned out|"
       r"rotated|tearing|ripping|testicle pain|severe pain in the left testicle|high-riding|"
       r"boiling|scald|swollen and bent|very sore", F.LIMB_PROBLEMS, F.FALLS, F.CHEST_PAIN,
       F.TESTICULAR_PAIN, F.BURNS_AND_SCALDS),
    _p(Drug.ONDANSETRON, r"vomiting everything|being sick constantly", F.PREGNANCY),
    _p(Drug.IBUPROFEN, r"in waves|loin pain|ankle|back (went|locked)|spasm"),
    _p(Drug.PARACETAMOL, r"migraine|belly button|right.{0,12}(lower|ribs)|burnt|oil splashed"),
    _p(Drug.IV_ANTIBIOTICS, r"fever|rigors|shiver|temperature|chemo|don'?t fade|like bruises|"
       r"stiff neck|board.like|burning hot|mottled|feverish|hot and"),
)  # fmt: skip
"""First match wins. Deliberately conservative for high-alert drugs (an unindicated
one harms the patient): the tests check the table against the generator."""

_P_TRI, _P_CAT, _P_FLOW, _P_CD, _P_WAIT = (
    COLUMNS[Role.PHARMACIST][c] for c in ("triaged", "category", "flowchart", "countdown", "wait")
)
_P_ALLERGY = COLUMNS[Role.PHARMACIST][f"allergy_{Drug.ADRENALINE.value}"]


def protocol_drug(p: Presentation) -> Drug | None:
    """The protocol drug for a presentation (None: nothing time-critical to give)."""
    text = p.complaint.lower()
    flow = p.flowchart if p.flowchart is not None else infer_flowchart(text, p.injury)
    return _protocol_match(text, flow)


@lru_cache(maxsize=TEXT_CACHE_SIZE)
def _protocol_match(text: str, flow: Flowchart) -> Drug | None:
    # Memoised like the nurse's text rules: generated complaints repeat their templates'.
    for rule, rx in _PROTOCOL_RX:
        if rule.flowcharts and flow not in rule.flowcharts:
            continue
        if rx.search(text):
            return rule.drug
    return None


_PROTOCOL_RX = tuple((r, re.compile(r.pattern)) for r in PROTOCOL)
FLOWCHART_DEFAULT: dict[Flowchart, Drug] = {
    F.ASTHMA: Drug.SALBUTAMOL_NEBULISER,
}
"""Fallback without the complaint text: only flowcharts whose drug is unambiguous."""


def _drug_index(d: Drug | None) -> int:
    return -1 if d is None else DRUG_INDEX[d]


@register("ed_pharmacist")
class EdPharmacist(_ReadsCharts):
    name = "ed_pharmacist"

    def drug_for(self, slot: int, flowchart_code: int) -> int:
        p = self.presentation(slot)
        if p is None:
            flow = FLOWCHARTS[flowchart_code - 1] if flowchart_code > 0 else None
            return _drug_index(FLOWCHART_DEFAULT.get(flow) if flow else None)
        return self.judged(p, lambda p: _drug_index(protocol_drug(p)))

    def act(self, observation: Observation) -> int:
        mask = observation["action_mask"]
        end = len(mask) - 1
        n = codec.slots_of(Role.PHARMACIST, len(mask))
        pairs = codec.by_slot(Role.PHARMACIST, mask, n) != 0
        slots = np.flatnonzero(pairs.any(axis=1))
        if not len(slots):
            return end
        rows = _rows(observation, Role.PHARMACIST, n)
        best: tuple | None = None
        for slot in slots:
            r = rows[slot]
            d = self.drug_for(int(slot), int(r[_P_FLOW]))
            if d < 0 or not pairs[slot, d] or r[_P_ALLERGY + d]:
                continue
            cd = r[_P_CD]
            key = (0 if cd > 0 else 1, cd, r[_P_CAT], -r[_P_WAIT], slot)
            if best is None or key < best[0]:
                best = (key, codec.pharmacist_action(int(slot), d))
        return end if best is None else best[1]


# -------------------------------------------------------------------------- teams
ROLE_HEURISTICS: dict[Role, str] = {
    Role.NURSE: "ed_nurse",
    Role.PHARMACIST: "ed_pharmacist",
    Role.CONSULTANT: "ed_consultant",
}
HEURISTIC = "heuristic"
PLANNER = "planner"
TEAM_POLICIES: dict[str, dict[Role, str]] = {
    HEURISTIC: ROLE_HEURISTICS,
    PLANNER: {**ROLE_HEURISTICS, Role.CONSULTANT: "ed_planner"},
}
"""Team-level names → the policy each role plays (``planner``: agents.planner's
consultant with the heuristic nurse and pharmacist)."""
_ROLE_ALIASES = {"nurse": "triage_nurse", "triage": "triage_nurse"}
ORACLE_NAMES = ("oracle", "ed_oracle")
"""Names of the clairvoyant ed oracle in a team spec (a whole team only)."""


def team_spec(label: str, agents: Sequence[str] = AGENTS) -> str | None:
    """A team label (a ``--compare`` entry) as a :func:`parse_team` spec: a spec with
    ``=`` stays as it is, ``heuristic`` is the heuristic team (None), and any other bare
    name plays every role of ``agents`` (the rest play their heuristics)."""
    if "=" in label:
        return label
    if label == HEURISTIC:
        return None
    return ",".join(f"{a}={label}" for a in agents)


def parse_team(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"nurse=heuristic,consultant=random"`` → {agent: policy name} for all three
    agents (unnamed roles: ``heuristic``, resolved to the role's heuristic). A role
    named twice (``nurse=ppo,triage_nurse=random``) is an error, not "the last wins"."""
    if spec is None or spec == "":
        items: list[tuple[str, str]] = []
    elif isinstance(spec, str) and spec in TEAM_POLICIES:  # a bare team name
        items = [(agent, spec) for agent in AGENTS]
    elif isinstance(spec, str):
        items = []
        for part in spec.split(","):
            if "=" not in part:
                raise ValueError(f"team spec item {part!r} is not role=policy")
            k, v = (x.strip() for x in part.split("=", 1))
            items.append((k, v))
    else:
        items = list(dict(spec).items())
    team = dict.fromkeys(AGENTS, HEURISTIC)
    named: dict[str, str] = {}
    for k, v in items:
        agent = _ROLE_ALIASES.get(k, k)
        if agent not in team:
            raise ValueError(f"unknown role {k!r}; roles: nurse, consultant, pharmacist")
        if agent in named:
            raise ValueError(
                f"team spec {spec!r} names role {agent} twice ({named[agent]}={team[agent]}, "
                f"{k}={v}); give each role once"
            )
        named[agent] = k
        team[agent] = v
    for r in Role:
        if team[r.agent] in TEAM_POLICIES:
            team[r.agent] = TEAM_POLICIES[team[r.agent]][r]
    return team


def make_team(
    spec: str | Mapping[str, str] | None,
    context: PolicyContext,
    seed: int | None = None,
    extra: Mapping[str, Mapping[str, Policy]] | None = None,
) -> dict[str, Policy]:
    """One policy per agent from a team spec (random policies seeded per role).
    ``extra[name][agent]`` supplies players that are not in the registry, e.g. the
    trained module of each role under the name ``ppo``. The ed oracle (``oracle`` or
    ``ed_oracle``) plays as a whole team: its three members share one plan
    (:class:`agents.oracle_ed.EdOracleTeam`)."""
    names = parse_team(spec)
    oracle = [a for a, n in names.items() if n in ORACLE_NAMES and not (extra and n in extra)]
    if oracle:
        if len(oracle) != len(names):
            raise ValueError(
                f"team {spec!r}: the ed oracle plays as a whole team (its members share one "
                "plan): give every role oracle, or none"
            )
        from agents.oracle_ed import EdOracleTeam

        return EdOracleTeam(context).policies()
    out = {}
    for i, (agent, name) in enumerate(names.items()):
        if extra and name in extra:
            player = extra[name][agent]
            if hasattr(player, "bind"):  # e.g. a trained module that reads hints
                player.bind(context)
            out[agent] = player
            continue
        kw = {"seed": None if seed is None else seed * 3 + i} if name == "random" else {}
        out[agent] = make_policy(name, context=context, **kw)
    return out
