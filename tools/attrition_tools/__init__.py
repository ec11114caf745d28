"""Development tools of employee-attrition-serving (not shipped in the image): the local launcher and
test harness (:mod:`attrition_tools.serve`), the benchmark (:mod:`attrition_tools.bench`) and the soak."""
