"""Response headers Django does not set by itself: Content-Security-Policy and, on what a
signed-in user sees, `Cache-Control: private, no-store`.

Django 5.2 has no built-in CSP (it arrives in 6.0); the policy is one string from
settings.CONTENT_SECURITY_POLICY, so a deployment can tighten it without code. Our pages load
scripts and styles only from our own static files (no inline script, no CDN); inline style
attributes stay allowed because Swagger UI sets them from JavaScript.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import patch_cache_control


class SecurityHeadersMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        # Pages and downloads for a signed-in user (session or API token) must not sit in a
        # shared or on-disk cache: a proxy or the next user of the machine would see them.
        user = getattr(request, "user", None)
        signed_in = bool(user is not None and user.is_authenticated) or "HTTP_AUTHORIZATION" in request.META
        # A view that chose its own policy keeps it (thumbnails: `private, max-age` so that the
        # annotator's browser does not fetch the same prototypes for every form).
        if signed_in and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
