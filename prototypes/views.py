"""Maintainer pages: prototype runs and each class's prototypes."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from infra.errors import DomainError
from infra.roles import Role, role_required
from prototypes import selectors, services
from prototypes.forms import RunStartForm
from prototypes.models import PrototypeRun

CLASSES_PER_PAGE = 40


@role_required(Role.MAINTAINER)
@require_http_methods(["GET", "POST"])
def run_list(request):
    """The runs, and the form that starts one: a torchvision model (named weights, none, or an
    uploaded checkpoint; its shards go to the gpu queue) or an uploaded predictions file."""
    form = RunStartForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = form.start(user=request.user)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Run {run.pk} started.")
            return redirect("prototypes:run", run_id=run.pk)
    runs = selectors.prototype_runs()[:200]
    status = 400 if form.errors else 200
    return render(request, "prototypes/run_list.html", {"runs": runs, "form": form}, status=status)


@role_required(Role.MAINTAINER)
def run_detail(request, run_id: int):
    run = get_object_or_404(PrototypeRun.objects.select_related("dataset"), pk=run_id)
    page = Paginator(selectors.run_prototypes_by_class(run=run), CLASSES_PER_PAGE).get_page(request.GET.get("page"))
    skips = run.skips.all()[:100]
    shards = run.shards.order_by("index")
    return render(request, "prototypes/run_detail.html", {"run": run, "page": page, "skips": skips, "shards": shards})


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
