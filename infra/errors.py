"""One error type for the domain, and one DRF exception handler.

Every bad input ends as the same JSON shape and a 4xx, never a 500:
    {"error": {"code": "...", "message": "...", "field": "..." | null, "details": {...}}}
"""

from __future__ import annotations

from typing import Any

from django import db
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler


class DomainError(Exception):
    """A request the domain refuses. `status` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.field = field
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field, "details": self.details}}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """Someone else changed the thing first (concurrent edit, stale lease, published release)."""

    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, db.OperationalError | db.InterfaceError):
        # The database went away under the request (a restart, pg_terminate_backend, a
        # failover): the transaction was rolled back, nothing was stored. Say so with a 503 and
        # Retry-After instead of a 500; submit is idempotent, so retrying is always safe.
        # Django drops the broken connection at the end of the request.
        err = DomainError(
            "The database connection was lost; nothing was saved. Please retry.", code="unavailable", status=503
        )
        return Response(err.as_dict(), status=503, headers={"Retry-After": "1"})
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(DomainError("; ".join(exc.messages), code="invalid", details=details).as_dict(), status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(DomainError("Request body too large.", code="too_large").as_dict(), status=413)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.APIException):
        data = response.data
        if isinstance(data, dict) and set(data) == {"detail"}:
            message, details = str(data["detail"]), {}
        else:
            message, details = "Invalid input.", data
        field = None
        if isinstance(data, dict) and data and set(data) != {"detail"}:
            # A serializer's errors: name the first field and say what is wrong with it.
            field = next(iter(data))
            first = data[field]
            text = first[0] if isinstance(first, list) and first else first
            message = f"{field}: {text}" if isinstance(text, str) else "Invalid input."
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid"
        response.data = {"error": {"code": code, "message": message, "field": field, "details": details}}
    return response
