"""`{% explore_url slug run=.. basis="run" split=.. factor=.. %}`: the explorer filtered to the
images behind a count (the run page and the release datasheet link every count with it)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def explore_url(dataset_slug: str, **params) -> str:
    pairs = []
    for key, value in params.items():
        if value is None or value == "" or value is False:
            continue
        if key == "split" and value == "all":
            continue
        pairs.append((key, "1" if value is True else str(value)))
    url = reverse("curation:explore", args=[dataset_slug])
    return f"{url}?{urlencode(pairs)}" if pairs else url
