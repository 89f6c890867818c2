"""deploy/compose: Debian's docker-compose accepts it, every part is wired to the others, and the
nginx ingress routes, streams and retries as docs/deployment.md says (a real nginx in front of
three small HTTP servers on loopback)."""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from oneapi.cli import build_parser
from oneapi.targets import SERVICES
from tests.deploy.support import (
    COMPOSE_DIR,
    DEPLOY,
    NON_SETTING_VARIABLES,
    RULES,
    load_yaml,
    setting_names,
    tool,
)

COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
NGINX_CONF = COMPOSE_DIR / "nginx.conf"
ONEAPI_PORT = 3000


@cache
def compose() -> dict[str, Any]:
    """The compose file as YAML sees it (anchors and merge keys resolved, variables not)."""
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def oneapi_services() -> dict[str, list[str]]:
    """Services running the oneapi image -> the targets each runs."""
    found = {}
    for name, service in services().items():
        if "oneapi" not in str(service.get("image", "")):
            continue
        args = build_parser().parse_args(service["command"])
        assert args.command == "run", f"{name} does not run targets"
        found[name] = args.target.split(",") if args.target else ["all"]
    return found


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match, duration
    assert duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


# --- the real tool -------------------------------------------------------------------------


def docker_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("docker-compose"), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_docker_compose_config_accepts_the_file() -> None:
    result = docker_compose("config", env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "relay-2:" in result.stdout


def test_secrets_have_no_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = docker_compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "in .env" in result.stderr


# --- wiring ------------------------------------------------------------------------------------


def test_every_target_runs_and_the_relay_twice() -> None:
    targets = [target for running in oneapi_services().values() for target in running]
    assert sorted(set(targets)) == sorted(SERVICES)
    assert targets.count("relay") >= 2
    assert "all" not in targets


def test_oneapi_containers_set_only_real_settings() -> None:
    known = setting_names() | NON_SETTING_VARIABLES
    for name in oneapi_services():
        unknown = set(services()[name]["environment"]) - known
        assert unknown == set(), f"{name} sets variables oneapi does not read: {unknown}"


def test_split_mode_uses_the_external_components() -> None:
    for name in oneapi_services():
        environment = services()[name]["environment"]
        assert environment["NATS_URL"] == "nats://nats:4222"
        assert environment["SQL_DSN"].startswith("postgres://")
        assert "@postgres:5432/" in environment["SQL_DSN"]
        assert environment["REDIS_CONN_STRING"].startswith("redis://redis:6379")
    assert services()["admin"]["environment"]["NODE_TYPE"] == "master"


def test_nats_runs_jetstream_on_a_volume() -> None:
    nats = services()["nats"]
    command = nats["command"]
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    assert f"nats-data:{store}" in nats["volumes"]
    assert "nats-data" in compose()["volumes"]


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    for name, service in services().items():
        assert service.get("healthcheck"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"


def test_targets_other_than_admin_start_after_it() -> None:
    for name, targets in oneapi_services().items():
        if "admin" not in targets:
            assert "admin" in services()[name]["depends_on"], name


def test_oneapi_health_checks_ask_readyz() -> None:
    for name in oneapi_services():
        test = " ".join(services()[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{ONEAPI_PORT}/readyz" in test, name


def test_relays_keep_spilled_usage_on_their_own_volumes() -> None:
    volumes = set()
    for name, targets in oneapi_services().items():
        if "relay" in targets:
            (mount,) = services()[name]["volumes"]
            volume, _, path = mount.partition(":")
            assert path == "/data", name
            volumes.add(volume)
            # drain (SHUTDOWN_GRACE_SECONDS, 30) + the publisher's flush (10)
            assert seconds(services()[name]["stop_grace_period"]) >= 40
    assert len(volumes) == sum("relay" in t for t in oneapi_services().values())


def test_only_the_ingress_is_trusted_to_name_clients() -> None:
    ingress = services()["ingress"]["networks"]["default"]["ipv4_address"]
    for name in oneapi_services():
        assert services()[name]["environment"]["TRUSTED_PROXIES"] == f"{ingress}/32"


def test_bind_mounts_exist() -> None:
    for name, service in services().items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"


def test_env_example_names_every_variable_the_file_uses() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^[A-Z_][A-Z0-9_]*=", line)
    }
    assert used == documented


def test_prometheus_scrapes_every_oneapi_container() -> None:
    config = load_yaml(COMPOSE_DIR / "prometheus.yml")
    targets = {
        target: job["job_name"]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for name, running in oneapi_services().items():
        assert targets.get(f"{name}:{ONEAPI_PORT}") == f"oneapi-{running[0]}", name
    mounts = services()["prometheus"]["volumes"]
    rules_mount = next(m for m in mounts if "rules" in m)
    assert (COMPOSE_DIR / rules_mount.split(":")[0]).resolve() == RULES
    assert any(
        Path(rules_mount.split(":")[1]).match(pattern.rsplit("/", 1)[-1])
        for pattern in config["rule_files"]
    )


def test_grafana_is_provisioned_from_the_repository() -> None:
    mounts = dict(m.rsplit(":", 2)[:2] for m in services()["grafana"]["volumes"] if m[0] == ".")
    dashboards_dir = mounts["../grafana/dashboards"]
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/oneapi.yml")
    assert provider["providers"][0]["options"]["path"] == dashboards_dir
    home = services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / Path(home).name).is_file()
    assert home.startswith(dashboards_dir + "/")
    (source,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert source["type"] == "prometheus"


def test_promtool_accepts_the_prometheus_config_with_its_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES, rules / RULES.name)
    config = (COMPOSE_DIR / "prometheus.yml").read_text()
    config = config.replace("/etc/prometheus/rules/", f"{rules}/")
    (tmp_path / "prometheus.yml").write_text(config)
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_nginx_relay_location_streams_and_never_replays() -> None:
    conf = "\n".join(
        line for line in NGINX_CONF.read_text().splitlines() if not line.strip().startswith("#")
    )
    block = conf[conf.index("location ~ ^/(") :]
    block = block[: block.index("}")]
    assert re.search(r"proxy_buffering off;", block)
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout is not None
    assert int(timeout.group(1)) >= 600
    assert "non_idempotent" not in conf


# --- the ingress, for real -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Backend(ThreadingHTTPServer):
    """A stand-in for one oneapi container: answers with its name, records what it received;
    `reset` makes it drop each request after reading it (as a SIGKILLed relay would)."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []
        self.reset = False
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Backend
    protocol_version = "HTTP/1.1"
    STREAM_GAP: ClassVar[float] = 0.4

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(f"{self.command} {self.path}")
        if self.server.reset:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            return
        if self.path.endswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(self.STREAM_GAP)
            self.wfile.write(b"0\r\n\r\n")
            return
        reply = f"{self.server.name} {len(body)} {self.headers.get('X-Forwarded-For')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = _answer
    do_POST = _answer


@pytest.fixture
def ingress(tmp_path: Path) -> Iterator[tuple[int, dict[str, Backend]]]:
    backends = {name: Backend(name) for name in ("relay-1", "relay-2", "admin")}
    threads = [
        threading.Thread(target=b.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for b in backends.values()
    ]
    for thread in threads:
        thread.start()
    port = free_port()
    conf = NGINX_CONF.read_text()
    for name, backend in backends.items():
        conf = conf.replace(f"server {name}:3000", f"server 127.0.0.1:{backend.server_port}")
    assert "listen 80;" in conf
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = "".join(
        f"    {kind}_temp_path {tmp_path / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", "http {\n" + temp, 1)
    (tmp_path / "nginx.conf").write_text(conf)
    command = [
        tool("nginx"),
        "-p",
        str(tmp_path),
        "-c",
        str(tmp_path / "nginx.conf"),
        "-g",
        f"daemon off; pid {tmp_path / 'nginx.pid'}; user root;",
    ]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.02)
        yield port, backends
    finally:
        process.terminate()
        process.wait(timeout=10)
        for backend in backends.values():
            backend.shutdown()
            backend.server_close()


def request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body or None)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_nginx_routes_relay_paths_to_relays_and_the_rest_to_admin(
    ingress: tuple[int, dict[str, Backend]],
) -> None:
    port, _ = ingress
    relay_paths = [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1"),
        ("GET", "/dashboard/billing/subscription"),
        ("GET", "/v1/dashboard/billing/usage"),
    ]
    admin_paths = [
        ("GET", "/"),
        ("GET", "/api/status"),
        ("POST", "/api/user/login"),
        ("GET", "/dashboard"),
        ("GET", "/v1beta"),
        ("GET", "/token"),
    ]
    for method, path in relay_paths:
        status, body = request(port, method, path, b"{}" if method == "POST" else b"")
        assert status == 200
        assert body.startswith("relay-"), f"{method} {path} went to {body}"
    for method, path in admin_paths:
        status, body = request(port, method, path)
        assert (status, body.split()[0]) == (200, "admin"), f"{method} {path}"


def test_nginx_names_the_client_and_passes_bodies(ingress: tuple[int, dict[str, Backend]]) -> None:
    port, _ = ingress
    status, body = request(port, "POST", "/v1/embeddings", b"x" * 100_000)
    assert status == 200
    _, size, forwarded = body.split()
    assert (size, forwarded) == ("100000", "127.0.0.1")


def test_nginx_hands_a_refused_post_to_the_other_relay(
    ingress: tuple[int, dict[str, Backend]],
) -> None:
    port, backends = ingress
    backends["relay-1"].shutdown()
    backends["relay-1"].server_close()  # connection refused: the request never reached it
    for _ in range(4):
        status, body = request(port, "POST", "/v1/chat/completions", b"{}")
        assert (status, body.split()[0]) == (200, "relay-2")


def test_nginx_never_replays_a_post_that_reached_a_relay(
    ingress: tuple[int, dict[str, Backend]],
) -> None:
    port, backends = ingress
    for backend in (backends["relay-1"], backends["relay-2"]):
        backend.reset = True
    status, _ = request(port, "POST", "/v1/chat/completions", b"{}")
    assert status == 502
    seen = backends["relay-1"].seen + backends["relay-2"].seen
    assert seen == ["POST /v1/chat/completions"], "a sent POST was replayed"


def test_nginx_tries_an_idempotent_request_on_the_other_relay(
    ingress: tuple[int, dict[str, Backend]],
) -> None:
    port, backends = ingress
    backends["relay-1"].reset = True
    backends["relay-2"].reset = True
    status, _ = request(port, "GET", "/v1/models")
    assert status == 502
    assert backends["relay-1"].seen == backends["relay-2"].seen == ["GET /v1/models"]


def test_nginx_streams_without_buffering(ingress: tuple[int, dict[str, Backend]]) -> None:
    port, _ = ingress
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        began = time.monotonic()
        connection.request("POST", "/v1/stream", body=b"{}")
        response = connection.getresponse()
        first = response.read1(64)
        first_at = time.monotonic() - began
        rest = response.read()
    finally:
        connection.close()
    assert first.startswith(b"data: 1")
    assert first_at < _Handler.STREAM_GAP * 0.8, "the first event waited for the second"
    assert rest.endswith(b"data: 2\n\n")
