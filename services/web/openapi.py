"""Operations declared once: the route, the validation of its parameters and its OpenAPI entry.

A parameter's Python type (with msgspec constraints) both converts the incoming text and gives
its JSON schema; a response is a msgspec Struct whose schema msgspec generates, so the document
at /api/openapi.json cannot drift from what the handlers accept and return."""

from __future__ import annotations

import inspect
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REF = "#/components/schemas/{name}"
JSON = "application/json"


class ApiError(Exception):
    """An answer other than 200: its status and a one-line reason (the body is {"error": reason})."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}  # e.g. a 429's Retry-After


class Error(msgspec.Struct):
    error: str


@dataclass(frozen=True)
class Param:
    name: str
    type: Any  # a type msgspec converts a string to (Annotated constraints allowed)
    where: Literal["path", "query"] = "query"
    required: bool = False
    description: str = ""

    def read(self, request: Request) -> Any:
        raw = (
            request.path_params.get(self.name)
            if self.where == "path"
            else request.query_params.get(self.name)
        )
        if raw is None:
            if self.required:
                raise ApiError(422, f"{self.name}: required")
            return None
        try:
            return msgspec.convert(raw, self.type, strict=False)
        except msgspec.ValidationError as exc:
            raise ApiError(422, f"{self.name}: {exc}") from None


@dataclass(frozen=True)
class Operation:
    """One endpoint. `handler(ctx, request, **params)` returns a Struct (JSON) or a Response."""

    method: str
    path: str
    summary: str
    handler: Callable[..., Any]
    returns: Any = None  # the 200 body's type (None: the handler returns its own Response)
    params: Sequence[Param] = ()
    body: Any = None  # a JSON request body's type
    control: bool = False  # needs the token (and passes CSRF / read-only checks)
    media: str = JSON
    tags: tuple[str, ...] = ()
    errors: dict[int, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type=JSON)


def error_response(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    response = json_response(Error(reason), status)
    response.headers.update(headers or {})
    return response


FORMS = ("application/x-www-form-urlencoded",)
MAX_BODY = 16 * 1024  # a control's or a login's body is a few hundred bytes


async def _bounded_body(request: Request) -> bytes:
    """The body, refused (413) past MAX_BODY before it is all read: no request grows the memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"body over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body(request: Request, op: Operation) -> Any:
    """The JSON body as `op.body`; a form (a page without JavaScript) is read as the same fields."""
    try:
        raw = await _bounded_body(request)
        if request.headers.get("content-type", "").startswith(FORMS):
            fields = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), max_num_fields=20))
            return msgspec.convert(fields, op.body, strict=False)
        return msgspec.json.decode(raw or b"{}", type=op.body, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise ApiError(422, f"body: {exc}") from None


def route(op: Operation, guard: Callable[[Request, Operation], Any]) -> Route:
    """A Starlette route: `guard` (auth, CSRF, read-only) first, then the parameters, then the
    handler (in the thread pool when it is a plain function: it may block on Redis or SQL)."""

    async def endpoint(request: Request) -> Response:
        try:
            await guard(request, op)
            kwargs = {p.name: p.read(request) for p in op.params}
            if op.body is not None:
                kwargs["body"] = await _read_body(request, op)
            ctx = request.app.state.ctx
            if inspect.iscoroutinefunction(op.handler):
                result = await op.handler(ctx, request, **kwargs)
            else:
                result = await run_in_threadpool(op.handler, ctx, request, **kwargs)
        except ApiError as exc:
            return error_response(exc.status, exc.reason, exc.headers)
        return result if isinstance(result, Response) else json_response(result)

    return Route(op.path, endpoint, methods=[op.method], name=f"{op.method} {op.path}")


def _schema_of(tp: Any) -> dict[str, Any]:
    (schema,), _ = msgspec.json.schema_components([tp], ref_template=REF)
    return schema


def document(ops: Sequence[Operation], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `ops`."""
    types = [op.returns for op in ops if op.returns is not None] + [
        op.body for op in ops if op.body is not None
    ]
    _, components = msgspec.json.schema_components([*types, Error], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        responses: dict[str, Any] = {}
        if op.returns is not None:
            responses["200"] = {
                "description": "OK",
                "content": {op.media: {"schema": _schema_of(op.returns)}},
            }
        else:
            responses["200"] = {"description": "OK", "content": {op.media: {"schema": {"type": "string"}}}}
        errors = {422: "invalid parameter", **op.errors}
        if op.body is not None:
            errors[413] = "body too large"
        if op.control:
            errors |= {401: "no or wrong token", 403: "read-only, or a cross-site request"}
        for status, text in sorted(errors.items()):
            responses[str(status)] = {"description": text, "content": {JSON: {"schema": {"$ref": REF.format(name="Error")}}}}  # fmt: skip
        entry: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "tags": list(op.tags),
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.where == "path" or p.required,
                    "description": p.description,
                    "schema": _schema_of(p.type),
                }
                for p in op.params
            ],  # fmt: skip
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {JSON: {"schema": _schema_of(op.body)}}}
        if op.control:
            entry["security"] = [{"bearer": []}, {"session": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "automata_session"},
            },
        },
    }
