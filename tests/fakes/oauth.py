"""A fake OAuth 2.0 / OIDC provider for the admin's account tests: GitHub, a generic OIDC
provider, Lark, One API's WeChat login server and Cloudflare Turnstile, in one aiohttp app
running in the test's event loop.

    async with FakeOAuthProvider() as provider:
        code = provider.github_code(GitHubAccount(id=42, login="octocat", name="Octo Cat"))
        # point the admin at provider.github_token_url / provider.github_user_url, then
        # GET /api/oauth/github?code=<code>&state=<state>

Routes, each provider under its own prefix:

    POST /github/login/oauth/access_token   JSON or form {client_id, client_secret, code};
                                            200 {"error": ...} on a bad code, as GitHub does
    GET  /github/user                       Authorization: Bearer <access token>
    GET  /oidc/.well-known/openid-configuration
    POST /oidc/token                        form {grant_type, code, client_id, client_secret,
                                            redirect_uri}; 400 invalid_grant, 401 invalid_client
    GET  /oidc/userinfo                     Bearer
    POST /lark/token                        JSON, as GitHub's
    GET  /lark/userinfo                     Bearer
    GET  /wechat/api/wechat/user?code=      Authorization: <server token>; One API's
                                            {"success", "message", "data": wechat id}
    POST /turnstile/siteverify              form {secret, response, remoteip}

Codes and Turnstile tokens work once, as real ones do. `fail(prefix, status)` makes every
request under a prefix answer `status` with an HTML page; `delay` holds every answer that many
seconds. Every request is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-never-shown"
WECHAT_SERVER_TOKEN = "fake-wechat-server-token"
TURNSTILE_SECRET = "fake-turnstile-secret"
FORM = web.RequestKey("form", dict[str, str])


@dataclass(frozen=True)
class GitHubAccount:
    id: int
    login: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class OidcAccount:
    sub: str
    email: str = ""
    email_verified: bool = True
    name: str = ""
    preferred_username: str = ""


@dataclass(frozen=True)
class LarkAccount:
    open_id: str
    name: str = ""


@dataclass(frozen=True)
class Call:
    """One request the fake received; `form` holds a JSON object's or a form's fields."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeOAuthProvider:
    host: str = "127.0.0.1"
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    wechat_server_token: str = WECHAT_SERVER_TOKEN
    turnstile_secret: str = TURNSTILE_SECRET
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _codes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _access_tokens: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _wechat_codes: dict[str, str] = field(default_factory=dict)
    _turnstile_tokens: set[str] = field(default_factory=set)
    _failures: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def github_token_url(self) -> str:
        return f"{self.url}/github/login/oauth/access_token"

    @property
    def github_user_url(self) -> str:
        return f"{self.url}/github/user"

    @property
    def oidc_well_known(self) -> str:
        return f"{self.url}/oidc/.well-known/openid-configuration"

    @property
    def oidc_token_endpoint(self) -> str:
        return f"{self.url}/oidc/token"

    @property
    def oidc_userinfo_endpoint(self) -> str:
        return f"{self.url}/oidc/userinfo"

    @property
    def lark_token_url(self) -> str:
        return f"{self.url}/lark/token"

    @property
    def lark_user_url(self) -> str:
        return f"{self.url}/lark/userinfo"

    @property
    def wechat_server(self) -> str:
        return f"{self.url}/wechat"

    @property
    def turnstile_verify_url(self) -> str:
        return f"{self.url}/turnstile/siteverify"

    # --- scripting ---------------------------------------------------------------------------
    def github_code(self, account: GitHubAccount) -> str:
        return self._code("github", asdict(account))

    def oidc_code(self, account: OidcAccount) -> str:
        return self._code("oidc", asdict(account))

    def lark_code(self, account: LarkAccount) -> str:
        return self._code("lark", asdict(account))

    def wechat_code(self, wechat_id: str) -> str:
        code = secrets.token_hex(3)
        self._wechat_codes[code] = wechat_id
        return code

    def turnstile_token(self) -> str:
        token = "turnstile-" + secrets.token_urlsafe(12)
        self._turnstile_tokens.add(token)
        return token

    def fail(self, prefix: str, status: int = 502) -> None:
        """Answer every request under `/<prefix>` with `status` and an HTML page."""
        self._failures[prefix] = status

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def _code(self, provider: str, profile: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(12)
        self._codes[code] = (provider, profile)
        return code

    # --- handlers ----------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                form = {str(k): str(v) for k, v in body.items()} if isinstance(body, dict) else {}
            else:
                form = {str(k): str(v) for k, v in (await request.post()).items()}
        self.calls.append(
            Call(request.method, request.path, dict(request.query), dict(request.headers), form)
        )
        request[FORM] = form
        if self.delay:
            await asyncio.sleep(self.delay)
        prefix = request.path.strip("/").split("/", 1)[0]
        if prefix in self._failures:
            return web.Response(
                status=self._failures[prefix],
                text="<html>bad gateway</html>",
                content_type="text/html",
            )
        response: web.StreamResponse = await handler(request)
        return response

    def _take_code(self, provider: str, request: web.Request) -> dict[str, Any] | None:
        form = request[FORM]
        entry = self._codes.get(form.get("code", ""))
        if entry is None or entry[0] != provider:
            return None
        del self._codes[form["code"]]
        return entry[1]

    def _client_ok(self, request: web.Request) -> bool:
        form = request[FORM]
        return (
            form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
        )

    def _issue_token(self, provider: str, profile: dict[str, Any]) -> str:
        token = "at-" + secrets.token_urlsafe(12)
        self._access_tokens[token] = (provider, profile)
        return token

    def _bearer(self, provider: str, request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        entry = self._access_tokens.get(header.removeprefix("Bearer "))
        return entry[1] if entry is not None and entry[0] == provider else None

    async def _github_token(self, request: web.Request) -> web.Response:
        if not self._client_ok(request):
            return web.json_response({"error": "incorrect_client_credentials"})
        profile = self._take_code("github", request)
        if profile is None:
            return web.json_response({"error": "bad_verification_code"})
        token = self._issue_token("github", profile)
        return web.json_response({"access_token": token, "token_type": "bearer", "scope": ""})

    async def _github_user(self, request: web.Request) -> web.Response:
        profile = self._bearer("github", request)
        if profile is None:
            return web.json_response({"message": "Bad credentials"}, status=401)
        return web.json_response(profile)

    async def _oidc_discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": f"{self.url}/oidc",
                "authorization_endpoint": f"{self.url}/oidc/authorize",
                "token_endpoint": self.oidc_token_endpoint,
                "userinfo_endpoint": self.oidc_userinfo_endpoint,
            }
        )

    async def _oidc_token(self, request: web.Request) -> web.Response:
        if not self._client_ok(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        if request[FORM].get("grant_type") != "authorization_code":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        profile = self._take_code("oidc", request)
        if profile is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = self._issue_token("oidc", profile)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "id_token": "x"}
        )

    async def _oidc_userinfo(self, request: web.Request) -> web.Response:
        profile = self._bearer("oidc", request)
        if profile is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(profile)

    async def _lark_token(self, request: web.Request) -> web.Response:
        if not self._client_ok(request):
            return web.json_response({"error": "invalid_client"}, status=400)
        profile = self._take_code("lark", request)
        if profile is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": self._issue_token("lark", profile)})

    async def _lark_userinfo(self, request: web.Request) -> web.Response:
        profile = self._bearer("lark", request)
        if profile is None:
            return web.json_response({"code": 99991663, "msg": "invalid token"}, status=401)
        return web.json_response(profile)

    async def _wechat_user(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.wechat_server_token:
            return web.json_response({"success": False, "message": "无权进行此操作，token 无效"})
        wechat_id = self._wechat_codes.pop(request.query.get("code", ""), "")
        if not wechat_id:
            return web.json_response({"success": False, "message": "验证码错误或已过期"})
        return web.json_response({"success": True, "message": "", "data": wechat_id})

    async def _siteverify(self, request: web.Request) -> web.Response:
        form = request[FORM]
        if form.get("secret") != self.turnstile_secret:
            return web.json_response({"success": False, "error-codes": ["invalid-input-secret"]})
        token = form.get("response", "")
        if token not in self._turnstile_tokens:
            return web.json_response({"success": False, "error-codes": ["invalid-input-response"]})
        self._turnstile_tokens.discard(token)
        return web.json_response({"success": True, "error-codes": []})

    def create_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/github/login/oauth/access_token", self._github_token)
        app.router.add_get("/github/user", self._github_user)
        app.router.add_get("/oidc/.well-known/openid-configuration", self._oidc_discovery)
        app.router.add_post("/oidc/token", self._oidc_token)
        app.router.add_get("/oidc/userinfo", self._oidc_userinfo)
        app.router.add_post("/lark/token", self._lark_token)
        app.router.add_get("/lark/userinfo", self._lark_userinfo)
        app.router.add_get("/wechat/api/wechat/user", self._wechat_user)
        app.router.add_post("/turnstile/siteverify", self._siteverify)
        return app

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> FakeOAuthProvider:
        runner = web.AppRunner(self.create_app(), access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOAuthProvider:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
