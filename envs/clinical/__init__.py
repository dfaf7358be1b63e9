"""The clinical layer: presentations, the library, NEWS2, the ground-truth
discriminator function and the seeded patient generator.

Sources and the discriminator table: docs/clinical.md.
"""

from envs.clinical.discriminators import (
    DISCRIMINATORS,
    FINDINGS,
    ClinicalState,
    Discriminator,
    DiscriminatorSpec,
    GroundTruth,
    fired_discriminators,
    ground_truth_category,
    recommended_intervention,
)
from envs.clinical.generator import (
    COMPLETE_CHARTING,
    DEFAULT_CATEGORY_MIX,
    REALISTIC_CHARTING,
    ChartingConfig,
    GeneratedPatient,
    PatientGenerator,
    charted_state,
)
from envs.clinical.library import FLOWCHARTS, LIBRARY, TEMPLATES, PresentationTemplate
from envs.clinical.news2 import ClinicalRisk, News2, news2, news2_of, news2_score
from envs.clinical.presentation import (
    AVPU,
    INTERVENTIONS,
    VITAL_FIELDS,
    ArrivalMode,
    Drug,
    Flowchart,
    Intervention,
    Presentation,
    Sex,
    format_observations,
    format_presentation,
)

__all__ = [
    "AVPU",
    "COMPLETE_CHARTING",
    "DEFAULT_CATEGORY_MIX",
    "DISCRIMINATORS",
    "FINDINGS",
    "FLOWCHARTS",
    "INTERVENTIONS",
    "LIBRARY",
    "REALISTIC_CHARTING",
    "TEMPLATES",
    "VITAL_FIELDS",
    "ArrivalMode",
    "ChartingConfig",
    "ClinicalRisk",
    "ClinicalState",
    "Discriminator",
    "DiscriminatorSpec",
    "Drug",
    "Flowchart",
    "GeneratedPatient",
    "GroundTruth",
    "Intervention",
    "News2",
    "PatientGenerator",
    "Presentation",
    "PresentationTemplate",
    "Sex",
    "charted_state",
    "fired_discriminators",
    "format_observations",
    "format_presentation",
    "ground_truth_category",
    "news2",
    "news2_of",
    "news2_score",
    "recommended_intervention",
]
