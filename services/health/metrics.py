"""The health service's Prometheus metrics, registered on the process's registry at start."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TEST_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60)


class HealthMetrics:
    """Channel status, test latency, rolling success rate, and what the service did."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.channel_status = Gauge(
            "oneapi_health_channel_status",
            "Channel status: 1 enabled, 2 manually disabled, 3 automatically disabled",
            ["channel"],
            registry=registry,
        )
        self.test_latency = Histogram(
            "oneapi_health_channel_test_seconds",
            "Duration of channel tests, by channel and result",
            ["channel", "result"],
            buckets=TEST_BUCKETS,
            registry=registry,
        )
        self.success_rate = Gauge(
            "oneapi_health_channel_success_rate",
            "Success rate over the channel's last METRIC_QUEUE_SIZE relay outcomes",
            ["channel"],
            registry=registry,
        )
        self.balance = Gauge(
            "oneapi_health_channel_balance_usd",
            "Channel balance last read from its provider, in USD",
            ["channel"],
            registry=registry,
        )
        self.transitions = Counter(
            "oneapi_health_channel_transitions_total",
            "Automatic channel status changes, by new status and cause",
            ["to", "cause"],
            registry=registry,
        )
        self.balance_refreshes = Counter(
            "oneapi_health_balance_refreshes_total",
            "Balance refreshes by result (ok, failed, unsupported)",
            ["result"],
            registry=registry,
        )
        self.notifications = Counter(
            "oneapi_health_notifications_total",
            "Notifications to root by way (email, webhook, message_pusher) and result",
            ["via", "result"],
            registry=registry,
        )
        self.rounds = Counter(
            "oneapi_health_scheduled_rounds_total",
            "Scheduled rounds this process ran, by round (test, balance)",
            ["round"],
            registry=registry,
        )
        self.leader = Gauge(
            "oneapi_health_scheduler_leader",
            "1 while this process holds the schedule lease",
            registry=registry,
        )

    def set_statuses(self, statuses: Mapping[int, int], *, complete: bool) -> None:
        """Record channel statuses; `complete`: these are all channels (drop the others)."""
        if complete:
            known = {str(channel_id) for channel_id in statuses}
            for labels in list(self._labels(self.channel_status)):
                if labels not in known:
                    self.channel_status.remove(labels)
        for channel_id, status in statuses.items():
            self.channel_status.labels(str(channel_id)).set(status)

    @staticmethod
    def _labels(gauge: Gauge) -> list[str]:
        return [sample.labels["channel"] for metric in gauge.collect() for sample in metric.samples]
