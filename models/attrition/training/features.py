"""Preprocessing for the classifier, with the choices the hyperparameter search tunes."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from attrition.contract.schema import CATEGORICAL, NUMERIC

#: Right-skewed counts and amounts: a log scale makes them closer to linear in the log-odds.
SKEWED = (
    "DistanceFromHome",
    "MonthlyIncome",
    "NumCompaniesWorked",
    "TotalWorkingYears",
    "YearsAtCompany",
    "YearsInCurrentRole",
    "YearsSinceLastPromotion",
    "YearsWithCurrManager",
)
#: Small ordinal scales (levels, Likert ratings) whose effect is not linear in the level.
LEVELS = (
    "Education",
    "EnvironmentSatisfaction",
    "JobInvolvement",
    "JobLevel",
    "JobSatisfaction",
    "RelationshipSatisfaction",
    "StockOptionLevel",
    "WorkLifeBalance",
)


def preprocessor(log_skewed: bool = True, levels_as_categories: bool = True) -> ColumnTransformer:
    """One-hot categoricals (and optionally ordinal levels), standardised numerics (optionally logged)."""
    categorical = list(CATEGORICAL) + (list(LEVELS) if levels_as_categories else [])
    numeric = [c for c in NUMERIC if c not in categorical]
    logged = [c for c in numeric if log_skewed and c in SKEWED]
    linear = [c for c in numeric if c not in logged]
    steps = [("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)]
    if logged:
        steps.append(("logged", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), logged))
    steps.append(("numeric", StandardScaler(), linear))
    return ColumnTransformer(steps, verbose_feature_names_out=False)
