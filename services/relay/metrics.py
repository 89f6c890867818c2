"""The relay's Prometheus metrics, registered on the process's registry when the relay starts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class RelayMetrics:
    """The relay's series, with labelled children cached: `labels()` takes a lock per call."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}
        self.requests = Counter(
            "oneapi_relay_requests_total",
            "Relay requests answered, by route, model, channel and status code",
            ["route", "model", "channel", "status"],
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "oneapi_relay_upstream_latency_seconds",
            "Time from sending an upstream request to its last byte",
            ["model", "channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_to_first_byte = Histogram(
            "oneapi_relay_upstream_ttfb_seconds",
            "Time from sending an upstream request to its response headers",
            ["model", "channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_attempts = Counter(
            "oneapi_relay_upstream_attempts_total",
            "Upstream attempts by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "oneapi_relay_tokens_total",
            "Tokens relayed, by model and kind (prompt, completion)",
            ["model", "kind"],
            registry=registry,
        )
        self.quota = Counter(
            "oneapi_relay_quota_total",
            "Quota charged by the relay, by model",
            ["model"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "oneapi_relay_in_flight_requests", "Requests being relayed now", registry=registry
        )
        self.cache_lookups = Counter(
            "oneapi_relay_cache_lookups_total",
            "Token look-ups by where they were answered (memory, shared, database)",
            ["result"],
            registry=registry,
        )
        self.rejected = Counter(
            "oneapi_relay_rejected_total",
            "Requests refused before reaching an upstream, by reason",
            ["reason"],
            registry=registry,
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(self, route: str, model: str, channel: str, status: int) -> None:
        self._child(self.requests, route, model, channel, str(status)).inc()

    def upstream_attempt(self, model: str, channel: str, success: bool, seconds: float) -> None:
        self._child(self.upstream_attempts, channel, "success" if success else "error").inc()
        self._child(self.upstream_latency, model, channel).observe(seconds)

    def first_byte(self, model: str, channel: str, seconds: float) -> None:
        self._child(self.time_to_first_byte, model, channel).observe(seconds)

    def spent(self, model: str, prompt_tokens: int, completion_tokens: int, quota: int) -> None:
        self._child(self.tokens, model, "prompt").inc(prompt_tokens)
        self._child(self.tokens, model, "completion").inc(completion_tokens)
        self._child(self.quota, model).inc(quota)

    def cache_lookup(self, where: str) -> None:
        self._child(self.cache_lookups, where).inc()
