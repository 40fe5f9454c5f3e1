"""Maintainer pages: prototype runs and each class's prototypes."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from infra.errors import DomainError
from infra.roles import Role, role_required
from prototypes import selectors, services
from prototypes.models import PrototypeRun

CLASSES_PER_PAGE = 40


@role_required(Role.MAINTAINER)
def run_list(request):
    runs = selectors.prototype_runs()[:200]
    return render(request, "prototypes/run_list.html", {"runs": runs})


@role_required(Role.MAINTAINER)
def run_detail(request, run_id: int):
    run = get_object_or_404(PrototypeRun.objects.select_related("dataset"), pk=run_id)
    page = Paginator(selectors.run_prototypes_by_class(run=run), CLASSES_PER_PAGE).get_page(request.GET.get("page"))
    skips = run.skips.all()[:100]
    return render(request, "prototypes/run_detail.html", {"run": run, "page": page, "skips": skips})


@require_POST
@role_required(Role.MAINTAINER)
def run_make_current(request, run_id: int):
    run = get_object_or_404(PrototypeRun, pk=run_id)
    try:
        services.prototype_run_set_current(run=run)
        messages.success(request, f"Run {run.pk} is now the current prototype run of {run.dataset.slug}.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("prototypes:run", run_id=run.pk)
