"""Researcher pages: upload, list, the evaluation ("where does this model fail"), comparison,
the drill-down to images, downloads and figures."""

from __future__ import annotations

import io
import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.factors import FACTOR_KEYS, FACTORS_BY_KEY, META_LABELS
from catalog.models import Image
from evaluation import downloads, figures, report, selectors, services
from evaluation.forms import UploadForm
from evaluation.models import EvaluationStatus
from infra.errors import DomainError
from infra.roles import Role, role_required


def pages(view):
    """A refused request renders its message with the error's 4xx status (never a 500)."""
    from functools import wraps

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return render(request, "evaluation/error.html", {"error": exc}, status=exc.status)

    return wrapped


def _factor_rows(ev) -> list[dict]:
    block = ev.primary
    if not block:
        return []
    rows = []
    for key in FACTOR_KEYS:
        f = dict(block["factors"][key])
        f["key"], f["wording"] = key, FACTORS_BY_KEY[key].wording
        rows.append(f)
    return sorted(rows, key=lambda r: -(r["error_ratio"] or 0))


@role_required(Role.RESEARCHER)
@pages
@require_http_methods(["GET", "POST"])
def index(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            c = form.cleaned_data
            up = c["predictions"]
            try:
                ev = services.evaluation_create(
                    owner=request.user, name=c["name"], dataset_slug=c["dataset"], data=up.read(), filename=up.name,
                    label_source=c["labels"], release_version=c["release"], which_factor=c["which_factor"], correctness=c["correctness"],
                    split=c["split"], filter_prototypes=not c["keep_prototypes"],
                    toolkit_compatible=c["toolkit_compatible"], allow_low_coverage=c["allow_low_coverage"],
                )  # fmt: skip
            except DomainError as exc:
                messages.error(request, exc.message)
                return render(request, "evaluation/index.html", _index_context(request, form), status=exc.status)
            return redirect("evaluation:detail", evaluation_id=ev.pk)
        return render(request, "evaluation/index.html", _index_context(request, form), status=400)
    return render(request, "evaluation/index.html", _index_context(request, form))


def _headline(evs: list) -> tuple:
    """The first screen answers "where does ResNet-50 fail": the toolkit-defaults ResNet-50 if
    there is one (its figures are the toolkit's), else any ResNet, else the latest done one; with
    the same model's evaluations on other labels beside it."""
    done = [e for e in evs if e.status == EvaluationStatus.DONE]

    def rank(e) -> tuple:
        name = e.name.lower()
        return ("resnet" not in name, not e.toolkit_compatible)

    if not done:
        return None, []
    head = min(done, key=rank)
    stem = head.name.split(" (")[0]
    same = [e for e in done if e.pk != head.pk and e.name.split(" (")[0] == stem]
    return head, same


def _index_context(request, form) -> dict:
    evs = list(selectors.evaluations_for(request.user)[:200])
    head, same = _headline(evs)
    headline = selectors.evaluation_for(request.user, head.pk) if head else None
    others = []
    for e in same:
        full = selectors.evaluation_for(request.user, e.pk)
        tex = full.primary["factors"]["texture"]
        others.append({"ev": full, "texture": tex["error_ratio"], "ci": tex["error_ratio_ci"]})
    return {
        "form": form,
        "evaluations": evs,
        "headline": headline,
        "headline_rows": _factor_rows(headline)[:5] if headline else [],
        "headline_others": others,
        "min_coverage": f"{settings.EVALUATION_MIN_COVERAGE:.0%}",
    }


@role_required(Role.RESEARCHER)
@pages
@require_GET
def detail(request, evaluation_id: int):
    ev = selectors.evaluation_for(request.user, evaluation_id)
    ctx = {"ev": ev, "rows": _factor_rows(ev), "figures": ev.figures.all(), "meta_labels": META_LABELS}
    if ev.status == EvaluationStatus.DONE:
        m = ev.metrics
        ctx["prim"] = ev.primary
        ctx["kinds"] = {k: v["overall"] for k, v in m["kinds"].items()}
        ctx["table4"] = m.get("metalabel_factor", {}).get("table4", {})
        ctx["worst_k"] = ev.primary.get(f"worst_{ev.k_worst}_classes")
        zoo = selectors.zoo_context(ev)
        ctx["zoo_groups"] = [
            {"group": g, "n": v["n"], "texture": v["mean_error_ratio"].get("texture")}
            for g, v in sorted(zoo["groups"].items())
        ]
        ctx["zoo_n"] = zoo["n_models"]
        tests = selectors.group_tests(zoo) if zoo["groups"] else {}
        ctx["group_tests"] = [{"factor": k, **v} for k, v in tests.items() if v]
        ctx["percentile"] = zoo.get("accuracy_percentile")
        ctx["others"] = (
            selectors.evaluations_for(request.user).filter(status=EvaluationStatus.DONE).exclude(pk=ev.pk)[:100]
        )
        ctx["top5"] = m.get("top5")
        ctx["ece"] = (m.get("calibration") or {}).get("ece", {}).get("overall")
    return render(request, "evaluation/detail.html", ctx)


@role_required(Role.RESEARCHER)
@pages
@require_GET
def images(request, evaluation_id: int):
    ev = selectors.evaluation_for(request.user, evaluation_id)
    try:
        page = int(request.GET.get("page") or 1)
    except ValueError:
        page = 1
    params = {
        "factor": request.GET.get("factor", ""),
        "meta_label": request.GET.get("meta_label", ""),
        "wrong_only": request.GET.get("wrong") == "1",
        "q": request.GET.get("q", "")[:100],
    }
    data = selectors.drilldown(ev, page=page, **params)
    return render(request, "evaluation/images.html", {"ev": ev, "data": data, "params": params,
                  "factors": FACTOR_KEYS, "meta_labels": META_LABELS})  # fmt: skip


@role_required(Role.RESEARCHER)
@pages
@require_GET
def thumbnail(request, evaluation_id: int, image_id: int):
    """A small JPEG of an image behind this evaluation (the evaluation's visibility decides)."""
    from PIL import Image as PILImage

    ev = selectors.evaluation_for(request.user, evaluation_id, with_metrics=False)
    im = Image.objects.filter(pk=image_id, dataset=ev.dataset).select_related("dataset").first()
    if im is None or im.path is None or not im.path.is_file():
        raise Http404("No stored file for this image.")
    with PILImage.open(im.path) as pic:
        pic = pic.convert("RGB")
        pic.thumbnail((160, 160))
        buf = io.BytesIO()
        pic.save(buf, "JPEG", quality=80)
    return HttpResponse(buf.getvalue(), content_type="image/jpeg")


@role_required(Role.RESEARCHER)
@pages
@require_GET
def figure(request, evaluation_id: int, key: str, fmt: str):
    ev = selectors.evaluation_for(request.user, evaluation_id, with_metrics=False)
    fig = ev.figures.filter(key=key).first()
    if fig is None or fmt not in ("png", "svg"):
        raise Http404("No such figure.")
    path = Path(settings.MEDIA_ROOT) / (fig.png if fmt == "png" else fig.svg)
    if not path.is_file():
        raise Http404("The figure's file is missing.")
    return FileResponse(open(path, "rb"), content_type="image/png" if fmt == "png" else "image/svg+xml")


@role_required(Role.RESEARCHER)
@pages
@require_GET
def download(request, evaluation_id: int, fmt: str):
    ev = selectors.evaluation_for(request.user, evaluation_id)
    if ev.status != EvaluationStatus.DONE:
        raise DomainError("The evaluation is not computed yet.", code="not_ready")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ev.name)[:80]
    if fmt == "csv":
        resp = HttpResponse(downloads.accuracies_csv([(ev.name, ev.primary, ev.k_worst)]), content_type="text/csv")
        resp["Content-Disposition"] = f'attachment; filename="{safe}_accuracies_per_factor.csv"'
        return resp
    if fmt == "json":
        resp = HttpResponse(json.dumps(ev.metrics, indent=1), content_type="application/json")
        resp["Content-Disposition"] = f'attachment; filename="{safe}_evaluation.json"'
        return resp
    raise Http404("csv or json")


@role_required(Role.RESEARCHER)
@pages
@require_POST
def share(request, evaluation_id: int):
    ev = services.evaluation_share(
        user=request.user, evaluation_id=evaluation_id, shared=request.POST.get("shared") != "0"
    )
    messages.success(request, "Shared with every researcher." if ev.shared else "Visible to you and maintainers only.")
    return redirect("evaluation:detail", evaluation_id=ev.pk)


@role_required(Role.RESEARCHER)
@pages
@require_GET
def compare(request):
    try:
        a_id, b_id = int(request.GET.get("a", "")), int(request.GET.get("b", ""))
    except ValueError:
        raise DomainError("Pick two evaluations to compare (a and b).")
    a, b = selectors.evaluation_for(request.user, a_id), selectors.evaluation_for(request.user, b_id)
    cmp = selectors.comparison(a, b)
    return render(request, "evaluation/compare.html", {"a": a, "b": b, "cmp": cmp, "factors": ["overall", *FACTOR_KEYS],
                  "figure_url": reverse("evaluation:compare_figure") + f"?a={a.pk}&b={b.pk}"})  # fmt: skip


@role_required(Role.RESEARCHER)
@pages
@require_GET
def compare_figure(request):
    try:
        a_id, b_id = int(request.GET.get("a", "")), int(request.GET.get("b", ""))
    except ValueError:
        raise Http404("a and b")
    a, b = selectors.evaluation_for(request.user, a_id), selectors.evaluation_for(request.user, b_id)
    path = Path(settings.MEDIA_ROOT) / "evaluations" / "compare" / f"{a.pk}-{b.pk}.png"
    if not path.is_file():
        png, _svg = figures.render_one(figures.compare_figure(selectors.comparison(a, b), a.name, b.name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return FileResponse(open(path, "rb"), content_type="image/png")


@role_required(Role.RESEARCHER)
@pages
@require_GET
def zoo(request):
    which = request.GET.get("which_factor", "top")
    kind = request.GET.get("correctness", "class")
    qs = selectors.zoo_models(which, kind)
    groups = {}
    for g, avg in qs.values_list("group", "average"):
        groups.setdefault(g, []).append(avg)
    rows = [{"group": g, "n": len(v), "best": max(v), "mean": sum(v) / len(v)} for g, v in sorted(groups.items())]
    return render(request, "evaluation/zoo.html", {"rows": rows, "which": which, "kind": kind, "note": report.METHODS})
