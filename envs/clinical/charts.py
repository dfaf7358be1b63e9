"""Real ED charts as :class:`Presentation` records: the KTAS CSV format.

The format is the supporting data of Moon S-H, Shim JL, Park K-S, Park C-S. *Triage
accuracy and causes of mistriage using the Korean Triage and Acuity Scale.* PLoS ONE
14(9): e0216972, 2019 (doi:10.1371/journal.pone.0216972, CC BY 4.0): one row a visit,
the source's column names, missing values empty. The development half lives in
``../shared/data/ktas/ktas_dev.csv`` (its README: provenance and column meanings).

Only the columns a triage nurse sees (:data:`NURSE_COLUMNS`) reach the
:class:`Presentation`; the two triage labels travel beside it in :class:`Chart`
(``expert``: the panel's KTAS, the ground truth; ``nurse``: ``KTAS_RN``, the triage
nurse's at the time), never inside it. KTAS levels are read as MTS categories 1–5.

What a real chart lacks is left missing, not invented: no self-reported urgency, no
flowchart, no history, vitals left empty stay ``None``. A pain score left empty reads
as 0 when the chart says no pain (``Pain`` 0) and as not scored (``None``) otherwise.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envs.clinical.presentation import AVPU, ArrivalMode, Presentation, Sex

KTAS_PAPER = (
    "Moon S-H, Shim JL, Park K-S, Park C-S. Triage accuracy and causes of mistriage using "
    "the Korean Triage and Acuity Scale. PLoS ONE 14(9): e0216972, 2019. "
    "doi:10.1371/journal.pone.0216972"
)
"""Cite wherever results on these charts are shown."""

DEFAULT_KTAS_DEV = Path("../shared/data/ktas/ktas_dev.csv")
"""The development file, relative to the repository root (present in CI)."""

NURSE_COLUMNS = (
    "Sex", "Age", "Arrival mode", "Injury", "Chief_complain", "Mental", "Pain", "NRS_pain",
    "SBP", "DBP", "HR", "RR", "BT", "Saturation",
)  # fmt: skip
"""The columns a nurse sees at triage (the only ones a policy's input is built from).
``Patients number per hour`` is visible too but describes the department, not the patient."""
LABEL_COLUMNS = ("KTAS_expert", "KTAS_RN")
REQUIRED_COLUMNS = (*NURSE_COLUMNS, *LABEL_COLUMNS)

SEX = {1: Sex.FEMALE, 2: Sex.MALE}
# 1 walking, 3 private vehicle: self-presented; 2 public, 4 private ambulance; 5-7 other.
ARRIVAL = {1: ArrivalMode.WALK_IN, 2: ArrivalMode.AMBULANCE, 3: ArrivalMode.WALK_IN,
           4: ArrivalMode.AMBULANCE, 5: ArrivalMode.OTHER, 6: ArrivalMode.OTHER,
           7: ArrivalMode.OTHER}  # fmt: skip
MENTAL = {1: AVPU.ALERT, 2: AVPU.VOICE, 3: AVPU.PAIN, 4: AVPU.UNRESPONSIVE}
INJURY = {1: False, 2: True}
VITAL_COLUMNS = {"hr": "HR", "rr": "RR", "sbp": "SBP", "dbp": "DBP", "spo2": "Saturation",
                 "temp": "BT"}  # fmt: skip
UNREADABLE_COMPLAINT = "not legible"
"""Complaint text of a chart whose complaint was lost (e.g. ``??`` from a bad encoding)."""


class ChartFormatError(ValueError):
    """A chart file or row that cannot be read as the KTAS format."""


@dataclass(frozen=True, slots=True)
class Chart:
    """One real visit: what the nurse saw and the two triage labels (1–5)."""

    presentation: Presentation
    expert: int  # KTAS_expert: the expert panel's level, the ground truth
    nurse: int  # KTAS_RN: the triage nurse's level at the time
    row: int  # 1-based data row in the file (for error messages and reports)


def _number(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    x = float(value)
    return None if math.isnan(x) else x


def _code(row: Mapping[str, str], column: str, codes: Mapping[int, object]) -> object:
    x = _number(row[column])
    if x is None or int(x) not in codes:
        raise ChartFormatError(f"{column}={row[column]!r}: expected one of {sorted(codes)}")
    return codes[int(x)]


def _level(row: Mapping[str, str], column: str) -> int:
    return int(_code(row, column, {c: c for c in range(1, 6)}))  # type: ignore[arg-type]


def _complaint(text: str) -> str:
    text = " ".join(text.split())
    return text if any(c.isalpha() for c in text) else UNREADABLE_COMPLAINT


def presentation_from_ktas(row: Mapping[str, str], presentation_id: str = "ktas") -> Presentation:
    """The nurse-visible :class:`Presentation` of one KTAS row (strings, as from
    :class:`csv.DictReader`); reads only :data:`NURSE_COLUMNS`."""
    nrs = _number(row["NRS_pain"])
    pain_present = _code(row, "Pain", {0: False, 1: True})
    age = _number(row["Age"])
    if age is None:
        raise ChartFormatError("Age is empty")
    return Presentation(
        presentation_id=presentation_id,
        age=int(age),
        sex=_code(row, "Sex", SEX),  # type: ignore[arg-type]
        arrival_mode=_code(row, "Arrival mode", ARRIVAL),  # type: ignore[arg-type]
        injury=bool(_code(row, "Injury", INJURY)),
        complaint=_complaint(row["Chief_complain"] or ""),
        flowchart=None,
        history="",
        **{field: _number(row[col]) for field, col in VITAL_COLUMNS.items()},  # type: ignore[arg-type]
        avpu=_code(row, "Mental", MENTAL),  # type: ignore[arg-type]
        pain=nrs if nrs is not None else (None if pain_present else 0),  # type: ignore[arg-type]
    )


def load_ktas(path: str | Path = DEFAULT_KTAS_DEV) -> list[Chart]:
    """Every visit of a KTAS CSV file, in file order.

    Raises :class:`FileNotFoundError` naming where the file is expected, and
    :class:`ChartFormatError` naming the row and column of any value it cannot read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"KTAS charts not found at {path} (resolved {path.resolve()}): the development "
            f"file is ../shared/data/ktas/ktas_dev.csv from the repository root; pass "
            f"--charts PATH or run from the repository root"
        )
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ChartFormatError(f"{path}: missing column(s) {missing}; a KTAS file has "
                                   f"{list(REQUIRED_COLUMNS)} (source names)")  # fmt: skip
        charts = []
        for i, row in enumerate(reader, start=1):
            try:
                p = presentation_from_ktas(row, presentation_id=f"ktas-{i}")
                charts.append(Chart(p, _level(row, "KTAS_expert"), _level(row, "KTAS_RN"), i))
            except (ValueError, TypeError) as e:
                raise ChartFormatError(f"{path}, data row {i}: {e}") from None
    if not charts:
        raise ChartFormatError(f"{path}: no data rows")
    return charts
