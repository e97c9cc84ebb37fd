"""The JSON API at /api/v1/ (django-ninja): its authentication, its errors, its OpenAPI document.

Every error is RFC 9457 problem details (application/problem+json): the handlers here cover
what the endpoints raise and what ninja raises (validation, parse errors, auth, throttling);
queues.api.middleware covers what never reaches ninja (an unknown path, a method not allowed).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from . import handovers, numbers, reroutes, rules
from .problems import CONTENT_TYPE, Problem, from_problem, problem_response
from .security import BEARER, SessionAuth, TokenAuth, TokenThrottle, unauthenticated

logger = logging.getLogger(__name__)

DESCRIPTION = """The SparkBot queue router's own API: the same moves as the dashboard, with the same
guarantees (one active reroute per source, every move in the audit log, retries) for n8n workflows
and scripts.

Authenticate with a personal API token (made on your account's “API tokens” page) as
`Authorization: Bearer <token>`; it carries exactly your permissions. Errors are RFC 9457 problem
details (`application/problem+json`)."""


class DashboardAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        return _problem_media_types(super().get_openapi_schema(**kwargs))


def _problem_media_types(schema: dict) -> dict:
    """Error answers are application/problem+json; a 202 says where the new thing is (Location)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for code, answer in operation.get("responses", {}).items():
                code, content = str(code), answer.get("content", {})
                if code.isdigit() and int(code) >= 400 and "application/json" in content:
                    content[CONTENT_TYPE] = content.pop("application/json")
                if code == "202":
                    answer["headers"] = {"Location": {"description": "Where to read what was started.",
                                                      "schema": {"type": "string"}}}
                if code == "429":
                    answer["headers"] = {"Retry-After": {"description": "Seconds to wait.",
                                                         "schema": {"type": "integer"}}}
    return schema


def _docs_access(view):
    """The OpenAPI document (and the docs page) for a signed-in browser or a token holder, by GET only;
    anonymous callers get 401."""

    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return problem_response(request, status=405, detail=f"This address does not take {request.method}; "
                                    "see the Allow header.", headers={"Allow": "GET, HEAD"})
        try:
            caller = TokenAuth()(request) or (request.user if request.user.is_authenticated else None)
        except Problem as problem:
            return from_problem(request, problem)
        if caller is None:
            return from_problem(request, unauthenticated(SIGN_IN_OR_TOKEN))
        return view(request, *args, **kwargs)

    return wrapped


SIGN_IN_OR_TOKEN = "Sign in, or send a personal API token as “Authorization: Bearer <token>”."

api = DashboardAPI(
    title="SparkBot queue router API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=[TokenAuth(), SessionAuth()],
    throttle=[TokenThrottle()],
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
    docs_decorator=_docs_access,
)
api.add_router("/numbers", numbers.router, tags=["numbers"])
api.add_router("/reroutes", reroutes.router, tags=["reroutes"])
api.add_router("", handovers.router, tags=["handovers"])
api.add_router("/rules", rules.router, tags=["rules"])


@api.exception_handler(Problem)
def _problem(request, problem: Problem):
    return from_problem(request, problem)


@api.exception_handler(ValidationError)
def _invalid(request, error: ValidationError):
    if any(item.get("type") == "missing" and tuple(item.get("loc", ())) == ("body", "body")
           for item in error.errors):
        return problem_response(request, status=400, kind="unreadable",
                                detail="The request has no body: send a JSON object.")
    errors = [{"field": _field(tuple(item.get("loc", ()))), "message": item.get("msg", "Invalid value.")}
              for item in error.errors]
    return problem_response(request, status=422, kind="invalid", detail="The request has values that are not "
                            "valid; see errors.", errors=errors)


def _field(loc: tuple) -> str:
    """("body", "body", "note") -> "note"; ("query", "status") -> "status"; ("header", "Idempotency-Key") -> itself."""
    parts = loc[1:]
    if loc[:1] == ("body",) and len(parts) > 1:
        parts = parts[1:]  # the body parameter's own name
    return ".".join(str(part) for part in parts) or (str(loc[0]) if loc else "")


@api.exception_handler(HttpError)
def _http_error(request, error: HttpError):
    if isinstance(error, Throttled):
        limit = settings.API_TOKEN_REQUESTS_PER_MINUTE
        return problem_response(request, status=429, kind="throttled", detail=(
            f"Too many calls with this token: at most {limit} a minute. Wait as long as Retry-After says."))
    if isinstance(error, AuthenticationError):
        return problem_response(request, status=401, kind="unauthenticated", detail=SIGN_IN_OR_TOKEN,
                                headers=BEARER)
    if error.status_code == 400:
        return problem_response(request, status=400, kind="unreadable", detail=f"The request body could not "
                                f"be read as JSON ({error.message}).")
    return problem_response(request, status=error.status_code, detail=error.message)


@api.exception_handler(Http404)
def _not_found(request, error):
    return problem_response(request, status=404, kind="not-found", detail="Nothing is at this address.")


@api.exception_handler(RequestDataTooBig)
def _too_large(request, error):
    return problem_response(request, status=413, kind="too-large", detail=(
        f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes the dashboard reads."))


@api.exception_handler(Exception)
def _crashed(request, error: Exception):
    logger.exception("API call %s %s failed", request.method, request.path)
    return problem_response(request, status=500, kind="internal-error", detail=(
        "The dashboard failed while answering; the error is in its log."))
