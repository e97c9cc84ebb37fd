import logging

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed

log = logging.getLogger(__name__)


class ProxyHeaderHintMiddleware:
    """Say, once, how to end the redirect loop of an HTTPS proxy whose header Django is not told to trust:
    the proxy speaks HTTPS to the browser and plain HTTP to us, and SECURE_SSL_REDIRECT sends every
    request back to HTTPS."""

    def __init__(self, get_response):
        if not settings.SECURE_SSL_REDIRECT or settings.SECURE_PROXY_SSL_HEADER:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.said = False

    def __call__(self, request):
        if not self.said and not request.is_secure() and request.META.get("HTTP_X_FORWARDED_PROTO") == "https":
            self.said = True
            log.warning("Requests arrive through an HTTPS proxy (X-Forwarded-Proto: https) as plain HTTP, so "
                        "every page redirects to itself. If that proxy sets the header itself, as Caddy does, "
                        "set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https.")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY with every response (no inline script anywhere)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
