"""The alert rules are valid, behave as their unit tests say (Debian's promtool), and use only metrics that
jifang exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from jifang.recognition.metrics import DeliveryMetrics, RecognitionMetrics
from jifang.recorder.metrics import RecorderMetrics
from jifang.retention.metrics import RetentionMetrics
from prometheus_client import CollectorRegistry

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def test_promtool_checks_and_unit_tests_pass() -> None:
    check = subprocess.run(["promtool", "check", "rules", "rules.yml"], cwd=RULES, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=RULES, capture_output=True,
                          text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    RecorderMetrics(registry)
    RetentionMetrics(registry)
    RecognitionMetrics(registry)
    DeliveryMetrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_rule_uses_exported_metrics() -> None:
    used = set(re.findall(r"\bjifang_[a-z_]+", (RULES / "rules.yml").read_text()))
    assert used, "no metric found in the rules"
    assert used <= exported_names(), used - exported_names()
