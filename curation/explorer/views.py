"""Explorer pages: the gallery and one image. Reviewers, maintainers and researchers only;
annotators get 403 (they never see other people's answers)."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from catalog.factors import FACTOR_KEYS, FACTORS, META_LABELS
from catalog.models import Dataset, Split
from curation.explorer import selectors
from curation.explorer.filters import (
    FACTOR_MODES,
    PAGE_SIZES,
    REVIEW_STATUSES,
    TOP_SOURCES,
    ExplorerQuery,
    extra_filters,
    parse_query,
)
from infra.errors import DomainError
from infra.roles import Role, role_required

EXPLORER_ROLES = (Role.REVIEWER, Role.MAINTAINER, Role.RESEARCHER)


def _error(request, dataset, exc: DomainError):
    return render(request, "curation/explorer/error.html", {"dataset": dataset, "error": exc}, status=exc.status)


@role_required(*EXPLORER_ROLES)
@require_GET
def index(request):
    datasets = list(Dataset.objects.order_by("slug"))
    if len(datasets) == 1:
        return redirect("curation:explore", slug=datasets[0].slug)
    return render(request, "curation/explorer/index.html", {"datasets": datasets})


@role_required(*EXPLORER_ROLES)
@require_GET
def gallery(request, slug: str):
    dataset = get_object_or_404(Dataset, slug=slug)
    try:
        query = parse_query(request.GET)
        page = selectors.explorer_page(dataset=dataset, query=query)
    except DomainError as exc:
        return _error(request, dataset, exc)
    qs = query.query_string()
    choices = selectors.filter_choices(dataset)
    # Built here, not with a template loop: a dataset has up to a thousand classes and the
    # template engine would spend most of the page's time on this one <select>.
    class_options = mark_safe('<option value="">any</option>') + format_html_join(
        "",
        '<option value="{}"{}>{}: {}</option>',
        ((i, " selected" if query.class_index == i else "", i, name) for i, name in choices["classes"]),
    )
    return render(
        request,
        "curation/explorer/gallery.html",
        {
            "dataset": dataset,
            "page": page,
            "q": query,
            "qs": qs,
            "next_qs": query.query_string(after=page.next_after) if page.next_after is not None else None,
            "prev_qs": query.query_string(before=page.prev_before) if page.prev_before is not None else None,
            "choices": choices,
            "class_options": class_options,
            "factors": FACTORS,
            "factor_keys": FACTOR_KEYS,
            "meta_labels": META_LABELS,
            "splits": Split.values,
            "modes": FACTOR_MODES,
            "statuses": REVIEW_STATUSES,
            "top_sources": TOP_SOURCES,
            "page_sizes": PAGE_SIZES,
            "extra": [(f, dict(query.extra).get(f.key, "")) for f in extra_filters().values()],
        },
    )


@role_required(*EXPLORER_ROLES)
@require_GET
def image(request, slug: str, image_id: int):
    dataset = get_object_or_404(Dataset, slug=slug)
    try:
        query = parse_query(request.GET)
        run = selectors.resolve_run(dataset, ExplorerQuery(run_id=query.run_id))
        detail = selectors.image_detail(dataset=dataset, image_id=image_id, run=run)
    except DomainError as exc:
        return _error(request, dataset, exc)
    return render(
        request,
        "curation/explorer/image.html",
        {"dataset": dataset, "d": detail, "run": run, "qs": query.query_string(), "factors": FACTORS},
    )


@role_required(*EXPLORER_ROLES)
@require_GET
def count(request, slug: str):
    """The number of images matching the gallery's filters (the page fetches it apart)."""
    dataset = get_object_or_404(Dataset, slug=slug)
    try:
        query = parse_query(request.GET)
        n = selectors.explorer_count(dataset=dataset, query=query)
    except DomainError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status)
    return JsonResponse({"count": n})
