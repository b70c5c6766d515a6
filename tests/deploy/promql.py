"""What a PromQL expression reads, for the checks that rules and dashboards name only
metrics the services export (tests/deploy/test_observability.py, scripts/ops-check.py)."""

import json
import pathlib
import re

import yaml

OBSERVABILITY = pathlib.Path(__file__).resolve().parents[2] / "deploy/observability"
# Series Prometheus makes itself.
BUILT_IN = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def metric_names(expr):
    """The metric names an expression reads: identifiers outside label matchers and
    grouping clauses that are not functions, keywords or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    keywords = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
    return {
        name
        for name in re.findall(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
        if name not in keywords and name not in BUILT_IN
    }


def rule_groups():
    for name in ["alerts.yml", "slo.yml"]:
        yield from yaml.safe_load((OBSERVABILITY / name).read_text())["groups"]


def recorded():
    """The series the recording rules make."""
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def queries():
    """(where, expression) for every rule and every dashboard panel query."""
    for group in rule_groups():
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]
    for path in sorted((OBSERVABILITY / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def exported(metrics_text):
    """The sample names of a /metrics page in Prometheus's text format."""
    return {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        for line in metrics_text.splitlines()
        if line and not line.startswith("#")
    }
