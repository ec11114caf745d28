"""Run by tests/test_outcomes_cbpe.py inside the NannyML virtualenv (not the project's): NannyML's CBPE
per calendar month on the given rows, printed as JSON {month: {metric: value}}.

Usage: python nannyml_cbpe.py REFERENCE.parquet ANALYSIS.parquet (y_pred holds the threshold's verdict)
Columns: timestamp, probability, y_pred (0/1), and y_true in the reference. NannyML's own calibration is
switched off (NoopCalibrator): the probabilities compared are the model's own, on both sides.
"""

import json
import sys

import nannyml as nml
import pandas as pd
from nannyml.calibration import NoopCalibrator

METRICS = ["roc_auc", "precision", "recall", "f1"]


def main() -> None:
    reference, analysis = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    estimator = nml.CBPE(
        metrics=METRICS,
        y_pred_proba="probability",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        timestamp_column_name="timestamp",
        chunk_period="M",
        calibrator=NoopCalibrator(),
    )
    estimator.fit(reference)
    frame = estimator.estimate(analysis).filter(period="analysis").to_df()
    out = {}
    for _, row in frame.iterrows():
        month = pd.Timestamp(row[("chunk", "start_date")]).strftime("%Y-%m")
        out[month] = {metric: float(row[(metric, "value")]) for metric in METRICS}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
