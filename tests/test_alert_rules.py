"""The alerts that ship (the PrometheusRule of every rendered overlay that deploys one), checked by
Prometheus's own promtool, offline and in seconds: the rules parse and lint clean (``promtool check
rules``); each alert fires where it must, with its labels and annotations, once its ``for:`` has
passed, and stays quiet where it must (``promtool test rules`` on tests/alerts/prometheusrule_test.yaml);
and every series and label the rules and those unit tests use is one the server exports, read from the
runtime's own metric objects (tests/exported_series.py). Each check is also shown to catch a mistake."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from prometheus_client.parser import text_string_to_metric_families
from test_exposure import KUSTOMIZE, OVERLAYS, one, render

from attrition_tools.serve import SERVED_MODEL_NAME

pytestmark = pytest.mark.deploy

INSTALL_HINT = (
    "promtool is missing: `make promtool` installs it (Debian and Ubuntu: "
    "apt-get install --no-install-recommends prometheus, which brings promtool)"
)
UNIT_TESTS = ROOT / "tests" / "alerts" / "prometheusrule_test.yaml"
#: The rules file the unit tests name (rule_files), written beside a copy of them.
RULES_FILE = "rules.yaml"
EXPORTER = ROOT / "tests" / "exported_series.py"
#: Every series of ours is named so (the exporter's output is checked for it).
PREFIX = "attrition_"
#: Labels Prometheus attaches to every series it scrapes through a ServiceMonitor (the Prometheus
#: Operator's target labels): the rules group by namespace, the unit tests' series carry pod too.
TARGET_LABELS = {"job", "instance", "namespace", "service", "endpoint", "pod", "container"}


def promtool(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Fails (never skips) without promtool: the alerts would ship unchecked."""
    path = shutil.which("promtool")
    assert path, INSTALL_HINT
    return subprocess.run([path, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def rules(rendered) -> dict[str, dict]:
    """The spec of the rendered PrometheusRule (a Prometheus rules file as it stands), by overlay that
    has one; a second one in an overlay fails here, to be given unit tests of its own."""
    found = {name: one(docs, "PrometheusRule")["spec"] for name, docs in rendered.items()
             if any(d["kind"] == "PrometheusRule" for d in docs)}  # fmt: skip
    assert "production" in found  # the overlay that takes the servicemonitor component
    return found


def write_rules(spec: dict, folder: Path) -> Path:
    """The rules file, with a copy of the unit tests beside it (promtool finds rule_files from there)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RULES_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    return Path(shutil.copy(UNIT_TESTS, folder / UNIT_TESTS.name))


def alert_rules(spec: dict) -> dict[str, dict]:
    return {r["alert"]: r for group in spec["groups"] for r in group["rules"] if "alert" in r}


def test_rules_parse_and_lint_clean(rules, tmp_path):
    for overlay, spec in rules.items():
        write_rules(spec, tmp_path / overlay)
        result = promtool("check", "rules", "--lint=all", "--lint-fatal", tmp_path / overlay / RULES_FILE)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {sum(len(g['rules']) for g in spec['groups'])} rules found" in result.stdout


def test_check_rules_rejects_a_broken_expression_and_a_duplicate(rules, tmp_path):
    spec = rules["production"]
    group = spec["groups"][0]
    broken = {"groups": [{**group, "rules": [{**group["rules"][0], "expr": "max by (namespace (x) == 1"}]}]}
    duplicate = {"groups": [{**group, "rules": group["rules"] + group["rules"][:1]}]}
    for name, bad in {"broken": broken, "duplicate": duplicate}.items():
        write_rules(bad, tmp_path / name)
        result = promtool("check", "rules", "--lint=all", "--lint-fatal", tmp_path / name / RULES_FILE)
        assert result.returncode != 0, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test(rules, rendered):
    tests = yaml.safe_load(UNIT_TESTS.read_text())
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    for spec in rules.values():
        assert firing == quiet == set(alert_rules(spec))
    # Samples as often as the ServiceMonitor scrapes (increase() and the for: clocks depend on it).
    (interval,) = {e["interval"] for e in one(rendered["production"], "ServiceMonitor")["spec"]["endpoints"]}
    assert {case["interval"] for case in tests["tests"]} == {interval} == {tests["evaluation_interval"]}


def test_alerts_fire_and_stay_quiet_as_unit_tested(rules, tmp_path):
    for overlay, spec in rules.items():
        result = promtool("test", "rules", write_rules(spec, tmp_path / overlay))
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_catch_a_changed_rule(rules, tmp_path):
    """A shorter for:, a lower row minimum and a lost label each fail the unit tests, naming the alert."""
    changes = {
        "AttritionEstimatedRocAucLow": lambda rule: {**rule, "for": "50m"},
        "AttritionOutlierRateHigh": lambda rule: {**rule, "expr": rule["expr"].replace(">= 100", ">= 50")},
        "AttritionInputDrift": lambda rule: {**rule, "expr": rule["expr"].replace("namespace, ", "")},
    }
    for alert, change in changes.items():
        spec = yaml.safe_load(yaml.safe_dump(rules["production"]))
        for group in spec["groups"]:
            group["rules"] = [change(r) if r.get("alert") == alert else r for r in group["rules"]]
        result = promtool("test", "rules", write_rules(spec, tmp_path / alert))
        assert result.returncode != 0, alert
        assert f"alertname: {alert}" in result.stderr, result.stdout + result.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> str:
    """Our part of a worker's /metrics page, from the runtime's metric objects (a process of its own)."""
    folder = tmp_path_factory.mktemp("metrics")
    (folder / "multiprocess").mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder / "multiprocess")}
    args = [sys.executable, EXPORTER, folder / "inference-log", SERVED_MODEL_NAME, "7"]
    result = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def series_labels(text: str) -> dict[str, set[str]]:
    """Label names by sample name, read by prometheus_client's own parser."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def used_in_rules(spec: dict) -> tuple[set[str], set[str]]:
    """Our series' names and the label names the rules' expressions and templates use. Read with
    regular expressions: Python has no PromQL parser worth a dependency and promtool prints no parse
    tree; the unit tests, run on exported series only, catch a name these miss."""
    names, labels = set(), set()
    for rule in alert_rules(spec).values():
        expr = rule["expr"]
        names |= set(re.findall(rf"\b{PREFIX}\w+", expr))
        for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
            labels |= {label.strip() for label in clause.split(",") if label.strip()}
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        templates = " ".join(map(str, {**rule.get("labels", {}), **rule.get("annotations", {})}.values()))
        labels |= set(re.findall(r"\$labels\.(\w+)", templates))
    return names, labels


def test_exported_series_pass_promtools_metric_lint(exported):
    exported_names = series_labels(exported)
    assert exported_names and all(name.startswith(PREFIX) for name in exported_names)
    result = promtool("check", "metrics", stdin=exported)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_only_series_and_labels_the_server_exports(rules, exported, rendered):
    # The scrape renames nothing: no relabelling, no honorLabels (series arrive as exported + targets).
    for endpoint in one(rendered["production"], "ServiceMonitor")["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}, endpoint
    exported_series = series_labels(exported)
    exported_labels = set().union(*exported_series.values())
    for spec in rules.values():
        names, labels = used_in_rules(spec)
        assert names and names <= set(exported_series), names - set(exported_series)
        assert labels <= exported_labels | TARGET_LABELS, labels - exported_labels - TARGET_LABELS


def test_unit_tests_feed_only_series_the_server_exports(exported):
    """Each input series has the name and labels of an exported one, plus scrape target labels."""
    exported_series = series_labels(exported)
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    for selector in [series["series"] for case in tests for series in case["input_series"]]:
        ((sample,),) = [family.samples for family in text_string_to_metric_families(f"{selector} 0\n")]
        assert sample.name in exported_series, selector
        assert set(sample.labels) - TARGET_LABELS == exported_series[sample.name], selector
        assert sample.labels["model_name"] == SERVED_MODEL_NAME, selector


def test_the_name_check_catches_a_misspelt_series(rules, exported):
    spec = yaml.safe_load(yaml.safe_dump(rules["production"]))
    rule = alert_rules(spec)["AttritionInputDrift"]
    rule["expr"] = rule["expr"].replace("attrition_window_is_drift", "attrition_window_drift")
    rule["annotations"]["summary"] += " {{ $labels.replica }}"
    names, labels = used_in_rules(spec)
    assert "attrition_window_drift" in names - set(series_labels(exported))
    assert "replica" in labels - TARGET_LABELS


def test_the_estimate_alert_uses_the_outcomes_reports_margin(rules):
    """One stated margin below the training CV ROC AUC: the server's estimate alert and the outcomes
    report's flag on realised months."""
    from attrition.outcomes.report import ROC_AUC_MARGIN

    for spec in rules.values():
        expr = alert_rules(spec)["AttritionEstimatedRocAucLow"]["expr"]
        (margin,) = re.findall(r"attrition_training_cv_roc_auc\)\s*-\s*([0-9.]+)", expr)
        assert float(margin) == ROC_AUC_MARGIN
