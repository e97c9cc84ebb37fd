"""Problem details for what never reaches the API's own handlers: under /api/, an unknown path (404),
a method the path does not take (405), or a crash outside a view (500) is JSON, never an HTML page."""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from .problems import CONTENT_TYPE, problem_response

logger = logging.getLogger(__name__)
PREFIX = "/api/"
DJANGO_ANSWERS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)
KINDS = {404: "not-found"}  # as the table in docs/API.md names them
SENTENCES = {
    400: "The request could not be read.",
    403: "Your account may not do this.",
    404: "Nothing is at this address; the API's operations are listed at /api/v1/docs.",
    405: "This address does not take {method}; see the Allow header.",
}


class ApiProblemMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith((CONTENT_TYPE, "application/json")):
            return response
        return self._problem(request, response)

    def _problem(self, request, response):
        status = response.status_code
        detail = SENTENCES.get(status, "The request could not be answered.").format(method=request.method)
        problem = problem_response(request, status=status, detail=detail, kind=KINDS.get(status, ""))
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                problem[header] = response[header]
        return problem

    def process_exception(self, request, exception):
        if not request.path.startswith(PREFIX) or isinstance(exception, DJANGO_ANSWERS):
            return None  # Django turns these into their 4xx answer, which __call__ then rewrites
        logger.exception("request %s %s failed", request.method, request.path)
        return problem_response(request, status=500, kind="internal-error",
                                detail="The dashboard failed while answering; the error is in its log.")
