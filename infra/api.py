"""What every API endpoint shares: the JSON parser, the pagination, the id path converter and
the schema's error responses. Each one turns a kind of bad input that used to end in a 500
into a 4xx in the one JSON error shape (infra.errors), and says so in the OpenAPI schema.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser

# Deeper JSON than this is refused before anything walks it: no request of ours nests more
# than a handful of levels, and Python's json module (and every serializer after it) recurses
# once per level, so a body of 100,000 "[" used to end in a RecursionError (a 500).
MAX_JSON_DEPTH = 32
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")

# Database ids are signed 64-bit. A URL id is at most 15 digits: far beyond any row we will
# have, it always fits the column (a longer one is a 404 at URL resolution, never an
# OverflowError in the query), and the bound is exact in the schema's JSON numbers (doubles).
MAX_ID = 10**15 - 1


def id_field(**kwargs) -> serializers.IntegerField:
    """An id in a request body: bounded like the ids in URLs (a larger one matches no row)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text, without recursing (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "too_large"


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing (400, JSON error shape) bodies nested deeper than MAX_JSON_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        from django.conf import settings

        # DRF reads the request stream itself, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            raw = b""
        else:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # belt and braces: the depth check above should make this unreachable
            raise ParseError("JSON parse error - nested too deeply.")


_DIGITS = re.compile(r"[0-9]{1,19}")


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pagination that refuses what it cannot honour instead of ignoring it.

    DRF's class silently falls back to the default page for `?limit=abc` and passes an offset
    beyond 64 bits to the database (an OverflowError, a 500). Here a value that is not a
    whole number in range is a 400 naming the parameter; the schema states the ranges.
    """

    max_limit = 1000
    max_offset = 2**62

    def _bounded(self, request, name: str, *, minimum: int, maximum: int, default: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
            raise ValidationError({name: [f"Must be a whole number from {minimum} to {maximum}."]})
        return int(raw)

    def get_limit(self, request) -> int | None:
        return self._bounded(
            request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request) -> int:
        return self._bounded(request, self.offset_query_param, minimum=0, maximum=self.max_offset, default=0)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        params = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": self.max_offset},
        }
        for p in params:
            p["schema"].update(bounds.get(p["name"], {}))
        return params


# What DRF's CharField refuses on its own (NUL characters) is excluded in the schema too, so
# that a client following the schema is never refused.
_TEXT = r"^[^\u0000]*$"
_REQUIRED_TEXT = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans (DRF's CharField turns 123 into "123")
    and states its rules in the schema as a pattern. With `required_text`, blank or
    whitespace-only strings are refused too (the pattern asks for a non-space character)."""

    def __init__(
        self, *, required_text: bool = False, pattern: str | None = None, pattern_message: str | None = None, **kwargs
    ) -> None:
        from django.core.validators import RegexValidator

        if required_text:
            kwargs["allow_blank"] = False
        super().__init__(**kwargs)
        # drf-spectacular writes the first RegexValidator's pattern into the schema.
        regex = pattern or (_REQUIRED_TEXT if required_text else _TEXT)
        message = pattern_message or ("This field may not be blank." if required_text else "Invalid text.")
        self.validators.insert(0, RegexValidator(regex, message=message))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def factors_or_nothing_differs(schema: dict) -> dict:
    """Say in the schema what every answer needs: at least one factor, or `nothing_differs`
    true with no factor (the services refuse anything else)."""
    schema = dict(schema)
    schema["oneOf"] = [
        {
            "required": ["nothing_differs"],
            "properties": {"nothing_differs": {"enum": [True]}, "factors": {"maxItems": 0}},
        },
        {"required": ["factors"], "properties": {"nothing_differs": {"enum": [False]}, "factors": {"minItems": 1}}},
    ]
    return schema


def answer_schema_extension(target: str) -> type:
    """A drf-spectacular serializer extension adding factors_or_nothing_differs to `target`."""
    from drf_spectacular.extensions import OpenApiSerializerExtension

    class _Extension(OpenApiSerializerExtension):
        target_class = target

        def map_serializer(self, auto_schema, direction):
            return factors_or_nothing_differs(
                auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
            )

    _Extension.__name__ = "AnswerSchema_" + target.rsplit(".", 1)[-1]
    return _Extension


class IdConverter:
    """`<id:pk>` in URL patterns: a database id, at most 15 digits (see MAX_ID)."""

    regex = "[0-9]{1,15}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


# --- The schema's error responses -------------------------------------------------------
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "details": {},
            },
        }
    },
}
_ERRORS = {
    "400": "Bad input (the error names the field).",
    "401": "No or invalid credentials (send `Authorization: Token <key>`).",
    "403": "Signed in without the role or access to the object.",
    "404": "No such object (or not visible to you).",
    "405": "Method not allowed.",
    "409": "Conflict: someone changed it first, or its state does not allow this.",
    "413": "Request body too large.",
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: every operation documents the error statuses the
    exception handler (infra.errors) can answer, with the one JSON error shape."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            codes = ["400", "401", "403", "404", "405"]
            if method in ("post", "put", "patch", "delete"):
                codes += ["409", "413"]
            for code in codes:
                responses.setdefault(code, {"description": _ERRORS[code], "content": ref})
    return result


# --- JSON answers for /api/ where Django itself answers (URL not found, CSRF, bad request) ----
def _api_error(request, status: int, code: str, message: str):
    from django.http import JsonResponse

    return JsonResponse({"error": {"code": code, "message": message, "field": None, "details": {}}}, status=status)


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    from django.views.defaults import bad_request

    if _wants_json(request):
        return _api_error(request, 400, "bad_request", "Bad request.")
    return bad_request(request, exception)


def handler403(request, exception=None):
    from django.views.defaults import permission_denied

    if _wants_json(request):
        return _api_error(request, 403, "permission_denied", "You do not have permission to perform this action.")
    return permission_denied(request, exception)


def handler404(request, exception=None):
    from django.views.defaults import page_not_found

    if _wants_json(request):
        return _api_error(request, 404, "not_found", "Not found.")
    return page_not_found(request, exception)


def handler500(request):
    from django.views.defaults import server_error

    if _wants_json(request):
        return _api_error(request, 500, "server_error", "Server error.")
    return server_error(request)
