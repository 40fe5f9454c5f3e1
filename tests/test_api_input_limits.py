"""Finding 5: input that used to end in a 500 — deeply nested JSON, limit/offset beyond 64 bits
or not integers, ids beyond 64 bits in URLs — is a 4xx in the JSON error shape."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from infra.api import json_depth
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


@pytest.fixture
def token_client(annotator):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=annotator).key)
    return c


def test_json_depth_counts_nesting_but_not_brackets_in_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth(b'"\\"[["') == 0


def test_deeply_nested_json_is_a_400_in_the_error_shape(token_client):
    body = "[" * 100_000 + "]" * 100_000
    r = token_client.post("/api/annotate/assignments/1/submit", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "parse_error"


def test_oversized_json_is_a_413_in_the_error_shape(token_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"justification": "' + "x" * 2000 + '"}'
    r = token_client.post("/api/annotate/assignments/1/submit", body, content_type="application/json")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999999",
        "offset=99999999999999999999999",
        "limit=abc",
        "offset=-1",
        "limit=0",
        "offset=1.5",
    ],
)
def test_bad_limit_or_offset_is_a_400_naming_it(token_client, query):
    r = token_client.get(f"/api/annotate/annotations/?{query}")
    assert r.status_code == 400, r.content
    assert query.split("=")[0] in r.json()["error"]["details"]


def test_good_limit_and_offset_still_page(token_client):
    r = token_client.get("/api/annotate/annotations/?limit=5&offset=0")
    assert r.status_code == 200 and r.json()["results"] == []


@pytest.mark.parametrize(
    "url", ["/api/annotate/annotations/9999999999999999", "/curation/runs/9999999999999999/figures/x.png"]
)
def test_ids_beyond_64_bits_in_urls_are_404(annotator, maintainer, url):
    c = client_for(maintainer if url.startswith("/curation") else annotator)
    assert c.get(url).status_code == 404


def test_missing_credentials_get_401_with_www_authenticate():
    r = APIClient().get("/api/annotate/campaigns/")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Token")
    assert r.json()["error"]["code"] == "not_authenticated"
