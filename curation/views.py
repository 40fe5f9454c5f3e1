"""Maintainer pages: start a run, watch its progress, see its statistics and figures, correct meta-labels."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Dataset, ImageClass, Split
from curation import selector_training, selectors, services, topfactor
from curation.models import CurationFigure
from infra.errors import DomainError
from infra.roles import Role, role_required


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DomainError(f"{value!r} is not a whole number.")


def _default(value: int | None, default: int) -> int:
    # Not `value or default`: 0 is a bad chunk size to refuse, not a request for the default.
    return default if value is None else value


@role_required(Role.MAINTAINER)
@require_http_methods(["GET", "POST"])
def index(request):
    if request.method == "POST":
        try:
            run = services.curation_start(
                dataset_slug=request.POST.get("dataset", ""),
                split=request.POST.get("split", ""),
                campaign_id=_int_or_none(request.POST.get("campaign_id")),
                selector=request.POST.get("selector", "paper"),
                text_field=request.POST.get("text_field", topfactor.PAPER_DEFAULT_TEXT),
                factor_text=request.POST.get("factor_text", topfactor.PAPER_DEFAULT_FACTOR_TEXT),
                learned_version=request.POST.get("learned_version") or None,
                chunk_size=_default(_int_or_none(request.POST.get("chunk_size")), services.DEFAULT_CHUNK_SIZE),
                user=request.user,
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("curation:index")
        messages.success(request, f"Curation run {run.id} started on {run.total} final annotations.")
        return redirect("curation:run", run_id=run.id)
    return render(
        request,
        "curation/index.html",
        {
            "runs": selectors.curation_runs()[:50],
            "datasets": selectors.datasets(),
            "splits": Split.values,
            "selectors": services.SELECTORS,
            "learned_versions": selector_training.LEARNED_VERSIONS,
            "default_learned_version": selector_training.DEFAULT_LEARNED_VERSION,
            "text_fields": topfactor.TEXT_FIELDS,
            "factor_texts": topfactor.FACTOR_TEXTS,
            "default_text": topfactor.PAPER_DEFAULT_TEXT,
            "default_factor_text": topfactor.PAPER_DEFAULT_FACTOR_TEXT,
            "models": selectors.selector_models()[:10],
            "default_chunk_size": services.DEFAULT_CHUNK_SIZE,
        },
    )


@role_required(Role.MAINTAINER)
@require_GET
def run_detail(request, run_id: int):
    run = selectors.curation_run_get(run_id)
    if run is None:
        raise Http404("No such curation run.")
    stats = run.stats or {}
    counts = stats.get("factor_counts", {})
    splits = [s for s in counts if s != "all"]
    table = (
        [
            {
                "key": k,
                "cells": [
                    (counts[s]["selected"][k], counts[s]["top"][k], counts[s].get("reference_top", {}).get(k))
                    for s in ["all", *splits]
                ],
            }
            for k in FACTOR_KEYS
        ]
        if counts
        else []
    )
    return render(
        request,
        "curation/run.html",
        {
            "run": run,
            "progress": selectors.run_progress(run),
            "figures": run.figures.all(),
            "stats": stats,
            "count_columns": ["all", *splits],
            "count_table": table,
            "ff": selectors.top_correlations(stats, "factor_factor"),
            "fm": selectors.top_correlations(stats, "factor_meta"),
            "has_reference": "reference_top" in counts.get("all", {}),
        },
    )


@role_required(Role.MAINTAINER)
@require_GET
def run_progress(request, run_id: int):
    """Polled by the run page every second while the run is pending or running."""
    run = selectors.curation_run_get(run_id)
    if run is None:
        raise Http404("No such curation run.")
    return JsonResponse(selectors.run_progress(run))


@role_required(Role.MAINTAINER)
@require_POST
def run_restart(request, run_id: int):
    try:
        services.curation_run_restart(run_id=run_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("curation:run", run_id=run_id)


@role_required(Role.MAINTAINER)
@require_GET
def figure(request, run_id: int, key: str, fmt: str):
    if fmt not in ("png", "svg"):
        raise Http404("Figures exist as png and svg.")
    fig = get_object_or_404(CurationFigure, run_id=run_id, key=key)
    rel = fig.png if fmt == "png" else fig.svg
    path = Path(settings.MEDIA_ROOT) / rel
    if not path.is_file():
        raise Http404("The figure's file is missing.")
    return FileResponse(path.open("rb"), content_type="image/png" if fmt == "png" else "image/svg+xml")


@role_required(Role.MAINTAINER)
@require_http_methods(["GET", "POST"])
def meta_labels(request, slug: str):
    dataset = get_object_or_404(Dataset, slug=slug)
    if request.method == "POST":
        try:
            cls = services.image_class_meta_label_set(
                image_class_id=_int_or_none(request.POST.get("class_id")) or 0,
                meta_label=request.POST.get("meta_label", ""),
                user=request.user,
            )
            messages.success(request, f"{cls.name}: meta-label set to {cls.meta_label}.")
        except DomainError as exc:
            messages.error(request, exc.message)
        # Back to the same search, so a maintainer correcting several classes keeps the list.
        q = request.POST.get("q", "")
        url = reverse("curation:meta_labels", args=[slug])
        return redirect(f"{url}?{urlencode({'q': q})}" if q else url)
    q = request.GET.get("q", "").strip()
    classes = selectors.dataset_classes(dataset)
    if q:
        classes = classes.filter(name__icontains=q)
    return render(
        request,
        "curation/meta_labels.html",
        {
            "dataset": dataset,
            "classes": classes[:200],
            "meta_labels": META_LABELS,
            "q": q,
            "n_classes": ImageClass.objects.filter(dataset=dataset).count(),
        },
    )
