"""Outcomes that arrive months after the prediction: joined to the inference log, scored as realised
performance (with bootstrap intervals), beside the performance estimated without labels (CBPE).

``outcomes_file`` reads and checks the outcomes, ``join`` pairs each with the prediction it judges,
``metrics`` and ``cbpe`` score a window, ``report`` puts them together per model version and month,
``spark`` does the join on Spark for a workforce-sized log.
"""
