"""Refusals the admin answers in One API's envelope, `{"success": false, "message": ...}`.

One API answers a handled error with HTTP 200 and `success: false`, and front-ends rely on it;
only a missing login (401) and a rate limit (429) change the status. Every exception below is
turned into that envelope by the application's handler; anything else is a bug, logged with
its traceback and answered with a generic 500 envelope that holds no detail.

    AdminError ................. 200: a refusal the caller can act on (bad input, a rule)
     ├── NotLoggedIn ........... 401: neither a session cookie nor an access token
     ├── PermissionDenied ...... 200: role too low, or acting on an equal or higher role
     ├── NotFound .............. 200: no such row, or not the caller's
     └── RateLimited ........... 429: too many requests from this address
"""

from __future__ import annotations

from typing import ClassVar


class AdminError(Exception):
    """A refusal; `message` is shown to the user as is, so it never holds a secret."""

    status_code: ClassVar[int] = 200

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLoggedIn(AdminError):
    status_code = 401

    def __init__(self, message: str = "无权进行此操作，未登录且未提供 access token") -> None:
        super().__init__(message)


class PermissionDenied(AdminError):
    def __init__(self, message: str = "无权进行此操作，权限不足") -> None:
        super().__init__(message)


class NotFound(AdminError):
    def __init__(self, what: str = "记录") -> None:
        super().__init__(f"{what}不存在")


class RateLimited(AdminError):
    status_code = 429

    def __init__(self, message: str = "请求过于频繁，请稍后再试") -> None:
        super().__init__(message)
