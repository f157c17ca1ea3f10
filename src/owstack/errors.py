"""Typed errors, mapped through one table to an HTTP status and an OpenAI-style body.

    OwstackError                      500 api_error
     ├── InternalError                500                          (a bug: only the request id to quote)
     ├── InvalidRequest               400 invalid_request_error   (malformed JSON, schema violations: `param`)
     │    └── UnsupportedContent      400                          (content a backend cannot take)
     ├── AuthenticationFailed         401 authentication_error
     ├── PermissionDenied             403 permission_error         (layer not allowed)
     │    └── ResidencyViolation      403 code=residency_violation (no backend inside the allowed jurisdictions)
     ├── ModelNotFound                404 not_found_error          (code=model_not_found)
     ├── NotFound                     404 not_found_error          (unknown path)
     ├── MethodNotAllowed             405
     ├── RequestTimeout               408                          (the body stopped arriving)
     ├── PayloadTooLarge              413
     ├── UnsupportedMediaType         415                          (not JSON; a content coding not taken)
     ├── RateLimited                  429 rate_limit_error
     ├── UpstreamError                502 upstream_error            (upstream failed, bad response, dropped)
     ├── NoHealthyBackend             503 service_unavailable       (breakers open, health checks failing, queue full)
     ├── ServiceUnavailable           503                           (audit log not writable, not ready)
     └── UpstreamTimeout              504 timeout_error

Handlers raise these; the API edge turns them into responses. Nothing else reaches a client: any other
exception becomes a 500 `api_error` with the request id and no traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OwstackError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None
    #: another backend may succeed where this one failed (the router retries and counts a breaker failure)
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InternalError(OwstackError):
    """A bug: the client learns only the request id to quote (the log has the traceback)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error; quote request id {request_id} to the operator")


class InvalidRequest(OwstackError):
    status = 400
    type = "invalid_request_error"


class UnsupportedContent(InvalidRequest):
    default_code = "unsupported_content"


class AuthenticationFailed(OwstackError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(OwstackError):
    status = 403
    type = "permission_error"
    default_code = "permission_denied"


class ResidencyViolation(PermissionDenied):
    default_code = "residency_violation"


class ModelNotFound(OwstackError):
    status = 404
    type = "not_found_error"
    default_code = "model_not_found"


class NotFound(OwstackError):
    status = 404
    type = "not_found_error"
    default_code = "not_found"


class MethodNotAllowed(OwstackError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTimeout(OwstackError):
    status = 408
    type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLarge(OwstackError):
    status = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedMediaType(OwstackError):
    status = 415
    type = "invalid_request_error"
    default_code = "unsupported_media_type"


class RateLimited(OwstackError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(OwstackError):
    retryable = True
    status = 502
    type = "upstream_error"
    default_code = "upstream_error"


class NoHealthyBackend(OwstackError):
    retryable = True
    status = 503
    type = "service_unavailable"
    default_code = "no_healthy_backend"


class ServiceUnavailable(OwstackError):
    status = 503
    type = "service_unavailable"
    default_code = "service_unavailable"


class UpstreamTimeout(OwstackError):
    retryable = True
    status = 504
    type = "timeout_error"
    default_code = "upstream_timeout"


class ConfigError(Exception):
    """A configuration file or value that cannot be used; the message names the field."""
