"""RFC 9457 problem details: every error under /api/ is one of these, never an HTML page."""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "urn:sparkbot-dash:problem:"


class Problem(Exception):
    """An error an endpoint answers with: a status, a short name for its kind, a sentence, and extras."""

    def __init__(self, status: int, kind: str, detail: str, *, title: str = "", headers: dict | None = None,
                 **extra):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra


def problem_body(*, status: int, detail: str, kind: str = "", title: str = "", instance: str = "",
                 **extra) -> dict:
    body = {
        "type": f"{TYPE_BASE}{kind}" if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(request, *, status: int, detail: str, kind: str = "", title: str = "",
                     headers: dict | None = None, **extra) -> HttpResponse:
    body = problem_body(status=status, detail=detail, kind=kind, title=title, instance=request.path, **extra)
    response = HttpResponse(json.dumps(body, ensure_ascii=False, default=str), status=status,
                            content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def from_problem(request, problem: Problem) -> HttpResponse:
    return problem_response(request, status=problem.status, detail=problem.detail, kind=problem.kind,
                            title=problem.title, headers=problem.headers, **problem.extra)
