"""Release pages. Thin: parse, call one service or selector, render.

Everyone signed in lists published releases and downloads them; only maintainers create,
build and publish (and see releases before they are published).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from exports import selectors, services
from exports.forms import ReleaseForm
from exports.models import ReleaseStatus
from infra.errors import DomainError
from infra.roles import Role, has_role, role_required


def _error_page(request, exc: DomainError) -> HttpResponse:
    return render(request, "exports/error.html", {"error": exc}, status=exc.status)


@login_required
def release_list(request):
    releases = selectors.releases_for(request.user)
    return render(request, "exports/list.html", {"releases": releases})


@role_required(Role.MAINTAINER)
def release_new(request):
    form = ReleaseForm(request.POST or None, initial={"dataset": request.GET.get("dataset")})
    if request.method == "POST" and form.is_valid():
        try:
            release = services.release_create(
                dataset=form.cleaned_data["dataset"],
                version=form.cleaned_data["version"],
                curation_run=form.cleaned_data["curation_run"],
                notes=form.cleaned_data["notes"],
                license=form.cleaned_data["license"],
                created_by=request.user,
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Draft release {release} created. Build it, check it, then publish it.")
            return redirect("exports:detail", release.pk)
    return render(request, "exports/new.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def release_detail(request, pk: int):
    try:
        release = selectors.release_for(request.user, pk)
    except DomainError as exc:
        return _error_page(request, exc)
    others = selectors.releases_for(request.user).filter(dataset=release.dataset).exclude(pk=release.pk)
    return render(
        request,
        "exports/detail.html",
        {
            "release": release,
            "files": release.files.all(),
            "others": others,
            "can_manage": has_role(request.user, Role.MAINTAINER),
            "can_build": release.status
            in (ReleaseStatus.DRAFT, ReleaseStatus.BUILT, ReleaseStatus.FAILED, ReleaseStatus.BUILDING),
            "can_publish": release.status == ReleaseStatus.BUILT,
            "sheet": selectors.release_datasheet_counts(release) if release.archive_sha256 else None,
        },
    )


@role_required(Role.MAINTAINER)
@require_POST
def release_build(request, pk: int):
    try:
        release = services.release_build_start(release_id=pk, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Building {release}; this page shows the progress.")
    return redirect("exports:detail", pk)


@role_required(Role.MAINTAINER)
@require_POST
def release_publish(request, pk: int):
    try:
        release = services.release_publish(release_id=pk, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{release} is published. It can no longer change.")
    return redirect("exports:detail", pk)


def _serve(request, pk: int, name: str | None) -> HttpResponse:
    try:
        release = selectors.release_for(request.user, pk)
        fh, filename, sha = selectors.open_verified_release_file(release, name)
    except DomainError as exc:
        return _error_page(request, exc)
    response = FileResponse(fh, as_attachment=True, filename=filename)
    response["X-Checksum-SHA256"] = sha
    return response


@login_required
def release_archive(request, pk: int):
    return _serve(request, pk, None)


@login_required
def release_file(request, pk: int, name: str):
    return _serve(request, pk, name)


@login_required
def release_diff(request):
    try:
        old = selectors.release_for(request.user, int(request.GET.get("old", "0")))
        new = selectors.release_for(request.user, int(request.GET.get("new", "0")))
        diff = selectors.release_diff(old=old, new=new)
    except ValueError:
        return _error_page(request, DomainError("Give two release ids: ?old=ID&new=ID."))
    except DomainError as exc:
        return _error_page(request, exc)
    rows = [
        {"factor": k, **counts, **diff["flag_changes"][k], "top": diff["top_factor_count_deltas"][k]}
        for k, counts in diff["factor_count_deltas"].items()
    ]
    return render(request, "exports/diff.html", {"old": old, "new": new, "diff": diff, "rows": rows})
