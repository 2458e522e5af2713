"""The operator's stacks (compose.yaml's profiles, deploy/): what they name exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.ops.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent


def test_every_metric_the_dashboard_shows_is_one_the_bot_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/imagine-bot.json").read_text())
    shown = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"imagine_[a-z_]+", target["expr"])
    }
    metrics = Metrics()
    # Histograms and labelled series appear once something is observed; their names
    # (and their _bucket/_total forms) are in the registry's descriptions.
    exported = {
        sample.name for family in metrics.registry.collect() for sample in family.samples
    } | {
        f"{family.name}{suffix}"
        for family in metrics.registry.collect()
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    assert shown, "the dashboard shows no metric"
    assert shown <= exported, shown - exported
    for panel in dashboard["panels"]:  # one place the datasource is named
        assert panel["datasource"]["uid"] == "prometheus"
    provisioned = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: prometheus" in provisioned


def test_prometheus_and_nginx_name_the_replicas_compose_runs() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    services = set(re.findall(r"^  ([a-z0-9-]+):", compose, re.MULTILINE))
    assert {
        "bot",
        "postgres",
        "replica-1",
        "replica-2",
        "nginx",
        "prometheus",
        "grafana",
    } <= services
    scraped = re.findall(r'"([a-z0-9-]+):8080"', (ROOT / "deploy/prometheus.yml").read_text())
    assert set(scraped) == {"replica-1", "replica-2", "bot"}
    balanced = re.findall(r"server ([a-z0-9-]+):8080", (ROOT / "deploy/nginx.conf").read_text())
    assert set(balanced) == {"replica-1", "replica-2"}
    for path in re.findall(r"\./(deploy/[^:]+):", compose):
        assert (ROOT / path).exists(), path
