"""Tracing is off unless the standard OTEL_* variables ask for it; W3C context in headers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.common import tracing
from libs.common.tracing import (
    OFF,
    TracingConfigError,
    default_service_name,
    extract_context,
    inject_headers,
    requested_exporters,
    start_tracing,
    trace_headers,
)
from tests.harness.process import ROOT

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "x"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "console"}, ()),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
        ),
    ],
)
def test_tracing_is_on_only_when_asked_for(environ: dict[str, str], expected: tuple[str]) -> None:
    assert requested_exporters(environ) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
        {"OTEL_TRACES_EXPORTER": "zipkin"},
    ],
)
def test_what_this_build_cannot_do_is_refused_and_leaves_tracing_off(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(TracingConfigError):
        requested_exporters(environ)
    assert start_tracing(service_name="oneapi", version="1", environ=environ) is OFF
    assert "tracing off" in caplog.text


def test_with_otel_unset_no_exporter_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(name: str) -> None:
        raise AssertionError(f"an exporter ({name}) was built with tracing off")

    monkeypatch.setattr(tracing, "_build_exporter", forbidden)
    result = start_tracing(service_name="oneapi-relay", version="1")
    assert result is OFF
    assert result.tracer is None
    assert result.provider is None
    assert not result.enabled
    assert result.flush()
    result.shutdown()


def test_with_otel_unset_the_tracing_sdk_is_not_even_imported() -> None:
    script = (
        "import sys\n"
        "from libs.common.runtime import Runtime\n"
        "from libs.common.settings import Settings\n"
        "from oneapi.targets import build_registry\n"
        "from libs.common.tracing import start_tracing\n"
        "assert start_tracing(service_name='oneapi', version='1').tracer is None\n"
        "import libs.common.bus, libs.common.telemetry\n"
        "import services.relay.target, services.billing.target\n"
        # (redis-py imports opentelemetry.sdk.metrics for its own metrics when installed.)
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk.trace')\n"
        "                or m.startswith('opentelemetry.exporter'))\n"
        "assert not loaded, loaded\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_an_otlp_endpoint_builds_the_http_exporter_with_the_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    built: list[object] = []
    real = tracing._build_exporter

    def recording(name: str) -> object:
        exporter = real(name)
        built.append(exporter)
        return exporter

    monkeypatch.setattr(tracing, "_build_exporter", recording)
    # Nothing listens there; no span is finished, so nothing is sent.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    result = start_tracing(service_name="oneapi-relay", version="9.9")
    try:
        assert result.enabled
        assert result.exporters == ("otlp",)
        assert len(built) == 1
        assert isinstance(built[0], OTLPSpanExporter)
        assert result.provider is not None
        attributes = result.provider.resource.attributes
        assert attributes["service.name"] == "oneapi-relay"
        assert attributes["service.version"] == "9.9"
    finally:
        result.shutdown()


def test_otel_service_name_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    result = start_tracing(
        service_name="oneapi-relay", version="1", exporter=InMemorySpanExporter()
    )
    try:
        assert result.provider is not None
        assert result.provider.resource.attributes["service.name"] == "gateway-eu"
    finally:
        result.shutdown()


def test_default_service_names() -> None:
    assert default_service_name(("all",)) == "oneapi"
    assert default_service_name(("relay",)) == "oneapi-relay"
    assert default_service_name(["relay", "billing"]) == "oneapi-relay-billing"


def test_trace_context_round_trips_through_headers() -> None:
    exporter = InMemorySpanExporter()
    result = start_tracing(service_name="t", version="1", exporter=exporter)
    assert result.tracer is not None
    try:
        assert trace_headers() is None  # no active span: nothing to carry
        with result.tracer.start_as_current_span("producer") as span:
            headers = {"Nats-Msg-Id": "r1"}
            inject_headers(headers)
        context = span.get_span_context()
        assert headers["traceparent"] == (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        )
        extracted = extract_context(headers)
        assert extracted is not None
        with result.tracer.start_as_current_span("consumer", context=extracted) as child:
            pass
        parent = getattr(child, "parent", None)  # the SDK's span (the API's type has none)
        assert parent is not None
        assert parent.span_id == context.span_id
        assert child.get_span_context().trace_id == context.trace_id
        assert extract_context(None) is None
        assert extract_context({"traceparent": "garbage"}) is None
        assert extract_context({"Nats-Msg-Id": "r1"}) is None
    finally:
        result.shutdown()
    # The process-global provider was never touched.
    assert not hasattr(trace.get_tracer_provider(), "resource")
