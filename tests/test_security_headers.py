"""Finding 9 (CSP, Cache-Control, HTTPS settings from the environment, Secure cookies) and
finding 10 (Swagger UI and Redoc served from our own static files)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import REPO, client_for

pytestmark = pytest.mark.embedded


def test_every_page_sends_a_content_security_policy(client, annotator):
    for r in (client.get("/accounts/login/"), client_for(annotator).get("/")):
        csp = r["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp


def test_signed_in_pages_are_not_cached(annotator):
    r = client_for(annotator).get("/")
    assert "no-store" in r["Cache-Control"] and "private" in r["Cache-Control"]


def test_api_responses_to_a_token_are_not_cached(annotator):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=annotator).key)
    r = c.get("/api/annotate/campaigns/")
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]


def test_our_pages_have_no_inline_script(client, annotator, maintainer):
    # CSP script-src 'self' would block an inline script: none of ours may rely on one.
    import re

    for c, url in (
        (client, "/accounts/login/"),
        (client_for(annotator), "/"),
        (client_for(maintainer), "/accounts/roles/"),
    ):
        html = client_for(maintainer).get(url).content.decode() if c is None else c.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def _settings_in_subprocess(env: dict, expr: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TESTING", "SECURE_COOKIES")}
    return subprocess.run(
        [sys.executable, "-c", f"import django;django.setup();from django.conf import settings as s;print({expr})"],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_make_cookies_secure_and_read_https_settings():
    r = _settings_in_subprocess(
        {
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
        },
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https')"


def test_production_defaults_give_secure_cookies_even_through_compose():
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["x-app"]["environment"]
    assert env["DEBUG"] == "0" and env["SECURE_COOKIES"].endswith(":-1}")
    r = _settings_in_subprocess({"DEBUG": "0"}, "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE")
    assert r.returncode == 0 and r.stdout.strip() == "True True", r.stderr


def test_hsts_header_is_sent_over_https_when_configured(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    r = client.get("/accounts/login/", secure=True)
    assert r["Strict-Transport-Security"].startswith("max-age=3600")


def test_swagger_ui_is_served_from_our_static_files(annotator):
    c = client_for(annotator)
    r = c.get("/api/docs/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "cdn." not in html and "jsdelivr" not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert c.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
    assert c.get("/api/docs/?script=").status_code == 200  # the init script, not inline (CSP)


def test_redoc_is_served_from_our_static_files(annotator):
    html = client_for(annotator).get("/api/redoc/").content.decode()
    assert "googleapis" not in html and "jsdelivr" not in html
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in html
