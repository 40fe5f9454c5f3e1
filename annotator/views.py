"""Pages of the annotator: campaigns, the contrast form, feedback, own annotations, image files.

Views stay thin: parse, call one service or selector, render.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator import selectors, services
from annotator.forms import AnswerForm, CampaignForm, SkipForm
from annotator.models import AssignmentKind, AssignmentStatus, Campaign, GoldKind
from annotator.thumbs import SIZES, missing_svg, thumbnail
from catalog.factors import FACTORS, FACTORS_BY_KEY
from catalog.models import Image
from infra.errors import DomainError
from infra.roles import Role, role_required

ANY_ROLE = (Role.ANNOTATOR, Role.REVIEWER, Role.MAINTAINER, Role.RESEARCHER)


@role_required(Role.ANNOTATOR)
@require_GET
def index(request):
    campaigns = [(c, selectors.campaign_progress(campaign=c)) for c in selectors.active_campaigns()]
    return render(request, "annotator/index.html", {"campaigns": campaigns})


@role_required(Role.ANNOTATOR)
@require_http_methods(["GET", "POST"])
def campaign_next(request, campaign_id: int):
    """POST leases the next image and sends the annotator to its form. GET never leases (a link
    on another site could otherwise lease an image for a signed-in annotator): it goes to the
    lease the user already holds, or shows a button that POSTs here."""
    if request.method == "GET":
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        held = selectors.held_lease(campaign_id=campaign.pk, user=request.user)
        if held is not None:
            return redirect("annotator:assignment", assignment_id=held.pk)
        progress = selectors.annotator_progress(campaign=campaign, user=request.user)
        return render(request, "annotator/next.html", {"campaign": campaign, "progress": progress})
    return _lease_next(request, campaign_id)


def _lease_next(request, campaign_id: int):
    """Lease the next assignment (inside a POST) and redirect to its form."""
    try:
        assignment = services.assignment_next(campaign_id=campaign_id, user=request.user)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message)
        messages.error(request, exc.message)
        return redirect("annotator:index")
    if assignment is None:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return render(request, "annotator/nothing_left.html", {"campaign": campaign}, status=200)
    return redirect("annotator:assignment", assignment_id=assignment.pk)


@role_required(Role.ANNOTATOR)
@require_http_methods(["GET", "POST"])
def assignment_form(request, assignment_id: int):
    assignment = selectors.assignment_of(user=request.user, assignment_id=assignment_id)
    if assignment is None:
        raise Http404("No such assignment.")
    if assignment.status == AssignmentStatus.SUBMITTED:
        if assignment.kind == AssignmentKind.QUALIFICATION:
            return redirect("annotator:feedback", assignment_id=assignment.pk)
        return redirect("annotator:next", campaign_id=assignment.campaign_id)
    if assignment.status == AssignmentStatus.SKIPPED:
        return redirect("annotator:next", campaign_id=assignment.campaign_id)
    form = AnswerForm(request.POST or None, ask_main_factor=selectors.asks_main_factor(assignment))
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.answer is not None:
            try:
                services.annotation_submit(assignment_id=assignment.pk, user=request.user, answer=form.answer)
            except DomainError as exc:
                if exc.status == 404:
                    raise Http404(exc.message)
                messages.error(request, exc.message)
                return redirect("annotator:next", campaign_id=assignment.campaign_id)
            if assignment.kind == AssignmentKind.QUALIFICATION:
                return redirect("annotator:feedback", assignment_id=assignment.pk)
            return _lease_next(request, assignment.campaign_id)  # this POST leases the next image
        status = 400
    ctx = {
        "assignment": assignment,
        "campaign": assignment.campaign,
        "image": assignment.image,
        # What the lease recorded when it was claimed (a GET renders, it never writes).
        "prototypes": selectors.assignment_prototypes(assignment=assignment),
        "prototype_run_id": assignment.prototype_run_id,
        "form": form,
        "skip_form": SkipForm(),
        "factor_rows": form.factor_rows(),
        "progress": selectors.annotator_progress(campaign=assignment.campaign, user=request.user),
        "qualifying": assignment.kind == AssignmentKind.QUALIFICATION,
    }
    return render(request, "annotator/form.html", ctx, status=status)


@role_required(Role.ANNOTATOR)
@require_POST
def assignment_skip(request, assignment_id: int):
    assignment = selectors.assignment_of(user=request.user, assignment_id=assignment_id)
    if assignment is None:
        raise Http404("No such assignment.")
    form = SkipForm(request.POST)
    reason = form.data.get("reason", "")
    try:
        services.assignment_skip(assignment_id=assignment.pk, user=request.user, reason=reason)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("annotator:assignment", assignment_id=assignment.pk)
    messages.info(request, "Image skipped.")
    return _lease_next(request, assignment.campaign_id)


@role_required(Role.ANNOTATOR)
@require_GET
def qualification_feedback(request, assignment_id: int):
    """After each qualification item: the known answer next to the annotator's."""
    assignment = selectors.assignment_of(user=request.user, assignment_id=assignment_id)
    if assignment is None or assignment.kind != AssignmentKind.QUALIFICATION or assignment.status != "submitted":
        raise Http404("No feedback here.")
    response = assignment.gold_response
    known, given = set(response.gold_item.factors), set(response.factors)
    rows = [
        {"factor": f, "known": f.key in known, "given": f.key in given, "ok": (f.key in known) == (f.key in given)}
        for f in FACTORS
        if f.key in known or f.key in given
    ]
    qual = assignment.campaign.qualifications.filter(annotator=request.user).first()
    return render(
        request,
        "annotator/feedback.html",
        {
            "assignment": assignment,
            "response": response,
            "rows": rows,
            "qualification": qual,
            "campaign": assignment.campaign,
            "answered": selectors.qualification_answered(campaign=assignment.campaign, user=request.user),
            "total": assignment.campaign.gold_items.filter(kind=GoldKind.QUALIFICATION).count(),
        },
    )


@role_required(Role.ANNOTATOR)
@require_GET
def my_annotations(request):
    annotations = list(selectors.annotations_of(user=request.user)[:200])
    return render(request, "annotator/mine.html", {"annotations": annotations, "factors_by_key": FACTORS_BY_KEY})


@role_required(Role.ANNOTATOR)
@require_http_methods(["GET", "POST"])
def annotation_edit(request, annotation_id: int):
    """Revise an own annotation until it is reviewed; other people's annotations are 404."""
    annotation = selectors.annotation_of(user=request.user, annotation_id=annotation_id)
    if annotation is None:
        raise Http404("No such annotation.")
    ask = selectors.annotation_asks_main_factor(annotation)
    form = (
        AnswerForm(request.POST, ask_main_factor=ask)
        if request.method == "POST"
        else AnswerForm.from_annotation(annotation, ask_main_factor=ask)
    )
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.answer is not None:
            try:
                services.annotation_revise(annotation_id=annotation.pk, user=request.user, answer=form.answer)
            except DomainError as exc:
                messages.error(request, exc.message)
                return redirect("annotator:mine")
            messages.success(request, "Your annotation was revised (the previous version is kept).")
            return redirect("annotator:mine")
        status = 400
    return render(
        request,
        "annotator/edit.html",
        {
            "annotation": annotation,
            "form": form,
            "factor_rows": form.factor_rows(),
            "versions": annotation.versions.all(),
            "revisable": annotation.status in services.REVISABLE,
        },
        status=status,
    )


@role_required(Role.MAINTAINER)
@require_http_methods(["GET", "POST"])
def campaign_admin(request):
    """Maintainers: create campaigns and see every campaign's progress."""
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        ds = d["dataset"]
        class_ids = d["class_ids"]  # None = every class; the form refused indices matching nothing
        try:
            campaign = services.campaign_create(
                name=d["name"],
                dataset=ds,
                split=d["split"],
                class_ids=class_ids,
                sample_size=d["sample_size"],
                overlap_fraction=d["overlap_fraction"],
                overlap_copies=d["overlap_copies"],
                gold_rate=d["gold_rate"],
                qualification_threshold=d["qualification_threshold"],
                ask_main_factor=d["ask_main_factor"],
                created_by=request.user,
            )
            if d["status"] != campaign.status:
                services.campaign_set_status(campaign_id=campaign.pk, status=d["status"])
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Campaign {campaign.name!r} created.")
            return redirect("annotator:campaigns")
    campaigns = [(c, selectors.campaign_progress(campaign=c)) for c in Campaign.objects.select_related("dataset")]
    return render(
        request, "annotator/campaigns.html", {"form": form, "campaigns": campaigns}, status=400 if form.errors else 200
    )


@role_required(*ANY_ROLE)
@require_GET
def image_file(request, image_id: int, size: str):
    """An image as a cached thumbnail ('thumb', 'large') or the original ('full').

    A missing file answers a visible "file missing" picture (not a broken-image icon).
    """
    if size not in SIZES and size != "full":
        raise Http404("Unknown size.")
    image = get_object_or_404(Image.objects.select_related("dataset"), pk=image_id)
    lease = request.GET.get("a", "")
    lease_id = int(lease) if lease.isascii() and lease.isdigit() and 0 < int(lease) < 2**63 else None
    if not selectors.image_visible_to(user=request.user, image=image, lease_id=lease_id):
        raise Http404("No such image.")  # 404, not 403: whether an id exists is not the caller's business
    path = image.path
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        stat = None
    if stat is None:
        body = missing_svg("file missing", f"image {image.pk}")
        resp = HttpResponse(body, content_type="image/svg+xml")
        resp["Cache-Control"] = "no-store"
        resp["X-Image-Missing"] = "1"
        return resp
    etag = f'"{image.pk}-{int(stat.st_mtime)}-{stat.st_size}-{size}"'
    if etag in request.headers.get("If-None-Match", ""):
        resp = HttpResponseNotModified()
        resp["ETag"] = etag
        return resp
    if size == "full":
        resp = FileResponse(open(path, "rb"))
        # FileResponse names the file (Content-Disposition) from the path: the name gave gold
        # and qualification answers away (espresso_brighter.jpg).
        del resp["Content-Disposition"]
    else:
        try:
            cached = thumbnail(
                path, settings.MEDIA_ROOT / "thumbs" / str(image.dataset_id), f"{image.pk}-{int(stat.st_mtime)}", size
            )
        except OSError as exc:  # unreadable or not an image: say so visibly
            resp = HttpResponse(missing_svg("unreadable image", str(exc)), content_type="image/svg+xml")
            resp["Cache-Control"] = "no-store"
            return resp
        resp = FileResponse(open(cached, "rb"), content_type="image/jpeg")
    # Private: images are only served to signed-in users with a role.
    resp["Cache-Control"] = "private, max-age=86400"
    resp["ETag"] = etag
    return resp


# --- Operations (maintainers): one campaign's page, status, qualifications, raw answers -----------
STATUS_ACTIONS = {"pause": "paused", "close": "done", "reopen": "active"}


@role_required(Role.MAINTAINER)
@require_GET
def campaign_detail(request, campaign_id: int):
    campaign = get_object_or_404(Campaign.objects.select_related("dataset"), pk=campaign_id)
    ctx = {
        "campaign": campaign,
        "progress": selectors.campaign_progress(campaign=campaign),
        "qualifications": selectors.campaign_qualifications(campaign=campaign),
        # The stored counter, not a count of the answers' versions (a join over every answer of
        # the campaign: 50 ms per view at 60,000 images half done); the download's X-Total-Rows
        # has the exact number of rows.
    }
    return render(request, "annotator/campaign_detail.html", ctx)


@role_required(Role.MAINTAINER)
@require_POST
def campaign_status(request, campaign_id: int):
    """Pause (no new leases; held ones may still be submitted), close, or reopen a campaign."""
    status = STATUS_ACTIONS.get(request.POST.get("action", ""))
    if status is None:
        return HttpResponse("Unknown action: choose pause, close or reopen.", status=400, content_type="text/plain")
    try:
        campaign = services.campaign_set_status(campaign_id=campaign_id, status=status)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message)
        raise
    messages.success(request, f"Campaign {campaign.name!r} is {campaign.status} now.")
    return redirect("annotator:campaign", campaign_id=campaign.pk)


@role_required(Role.MAINTAINER)
@require_POST
def qualification_reset(request, campaign_id: int, user_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if not campaign.qualifications.filter(annotator_id=user_id).exists():
        raise Http404("This annotator has no qualification in this campaign.")
    services.qualification_reset(campaign_id=campaign.pk, annotator_id=user_id)
    messages.success(request, "Qualification reset: the annotator takes it again on their next image.")
    return redirect("annotator:campaign", campaign_id=campaign.pk)


@role_required(Role.MAINTAINER)
@require_GET
def campaign_answers_export(request, campaign_id: int, fmt: str):
    """Every version of every answer of the campaign, annotators pseudonymised, as CSV or JSONL.

    Streamed row by row (a 60,000-image campaign never sits in memory); the browser shows the
    download's progress against X-Total-Rows, the number of rows the file will hold.
    """
    import csv
    import io
    import json

    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if fmt not in ("csv", "jsonl"):
        raise Http404("Formats: csv, jsonl.")
    rows = selectors.campaign_raw_answers(campaign=campaign)
    fields = selectors.RAW_ANSWER_FIELDS

    def as_csv():
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        for row in rows:
            w.writerow({**row, "factors": " ".join(row["factors"])})
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    def as_jsonl():
        for row in rows:
            yield json.dumps(row, ensure_ascii=False) + "\n"

    resp = StreamingHttpResponse(
        as_csv() if fmt == "csv" else as_jsonl(),
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8",
    )
    resp["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-answers.{fmt}"'
    resp["X-Total-Rows"] = str(selectors.campaign_answer_count(campaign=campaign))
    return resp
