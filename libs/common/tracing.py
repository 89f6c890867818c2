"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for it.

    tracing = start_tracing(service_name="oneapi-relay", version=__version__)  # the runtime
    tracer = tracing.tracer          # None when tracing is off: callers skip all span work
    ...
    tracing.shutdown()               # flushes what is buffered (the runtime, at stop)

When tracing is on
    ``OTEL_SDK_DISABLED`` is not ``true``, and either ``OTEL_TRACES_EXPORTER`` names an
    exporter (``otlp``, ``console``; ``none`` turns tracing off) or an OTLP endpoint is set
    (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Unlike the
    SDK's own default (OTLP to localhost), nothing set means off: no SDK import, no exporter,
    no thread, and ``tracer`` is None. OTLP goes over HTTP/protobuf (port 4318); the gRPC
    exporter is not a dependency, so ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` is refused with a
    warning (tracing stays off). Everything else is the SDK's, read from the environment:
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TIMEOUT``, ``..._COMPRESSION``, certificates,
    ``OTEL_TRACES_SAMPLER`` (default parent-based always-on), ``OTEL_BSP_*`` (the batch
    processor), ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` (default
    ``oneapi-<targets>``).

Propagation
    W3C trace context (``traceparent``, ``tracestate``) in NATS message headers:
    `inject_headers` adds the current span's context to a publish's headers, and
    `extract_context` reads it back on the consuming side. Both work on the API package
    alone, with or without an SDK, and cost a context-variable lookup when no span is active.

Nothing here sets OpenTelemetry's process-global tracer provider or propagator: a process may
run several runtimes (tests do), each with its own provider, handed down through the runtime
`Context`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
SUPPORTED_EXPORTERS: Final = frozenset({"otlp", "console"})
SUPPORTED_PROTOCOLS: Final = frozenset({"http/protobuf"})
_PROPAGATOR: Final = TraceContextTextMapPropagator()


class TracingConfigError(ValueError):
    """The ``OTEL_*`` variables ask for something this build cannot do."""


@dataclass(frozen=True)
class Tracing:
    """The tracing of one process: its tracer, or None when tracing is off."""

    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None
    exporters: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now; True when the exporters took them in time."""
        if self.provider is None:
            return True
        return bool(self.provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Flush and stop the exporters (at process stop)."""
        if self.provider is not None:
            self.provider.shutdown()


OFF: Final = Tracing()


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "true"


def requested_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters the ``OTEL_*`` variables ask for; () means tracing is off.

    Raises `TracingConfigError` for an exporter or OTLP protocol this build does not have.
    """
    if _flag(environ, "OTEL_SDK_DISABLED"):
        return ()
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        exporters = tuple(dict.fromkeys(part.strip() for part in named.split(",") if part.strip()))
        if "none" in exporters:
            return ()
    elif environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        exporters = ("otlp",)
    else:
        return ()
    unknown = [name for name in exporters if name not in SUPPORTED_EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={named}: {', '.join(unknown)} not available "
            f"(supported: {', '.join(sorted(SUPPORTED_EXPORTERS))}, none)"
        )
    if "otlp" in exporters:
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if protocol not in SUPPORTED_PROTOCOLS:
            raise TracingConfigError(
                f"OTLP protocol {protocol} not available: this build exports OTLP over "
                "http/protobuf (port 4318); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            )
    return exporters


def default_service_name(targets: tuple[str, ...] | list[str]) -> str:
    """``oneapi`` for target all, else ``oneapi-relay``, ``oneapi-relay-billing``, ..."""
    names = [name for name in targets if name != "all"]
    return "-".join(["oneapi", *names])


def start_tracing(
    *,
    service_name: str,
    version: str,
    environ: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> Tracing:
    """Build this process's tracing from the ``OTEL_*`` variables (see the module doc).

    `exporter`, when given, is used instead of the ones the environment names and turns
    tracing on (tests pass the SDK's in-memory exporter); it goes through the same batch
    processor, sampler and resource. A configuration this build cannot honour is logged
    and leaves tracing off: observability never stops the service.
    """
    env = os.environ if environ is None else environ
    if exporter is None:
        try:
            names = requested_exporters(env)
        except TracingConfigError as exc:
            logger.warning("tracing off: %s", exc)
            return OFF
        if not names:
            return OFF
    else:
        names = ("custom",)

    # The SDK is imported only when tracing is on.
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_VERSION: version})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    exporters = [exporter] if exporter is not None else [_build_exporter(name) for name in names]
    for built in exporters:
        provider.add_span_processor(BatchSpanProcessor(built))
    shown = resource.attributes.get(SERVICE_NAME)
    logger.info("tracing on: service %s, exporting to %s", shown, ", ".join(names))
    tracer = provider.get_tracer("oneapi", version)
    return Tracing(tracer=tracer, provider=provider, exporters=names)


def _build_exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    # The exporter reads OTEL_EXPORTER_OTLP_{TRACES_,}ENDPOINT, HEADERS, TIMEOUT, ... itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


# --- propagation ---------------------------------------------------------------------------


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """Add the current span's W3C trace context to `headers`, when a span is active."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return
    headers[TRACEPARENT] = (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )
    state = span_context.trace_state.to_header()
    if state:
        headers[TRACESTATE] = state


def trace_headers() -> dict[str, str] | None:
    """The current span's trace context as message headers; None when no span is active."""
    headers: dict[str, str] = {}
    inject_headers(headers)
    return headers or None


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The remote span context carried in `headers` (``traceparent``); None when absent or
    invalid, so a consumer then starts a trace of its own."""
    if not headers or TRACEPARENT not in headers:
        return None
    extracted = _PROPAGATOR.extract(dict(headers))
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, in hex; None when no span is active."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def context_of(headers: Any) -> otel_context.Context | None:
    """`extract_context` for a header list of an ASGI scope (``[(b"name", b"value"), ...]``)."""
    for name, value in headers:
        if name == b"traceparent":
            carrier = {TRACEPARENT: value.decode("latin-1")}
            for other, state in headers:
                if other == b"tracestate":
                    carrier[TRACESTATE] = state.decode("latin-1")
            return extract_context(carrier)
    return None
