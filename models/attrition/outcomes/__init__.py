"""Outcomes that arrive months after the prediction: joined to the inference log, scored as realised
performance (with bootstrap intervals), beside the performance estimated without labels (CBPE).

``outcomes_file`` reads and checks the outcomes, ``join`` pairs each with the prediction it judges,
``metrics`` and ``cbpe`` score a window, ``report`` puts them together per model version and month,
``spark`` does the join on Spark for a workforce-sized log.
"""

from attrition.outcomes.cbpe import estimate
from attrition.outcomes.join import Joined, join_outcomes
from attrition.outcomes.report import Settings, build_report, report_for

# ``spark`` (pyspark) and ``simulate`` (the book's traffic) are imported by name where they are needed.
__all__ = ["Joined", "Settings", "build_report", "estimate", "join_outcomes", "report_for"]
