"""Translation of the declarations in `libs.common.events` into nats-py configurations."""

from __future__ import annotations

from nats.js import api

from libs.common.events import ConsumerSpec, Namespace, StreamSpec

_RETENTION = {
    "limits": api.RetentionPolicy.LIMITS,
    "interest": api.RetentionPolicy.INTEREST,
    "workqueue": api.RetentionPolicy.WORK_QUEUE,
}
_STORAGE = {"file": api.StorageType.FILE, "memory": api.StorageType.MEMORY}


def stream_config(spec: StreamSpec, namespace: Namespace, *, replicas: int = 1) -> api.StreamConfig:
    """The nats-py configuration of the stream `spec` declares, in `namespace`."""
    return api.StreamConfig(
        name=namespace.stream(spec.name),
        description=spec.description,
        subjects=[namespace.subject(subject) for subject in spec.subjects],
        retention=_RETENTION[spec.retention],
        storage=_STORAGE[spec.storage],
        duplicate_window=spec.duplicate_window,
        max_age=spec.max_age,
        num_replicas=replicas,
        discard=api.DiscardPolicy.OLD,
    )


def consumer_config(spec: ConsumerSpec, namespace: Namespace) -> api.ConsumerConfig:
    """The nats-py configuration of the durable pull consumer `spec` declares."""
    return api.ConsumerConfig(
        name=spec.durable,
        durable_name=spec.durable,
        description=spec.description,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        filter_subject=namespace.subject(spec.filter_subject),
        ack_wait=spec.backoff[0],
        backoff=list(spec.backoff),
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
        replay_policy=api.ReplayPolicy.INSTANT,
    )
