"""The relay's Prometheus metrics, registered on the process's registry when the relay starts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
            "Token look-ups by where they were answered (memory, database)",
            ["result"],
            registry=registry,
        )
        self.rejected = Counter(
            "oneapi_relay_rejected_total",
            "Requests refused before reaching an upstream, by reason",
            ["reason"],
            registry=registry,
        )
