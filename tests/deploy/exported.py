"""The series the code exports, as Prometheus stores them.

Runs the real target `all` in this process (SQLite and an embedded NATS in a temporary folder),
scrapes its /metrics over HTTP, and reads the label names of families that have no sample yet
from the process's registry. Every target runs in "all", and a target registers the same
metrics whether it runs alone or beside the others (the runtime gives each process one
registry), so this is every series a split deployment exports too.
"""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi import __version__
from oneapi.targets import build_registry

# Labels Prometheus attaches to every scraped series; a metric's own label of the same name is
# stored as exported_<name>.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself for every target.
SYNTHETIC = {
    "up": TARGET_LABELS,
    "scrape_duration_seconds": TARGET_LABELS,
    "scrape_samples_scraped": TARGET_LABELS,
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}


@dataclass
class Exported:
    """Series names -> the labels a query may use on them; and the families by type."""

    series: dict[str, frozenset[str]] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)

    def add_family(self, name: str, kind: str, labels: set[str]) -> None:
        self.families[name] = kind
        stored = {f"exported_{label}" if label in TARGET_LABELS else label for label in labels}
        stored |= TARGET_LABELS
        for suffix in SUFFIXES.get(kind, ("",)):
            extra: set[str] = set()
            if suffix == "_bucket":
                extra = {"le"}
            elif suffix == "" and kind == "summary":
                extra = {"quantile"}
            self.series[name + suffix] = frozenset(stored | extra)


def _label_names(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Label names of every labelled metric, including families with no child yet (which
    /metrics shows without a sample). Reads prometheus_client's private bookkeeping: the
    public API has no way to list the label names of an empty family."""
    found: dict[str, set[str]] = {}
    collectors = list(getattr(registry, "_collector_to_names", {}))
    for collector in collectors:
        name = getattr(collector, "_name", None)
        labels = getattr(collector, "_labelnames", None)
        if isinstance(name, str) and labels is not None:
            found[name] = set(labels)
    return found


async def _scrape(data_dir: Path) -> tuple[str, dict[str, set[str]]]:
    settings = Settings(
        _env_file=None,
        port=0,
        host="127.0.0.1",
        data_dir=data_dir,
        sql_dsn="",
        log_sql_dsn="",
        nats_url="",
        nats_namespace="",
        redis_conn_string="",
        target=["all"],
    )
    runtime = Runtime(settings, build_registry(), ["all"], version=__version__)
    try:
        await runtime.start()
        url = f"http://127.0.0.1:{runtime.http.port}/metrics"
        text = await asyncio.to_thread(_get, url)
        return text, _label_names(runtime.metrics)
    finally:
        await runtime.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        body: bytes = response.read()
        return body.decode()


def exported_series(data_dir: Path) -> Exported:
    text, label_names = asyncio.run(_scrape(data_dir))
    exported = Exported()
    for name, synthetic in SYNTHETIC.items():
        exported.series[name] = frozenset(synthetic)
    for family in text_string_to_metric_families(text):
        labels = set(label_names.get(family.name, set()))
        for sample in family.samples:
            labels |= set(sample.labels) - {"le", "quantile"}
        exported.add_family(family.name, family.type, labels)
    return exported
