"""The API's URLs, included under /api/v1/ by sparkbot_dash/urls.py.

The API answers anonymous callers itself (401 problem details), so its views are exempt from the
site's sign-in redirect; the interactive docs page is a page like any other and keeps it.
"""

from .app import api

app_name = "api"
patterns, _ninja_app_name, _namespace = api.urls
for pattern in patterns:
    if pattern.name != "openapi-view":
        pattern.callback.login_required = False

urlpatterns = patterns
