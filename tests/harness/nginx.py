"""A local nginx in front of the split deployment, as the ingress of deploy/compose would be.

`Nginx(...)` writes a configuration into a folder of the test's own and runs nginx in the
foreground (``daemon off``) as a child process, listening on a free loopback port. Without an
nginx binary the test is skipped, unless ONEAPI_TEST_REQUIRE_SERVICES=1 (CI): then it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.harness.process import free_port, wait_until
from tests.harness.services import services_required

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    """The nginx executable; skips the test (fails under ONEAPI_TEST_REQUIRE_SERVICES=1)."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if found is None:
        message = "nginx is not installed (Debian: apt-get install -y nginx)"
        if services_required():
            pytest.fail(
                f"{message}; ONEAPI_TEST_REQUIRE_SERVICES=1 forbids skipping", pytrace=False
            )
        pytest.skip(message)
    return found


def _compiled_temp_paths(binary: str) -> list[str]:
    """The temp-path directives this build knows (one per compiled module), so that each can
    point into the test's folder rather than /var/lib/nginx."""
    built = subprocess.run(
        [binary, "-V"], capture_output=True, text=True, timeout=10, check=False
    ).stderr
    return [
        name
        for name in TEMP_PATHS
        if name == "client_body" or f"--without-http_{name}_module" not in built
    ]


def ingress_config(
    *,
    root: Path,
    port: int,
    relays: Sequence[int],
    admin: int,
    temp_paths: Sequence[str],
    fail_timeout: int = 10,
) -> str:
    """The ingress of the split deployment: `/v1` and `/dashboard` to the relays, the rest to
    the admin.

    Retries: ``proxy_next_upstream error timeout`` without ``non_idempotent``. nginx then
    passes a POST to the other relay only when it could not be sent to the first (connection
    refused or failed, connect timeout): a relay that died before reading the request costs
    the client nothing. A POST already sent is never repeated: the relay may have called the
    upstream and published its usage before dying, and a second relay would answer (and bill)
    it again, so the client gets the error (502) instead. ``max_fails=1`` takes a relay that
    failed out of rotation for `fail_timeout` seconds; then nginx tries it again.
    """
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp folders
    temps = "".join(f"    {name}_temp_path {root / name};\n" for name in temp_paths)
    servers = "".join(
        f"        server 127.0.0.1:{relay} max_fails=1 fail_timeout={fail_timeout}s;\n"
        for relay in relays
    )
    relay_location = """
            proxy_pass http://relays;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_buffering off;
            proxy_read_timeout 120s;
            add_header X-Oneapi-Upstream $upstream_addr always;
"""
    return f"""{user}worker_processes 1;
daemon off;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    log_format upstreams '$request_method $request_uri $status $upstream_addr '
                         '$upstream_status $request_time';
    access_log {root / "access.log"} upstreams;
{temps}
    upstream relays {{
{servers}        keepalive 32;
    }}
    upstream admin {{
        server 127.0.0.1:{admin};
        keepalive 8;
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 5s;
    client_max_body_size 32m;
    server {{
        listen 127.0.0.1:{port};
        location = /nginx-alive {{
            return 200 "ok\\n";
        }}
        location /v1 {{{relay_location}        }}
        location /dashboard {{{relay_location}        }}
        location / {{
            proxy_pass http://admin;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with a generated configuration; `url` is its address."""

    def __init__(
        self, root: Path, *, relays: Sequence[int], admin: int, fail_timeout: int = 10
    ) -> None:
        self.binary = nginx_binary()
        self.root = root
        self.port = free_port()
        self.relays = list(relays)
        self.admin = admin
        self.fail_timeout = fail_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        parts = []
        for name in ("nginx.out", "error.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name} ---\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def access_log(self) -> list[str]:
        path = self.root / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def start(self) -> Nginx:
        self.root.mkdir(parents=True, exist_ok=True)
        temp_paths = _compiled_temp_paths(self.binary)
        for name in temp_paths:
            (self.root / name).mkdir(exist_ok=True)
        config = self.root / "nginx.conf"
        config.write_text(
            ingress_config(
                root=self.root,
                port=self.port,
                relays=self.relays,
                admin=self.admin,
                temp_paths=temp_paths,
                fail_timeout=self.fail_timeout,
            )
        )
        check = subprocess.run(
            [self.binary, "-t", "-p", str(self.root), "-e", "stderr", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, f"nginx rejects its configuration:\n{check.stderr}"
        self._out = (self.root / "nginx.out").open("wb")
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.root), "-e", "stderr", "-c", str(config)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

        def answering() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited with {self.process.returncode}")
            try:
                return httpx.get(self.url + "/nginx-alive", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(answering, 20, f"nginx to answer on {self.url}")
        except AssertionError as exc:
            # Never a skip: nginx is installed and configured, and cannot be reached.
            self.stop()
            pytest.fail(f"{exc}\n{self.output()}", pytrace=False)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._out.close()

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
