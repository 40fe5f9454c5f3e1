"""Findings 9 and 10 in a real browser: under our Content-Security-Policy the Swagger UI (served
from our static files) and the pages still work, and the browser reports no CSP violation."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from infra.roles import Role


def _login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.press("#id_password", "Enter")


@pytest.mark.browser
def test_swagger_ui_and_pages_run_under_the_csp_without_violations(browser, live_server, django_user_model):
    user = django_user_model.objects.create_user(username="csp", password="pw-csp-12345")
    for role in (Role.MAINTAINER, Role.ANNOTATOR):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    page = browser.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    blocked: list[str] = []
    page.on("requestfailed", lambda r: blocked.append(r.url))
    _login(page, live_server, "csp", "pw-csp-12345")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI rendered the operations
    assert page.locator(".opblock").count() > 10
    for url in ("/", "/annotate/", "/curation/", "/releases/", "/accounts/roles/"):
        page.goto(f"{live_server.url}{url}")
    assert not violations, violations
    assert not [u for u in blocked if not u.startswith(live_server.url)], blocked
