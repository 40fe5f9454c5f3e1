"""REST endpoints of the review app: the same queue, decisions and numbers as the pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.answers import JUSTIFICATION_MAX, ONE_WORD_MAX, ONE_WORD_OPTIONAL_PATTERN, ONE_WORD_PATTERN_MESSAGE
from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, Image
from infra.api import StrictCharField, answer_schema_extension
from infra.errors import DomainError
from infra.roles import Role, role_permission
from review import selectors, services
from review.forms import QualityFilterForm
from review.models import AuditSettings

ReviewerPermission = role_permission(Role.REVIEWER, Role.MAINTAINER)


class DecisionIn(serializers.Serializer):
    expected_version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    comment = StrictCharField(required=False, allow_blank=True, max_length=services.MAX_COMMENT, default="")


class AnswerIn(serializers.Serializer):
    """A reviewer's answer (correction or adjudication): the form's fields and limits."""

    factors = serializers.ListField(
        child=serializers.ChoiceField(choices=list(FACTOR_KEYS)), max_length=len(FACTOR_KEYS), allow_empty=True
    )
    nothing_differs = serializers.BooleanField(default=False)
    justification = StrictCharField(required_text=True, max_length=JUSTIFICATION_MAX)
    one_word = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=ONE_WORD_MAX,
        default="",
        pattern=ONE_WORD_OPTIONAL_PATTERN,
        pattern_message=ONE_WORD_PATTERN_MESSAGE,
    )


class RejectIn(DecisionIn):
    # The annotator reads why: a rejection without a comment is refused.
    comment = StrictCharField(required_text=True, max_length=services.MAX_COMMENT)


class CorrectionIn(DecisionIn, AnswerIn):
    # Absent: keep the annotator's main factor; "" clears it (allowed only where none is needed).
    main_factor = serializers.ChoiceField(
        choices=list(FACTOR_KEYS), required=False, allow_blank=True, allow_null=True, default=None
    )


class AdjudicationIn(AnswerIn):
    expected_state = StrictCharField(required_text=True, max_length=2000)


CorrectionSchema = answer_schema_extension("review.api.CorrectionIn")
AdjudicationSchema = answer_schema_extension("review.api.AdjudicationIn")


def _answer(a: Annotation) -> dict:
    return {
        "id": a.pk,
        "annotator": a.annotator.get_username() if a.annotator_id else None,
        "source": a.source,
        "status": a.status,
        "version": a.version,
        "factors": a.selected_factors,
        "nothing_differs": a.nothing_differs,
        "justification": a.justification,
        "one_word": a.one_word,
        "time_on_task_ms": a.time_on_task_ms,
    }


def _valid(serializer_cls, data) -> dict:
    s = serializer_cls(data=data)
    if not s.is_valid():
        field = next(iter(s.errors), None)
        raise DomainError(
            "Invalid input: " + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in s.errors.items()),
            field=field,
            details=s.errors,
        )
    return s.validated_data


class QueueApi(APIView):
    permission_classes = [ReviewerPermission]

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="The reviewer's audit queue (flagged first, then disagreements, then samples)",
    )
    def get(self, request):
        items = selectors.audit_queue(reviewer=request.user, limit=100)
        return Response(
            {
                "results": [
                    {
                        "kind": i.kind,
                        "image_id": i.image.pk,
                        "file_name": i.image.file_name,
                        "annotation_id": i.annotation.pk if i.annotation else None,
                        "annotator": i.annotation.annotator.get_username() if i.annotation else None,
                        "version": i.annotation.version if i.annotation else None,
                        "reasons": i.reasons,
                    }
                    for i in items
                ]
            }
        )


class AnnotationApi(APIView):
    permission_classes = [ReviewerPermission]

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="One annotation with every answer on its image and its consistency flags"
    )
    def get(self, request, annotation_id: int):
        ann = get_object_or_404(Annotation, pk=annotation_id, source=AnnotationSource.USER)
        return Response(
            {
                "annotation": _answer(ann),
                "flags": [
                    {"kind": f.kind, "factor": f.factor, "reason": f.reason} for f in selectors.current_flags(ann)
                ],
                "answers": [_answer(a) for a in selectors.image_answers(ann.image)],
            }
        )


class DecisionApi(APIView):
    """accept / reject / correct: one view per action so that each documents its own body."""

    permission_classes = [ReviewerPermission]
    action = "accept"

    def post(self, request, annotation_id: int):
        common = {"annotation_id": annotation_id, "reviewer": request.user}
        if self.action == "correct":
            d = _valid(CorrectionIn, request.data)
            ann = services.review_correct(
                **common,
                expected_version=d["expected_version"],
                factors=d["factors"],
                nothing_differs=d["nothing_differs"],
                justification=d["justification"],
                one_word=d["one_word"],
                comment=d["comment"],
                main_factor=d.get("main_factor"),
            )
        elif self.action == "reject":
            d = _valid(RejectIn, request.data)
            ann = services.review_reject(**common, expected_version=d["expected_version"], comment=d["comment"])
        else:
            d = _valid(DecisionIn, request.data)
            ann = services.review_accept(**common, expected_version=d["expected_version"], comment=d["comment"])
        return Response(_answer(ann))


class AcceptApi(DecisionApi):
    action = "accept"

    @extend_schema(request=DecisionIn, responses=OpenApiTypes.OBJECT, summary="Accept an annotation")
    def post(self, request, annotation_id: int):
        return super().post(request, annotation_id)


class RejectApi(DecisionApi):
    action = "reject"

    @extend_schema(request=RejectIn, responses=OpenApiTypes.OBJECT, summary="Reject an annotation (comment required)")
    def post(self, request, annotation_id: int):
        return super().post(request, annotation_id)


class CorrectApi(DecisionApi):
    action = "correct"

    @extend_schema(request=CorrectionIn, responses=OpenApiTypes.OBJECT, summary="Correct an annotation's answer")
    def post(self, request, annotation_id: int):
        return super().post(request, annotation_id)


class AdjudicationApi(APIView):
    permission_classes = [ReviewerPermission]

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="The answers of a multi-annotated image and the consensus proposal"
    )
    def get(self, request, image_id: int):
        image = get_object_or_404(Image, pk=image_id)
        live = [a for a in selectors.image_answers(image) if a.status != "superseded"]
        cfg = AuditSettings.current()
        proposed, undecided = services.propose_consensus(live, cfg.consensus_threshold)
        consensus = selectors.consensus_of(image)
        return Response(
            {
                "image_id": image.pk,
                "answers": [_answer(a) for a in live],
                "threshold": cfg.consensus_threshold,
                "proposed": proposed,
                "undecided": undecided,
                "expected_state": services.state_token(live),
                "consensus": _answer(consensus) if consensus else None,
            }
        )

    @extend_schema(
        responses={201: OpenApiTypes.OBJECT},
        request=AdjudicationIn,
        summary="Settle the image: the answer becomes its consensus annotation",
    )
    def post(self, request, image_id: int):
        d = _valid(AdjudicationIn, request.data)
        consensus = services.adjudication_settle(
            image_id=image_id,
            reviewer=request.user,
            factors=d["factors"],
            nothing_differs=d["nothing_differs"],
            justification=d["justification"],
            one_word=d["one_word"],
            expected_state=d["expected_state"],
        )
        return Response(_answer(consensus), status=201)


class TimelineApi(APIView):
    permission_classes = [ReviewerPermission]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The image's append-only audit trail")
    def get(self, request, image_id: int):
        image = get_object_or_404(Image, pk=image_id)
        return Response(
            {
                "image_id": image.pk,
                "events": [
                    {
                        "id": e.pk,
                        "action": e.action,
                        "at": e.created_at.isoformat(),
                        "actor": e.actor.get_username() if e.actor_id else None,
                        "annotation_id": e.annotation_id,
                        "before": e.before,
                        "after": e.after,
                        "comment": e.comment,
                    }
                    for e in selectors.timeline(image)
                ],
            }
        )


class QualityApi(APIView):
    permission_classes = [ReviewerPermission]

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="Agreement per factor, per meta-label and per annotator (the dashboard's numbers)",
        description=(
            "The stored report of this filter (computed by a worker), with `computed_at`, `compute_seconds` and "
            "`stale`: true when answers, decisions or gold answers changed since; a newer report is then being "
            "computed (ask again in a moment)."
        ),
    )
    def get(self, request):
        form = QualityFilterForm(request.query_params or None)
        if form.is_bound and not form.is_valid():
            raise DomainError("Invalid filter.", details=form.errors.get_json_data())
        return Response(services.quality_report_current(form.to_filter()).as_json())


class ReturnedApi(APIView):
    permission_classes = [role_permission(Role.ANNOTATOR)]

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="The caller's rejected annotations with the reviewer's comment"
    )
    def get(self, request):
        return Response(
            {
                "results": [
                    {**_answer(a), "image_id": a.image_id, "comment": a.reject_comment, "rejected_by": a.rejected_by}
                    for a in selectors.returned_annotations(user=request.user)
                ]
            }
        )
