"""Review pages: thin views that parse the request, call one service or selector, and render."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog.factors import FACTORS, FACTORS_BY_KEY
from catalog.models import Annotation, AnnotationSource, Image
from infra.errors import DomainError
from infra.roles import Role, role_required
from prototypes.selectors import prototypes_for_class
from review import charts, selectors, services
from review.forms import AdjudicationForm, AuditSettingsForm, CorrectionForm, DecisionForm, QualityFilterForm
from review.models import AuditSettings
from review.quality_csv import quality_csv_write

REVIEW_ROLES = (Role.REVIEWER, Role.MAINTAINER)


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in form.errors.items())


# --- queue ----------------------------------------------------------------------------------


@role_required(*REVIEW_ROLES)
def queue(request: HttpRequest) -> HttpResponse:
    items = selectors.audit_queue(reviewer=request.user, limit=100)
    return render(
        request,
        "review/queue.html",
        {
            "items": items,
            "counts": selectors.review_counts(),
            "settings": AuditSettings.current(),
        },
    )


@role_required(*REVIEW_ROLES)
@require_POST
def auto_accept(request: HttpRequest) -> HttpResponse:
    n = services.adjudication_auto_accept()
    messages.success(request, f"{n} fully agreeing image(s) accepted automatically.")
    return redirect("review:queue")


# --- one annotation ---------------------------------------------------------------------------


def _side_by_side(image: Image) -> dict:
    run, prototypes = prototypes_for_class(image.image_class, exclude_image_id=image.pk)
    answers = selectors.image_answers(image)
    rows = [
        {"factor": f, "cells": [getattr(a, f.key) for a in answers], "n_yes": sum(getattr(a, f.key) for a in answers)}
        for f in FACTORS
    ]
    return {
        "image": image,
        "prototype_run": run,
        "prototypes": prototypes,
        "answers": answers,
        "factor_rows": rows,
        "answer_flags": (answer_flags := [selectors.current_flags(a) for a in answers]),
        "any_flags": any(answer_flags),
        "consensus": selectors.consensus_of(image),
        "adjudication": selectors.adjudication_of(image),
    }


def _audit_context(request, annotation: Annotation, *, form=None) -> dict:
    ctx = _side_by_side(annotation.image)
    ctx.update(
        {
            "annotation": annotation,
            "factors": FACTORS,
            "target_flags": selectors.current_flags(annotation),
            "own": annotation.annotator_id == request.user.pk,
            "correct_form": form,
            "selected": set(form.data.getlist("factors")) if form else set(annotation.selected_factors),
            "main_selected": form.data.get("main_factor", "") if form else annotation.main_factor,
            "reviewable": annotation.status == "submitted" and annotation.annotator_id != request.user.pk,
            "decisions": annotation.review_decisions.select_related("reviewer").order_by("id"),
        }
    )
    return ctx


def _get_annotation(annotation_id: int) -> Annotation:
    return get_object_or_404(
        Annotation.objects.select_related("image", "image__image_class", "image__dataset", "annotator"),
        pk=annotation_id,
        source=AnnotationSource.USER,
    )


@role_required(*REVIEW_ROLES)
def audit(request: HttpRequest, annotation_id: int) -> HttpResponse:
    return render(request, "review/audit.html", _audit_context(request, _get_annotation(annotation_id)))


@role_required(*REVIEW_ROLES)
@require_POST
def decide(request: HttpRequest, annotation_id: int, action: str) -> HttpResponse:
    if action not in {"accept", "reject", "correct"}:
        raise Http404("unknown review action")
    annotation = _get_annotation(annotation_id)
    form = (CorrectionForm if action == "correct" else DecisionForm)(request.POST)
    try:
        if not form.is_valid():
            raise DomainError(_form_errors(form))
        d = form.cleaned_data
        common = {"annotation_id": annotation.pk, "reviewer": request.user, "expected_version": d["expected_version"]}
        if action == "accept":
            services.review_accept(**common, comment=d["comment"])
            messages.success(request, "Accepted.")
        elif action == "reject":
            services.review_reject(**common, comment=d["comment"])
            messages.success(request, "Rejected: the annotation went back to its annotator with your comment.")
        else:
            services.review_correct(
                **common,
                factors=d["factors"],
                nothing_differs=d["nothing_differs"],
                justification=d["justification"],
                one_word=d["one_word"],
                comment=d["comment"],
                main_factor=d["main_factor"],
            )
            messages.success(request, "Corrected: your edit is the new version; the original is kept.")
    except DomainError as e:
        annotation.refresh_from_db()
        ctx = _audit_context(request, annotation, form=form if action == "correct" else None)
        ctx.update({"error": e.message, "error_field": e.field, "error_action": action})
        return render(request, "review/audit.html", ctx, status=e.status)
    return redirect(reverse("review:audit", args=[annotation.pk]))


# --- adjudication -------------------------------------------------------------------------------


def _adjudication_context(request, image: Image, form=None) -> dict:
    ctx = _side_by_side(image)
    cfg = AuditSettings.current()
    live = [a for a in ctx["answers"] if a.status != "superseded"]
    proposed, undecided = services.propose_consensus(live, cfg.consensus_threshold)
    if ctx["adjudication"] is not None:  # settled: show what was undecided when it was settled
        proposed, undecided = ctx["adjudication"].proposed, ctx["adjudication"].undecided
    ctx.update(
        {
            "live": live,
            "proposed": set(proposed),
            "undecided": set(undecided),
            "threshold": cfg.consensus_threshold,
            "state": services.state_token(live),
            "factors": FACTORS,
            "selected": set(form.data.getlist("factors")) if form else set(proposed),
            "form_data": form.data if form else None,
            "own": any(a.annotator_id == request.user.pk for a in ctx["answers"]),
            "undecided_words": [FACTORS_BY_KEY[k].wording for k in undecided],
        }
    )
    return ctx


@role_required(*REVIEW_ROLES)
def adjudicate(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("image_class", "dataset"), pk=image_id)
    if request.method == "POST":
        form = AdjudicationForm(request.POST)
        try:
            if not form.is_valid():
                raise DomainError(_form_errors(form))
            d = form.cleaned_data
            services.adjudication_settle(
                image_id=image.pk,
                reviewer=request.user,
                factors=d["factors"],
                nothing_differs=d["nothing_differs"],
                justification=d["justification"],
                one_word=d["one_word"],
                expected_state=d["expected_state"],
            )
        except DomainError as e:
            ctx = _adjudication_context(request, image, form)
            ctx.update({"error": e.message, "error_field": e.field})
            return render(request, "review/adjudicate.html", ctx, status=e.status)
        messages.success(request, "Adjudicated: the settled answer is now the image's final annotation.")
        return redirect(reverse("review:adjudicate", args=[image.pk]))
    return render(request, "review/adjudicate.html", _adjudication_context(request, image))


@role_required(*REVIEW_ROLES)
def image_timeline(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("image_class"), pk=image_id)
    return render(request, "review/timeline.html", {"image": image, "events": selectors.timeline(image)})


# --- quality dashboard -----------------------------------------------------------------------------


@role_required(*REVIEW_ROLES)
def quality(request: HttpRequest) -> HttpResponse:
    form = QualityFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages.error(request, "Filters ignored: " + _form_errors(form))
    stored = services.quality_report_current(form.to_filter())
    report = stored.report
    return render(
        request,
        "review/quality.html",
        {
            "form": form,
            "report": report,
            "stored": stored,
            "query": request.GET.urlencode(),
            "bars": charts.factor_bars(report["factors"]),
            "scatter": charts.agreement_speed_scatter(report["annotators"]),
            "meta_table": charts.meta_table(report["by_meta_label"]),
            "drift_rows": charts.drift_rows(report["annotators"]),
        },
    )


@role_required(*REVIEW_ROLES)
def quality_csv(request: HttpRequest) -> HttpResponse:
    form = QualityFilterForm(request.GET or None)
    report = services.quality_report_current(form.to_filter()).report
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="quality-{dt.date.today():%Y%m%d}.csv"'
    quality_csv_write(response, report)
    return response


# --- annotators: what came back to them --------------------------------------------------------------


@role_required(Role.ANNOTATOR)
def returned(request: HttpRequest) -> HttpResponse:
    """An annotator's rejected annotations with the reviewer's comment (their own only)."""
    return render(request, "review/returned.html", {"annotations": selectors.returned_annotations(user=request.user)})


# --- audit settings (maintainers) -----------------------------------------------------------------


@role_required(Role.MAINTAINER)
def audit_settings(request: HttpRequest) -> HttpResponse:
    cfg = AuditSettings.current()
    if request.method == "POST":
        form = AuditSettingsForm(request.POST, instance=AuditSettings.objects.get(pk=cfg.pk))
        if form.is_valid():
            try:
                services.audit_settings_update(user=request.user, **form.cleaned_data)
            except DomainError as e:
                form.add_error(e.field if e.field in form.fields else None, e.message)
            else:
                messages.success(request, "Audit settings saved.")
                return redirect("review:settings")
        return render(request, "review/settings.html", {"form": form}, status=400)
    return render(request, "review/settings.html", {"form": AuditSettingsForm(instance=cfg)})
