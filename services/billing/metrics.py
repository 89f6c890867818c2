"""Billing's Prometheus metrics, registered on the process's registry when billing starts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 400, 500, 750, 1000, 2000)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class BillingMetrics:
    """Batches, money, duplicates, dead letters and the consumer's backlog."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "oneapi_billing_batch_size",
            "Usage messages per settled batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "oneapi_billing_batch_seconds",
            "Time to settle a batch: transaction(s), acknowledgements, quota.updated",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "oneapi_billing_consumer_pending",
            "Usage messages not yet delivered to billing (consumer lag)",
            registry=registry,
        )
        self.ack_pending = Gauge(
            "oneapi_billing_consumer_ack_pending",
            "Usage messages delivered to billing and not yet acknowledged",
            registry=registry,
        )
        self.events = Counter(
            "oneapi_billing_events_total",
            "Usage events charged (each request once)",
            registry=registry,
        )
        self.quota = Counter(
            "oneapi_billing_quota_charged_total",
            "Quota charged to tokens and users",
            registry=registry,
        )
        self.duplicates = Counter(
            "oneapi_billing_duplicates_skipped_total",
            "Usage messages whose request was already charged (redeliveries, re-publishes)",
            registry=registry,
        )
        self.dead_letters = Counter(
            "oneapi_billing_dead_letters_total",
            "Usage messages moved to the dead-letter stream, by reason",
            ["reason"],
            registry=registry,
        )
        self.retries = Counter(
            "oneapi_billing_batch_retries_total",
            "Batch transactions that failed and were retried",
            registry=registry,
        )
        self.log_repairs = Counter(
            "oneapi_billing_log_repairs_total",
            "Consume logs written on redelivery after a separate logs database missed them",
            registry=registry,
        )
        self.log_failures = Counter(
            "oneapi_billing_log_write_failures_total",
            "Batches whose consume logs a separate logs database refused (redelivered later)",
            registry=registry,
        )
        self.reminders = Counter(
            "oneapi_billing_quota_reminders_total",
            "Quota reminder emails, by result (sent, failed)",
            ["result"],
            registry=registry,
        )
