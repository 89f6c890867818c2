"""Errors the relay answers with, in OpenAI's envelope.

    RelayError               an answer to the client: status, message, type, code
     └─ (raised anywhere in a request; `app` turns it into JSON with the request id)

Every message ends with ` (request id: ID)`, as in One API, so a user's report can be traced.
"""

from __future__ import annotations

import orjson


class RelayError(Exception):
    """An error answer: `{"error": {"message", "type", "param", "code"}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "one_api_error",
        code: str | int | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self, request_id: str) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": f"{self.message} (request id: {request_id})",
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )


def bad_request(
    message: str, *, code: str = "invalid_request", param: str | None = None
) -> RelayError:
    return RelayError(400, message, type="invalid_request_error", code=code, param=param)


def unauthorized(message: str, *, code: str = "invalid_api_key") -> RelayError:
    return RelayError(401, message, type="invalid_request_error", code=code)


def forbidden(message: str, *, code: str) -> RelayError:
    return RelayError(403, message, type="one_api_error", code=code)
