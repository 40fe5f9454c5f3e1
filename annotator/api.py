"""REST API of the annotator: next, submit, skip, my annotations (session or token auth).

Thin views: the serializer checks types, the service checks the domain, errors take the one
JSON shape of infra.errors. Gold and overlap assignments look exactly like any other.
"""

from __future__ import annotations

from functools import lru_cache

from django.urls import get_script_prefix, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator import selectors, services
from annotator.models import AssignmentKind
from catalog.answers import (
    JUSTIFICATION_MAX,
    ONE_WORD_MAX,
    ONE_WORD_PATTERN,
    ONE_WORD_PATTERN_MESSAGE,
    TIME_ON_TASK_MAX_MS,
    Answer,
    answer_clean,
)
from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation
from infra.api import StrictCharField, answer_schema_extension
from infra.errors import NotFound
from infra.roles import Role, role_permission

IsAnnotator = role_permission(Role.ANNOTATOR)


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    dataset = serializers.CharField(source="dataset.slug")
    remaining = serializers.IntegerField()
    planned = serializers.IntegerField()


class ImageRefSerializer(serializers.Serializer):
    # No file name: gold and qualification images were recognisable from theirs
    # (espresso_brighter.jpg); the annotator needs only the pixels.
    id = serializers.IntegerField()
    thumb_url = serializers.CharField()
    full_url = serializers.CharField()


class AssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField()
    class_name = serializers.CharField()
    image = ImageRefSerializer()
    prototypes = ImageRefSerializer(many=True)
    prototype_run_id = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    done = serializers.IntegerField()
    remaining = serializers.IntegerField()


class AnswerSerializer(serializers.Serializer):
    factors = serializers.ListField(
        child=serializers.ChoiceField(choices=list(FACTOR_KEYS)), max_length=len(FACTOR_KEYS), allow_empty=True
    )
    nothing_differs = serializers.BooleanField(default=False)
    justification = StrictCharField(required_text=True, max_length=JUSTIFICATION_MAX)
    # One to ONE_WORD_MAX_WORDS words, as answer_clean counts them.
    one_word = StrictCharField(
        max_length=ONE_WORD_MAX, pattern=ONE_WORD_PATTERN, pattern_message=ONE_WORD_PATTERN_MESSAGE
    )
    time_on_task_ms = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=TIME_ON_TASK_MAX_MS
    )
    main_factor = serializers.ChoiceField(choices=list(FACTOR_KEYS), required=False, allow_blank=True, default="")

    def to_answer(self) -> Answer:
        # Whether the campaign requires a main factor is the submit service's check (it knows
        # the assignment); here the answer's own rule: the main factor must be ticked.
        d = self.validated_data
        return answer_clean(
            factors=list(d["factors"]),
            nothing_differs=d["nothing_differs"],
            justification=d["justification"],
            one_word=d["one_word"],
            time_on_task_ms=d.get("time_on_task_ms"),
            main_factor=d.get("main_factor") or "",
        )


AnswerSchema = answer_schema_extension("annotator.api.AnswerSerializer")


class SubmitResultSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    annotation = serializers.IntegerField(allow_null=True)
    feedback = serializers.DictField(allow_null=True)
    replayed = serializers.BooleanField()


class SkipResultSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    status = serializers.CharField()


class SkipSerializer(serializers.Serializer):
    reason = StrictCharField(required_text=True, max_length=services.SKIP_REASON_MAX)


class AnnotationSerializer(serializers.ModelSerializer):
    factors = serializers.ListField(source="selected_factors", child=serializers.CharField())
    class_name = serializers.CharField(source="image.image_class.name")

    class Meta:
        model = Annotation
        fields = [
            "id",
            "image",
            "class_name",
            "factors",
            "nothing_differs",
            "justification",
            "one_word",
            "main_factor",
            "status",
            "version",
            "time_on_task_ms",
            "created_at",
            "updated_at",
        ]


@lru_cache(maxsize=16)
def _image_url_parts(script_prefix: str, variant: str) -> tuple[str, str]:
    """The image URL around its id, reversed once per script prefix: `next` shows four images
    with two URLs each, and eight reverse() calls were 6 % of its Python time."""
    marker = "987654321"
    head, tail = reverse("annotator:image", args=[int(marker), variant]).split(marker)
    return head, tail


def _image_ref(image_id: int, lease_id: int | None = None) -> dict:
    """An image's id and URLs; a prototype's carry the lease that shows it (`?a=`), which is
    what the image view checks the annotator's permission by (selectors.image_visible_to).
    (The form's do not: a browser caches them across leases.)"""
    prefix = get_script_prefix()
    thumb, full = _image_url_parts(prefix, "thumb"), _image_url_parts(prefix, "full")
    query = f"?a={lease_id}" if lease_id is not None else ""
    return {
        "id": image_id,
        "thumb_url": f"{thumb[0]}{image_id}{thumb[1]}{query}",
        "full_url": f"{full[0]}{image_id}{full[1]}{query}",
    }


def assignment_payload(assignment, user) -> dict:
    image = assignment.image
    # A lease written in this request kept the prototypes it recorded on the instance (_lease);
    # a held lease (page reload) shows what it recorded when it was claimed (images since
    # deleted left out).
    proto_ids = getattr(assignment, "_prototype_ids", None)
    if proto_ids is None:
        proto_ids = [p.pk for p in selectors.assignment_prototypes(assignment=assignment)]
    progress = selectors.annotator_progress(campaign=assignment.campaign, user=user)
    return {
        "id": assignment.pk,
        "campaign": assignment.campaign_id,
        "class_name": image.image_class.name,
        "image": _image_ref(image.pk),
        "prototypes": [_image_ref(i, assignment.pk) for i in proto_ids],
        "prototype_run_id": assignment.prototype_run_id,
        "started_at": assignment.started_at,
        "expires_at": assignment.expires_at,
        "done": progress["done"],
        "remaining": progress["remaining"],
    }


class CampaignListApi(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(responses=CampaignSerializer(many=True), summary="Active campaigns and what remains")
    def get(self, request):
        rows = []
        for c in selectors.active_campaigns():
            p = selectors.campaign_progress(campaign=c)
            rows.append(
                {"id": c.pk, "name": c.name, "dataset": c.dataset, "remaining": p["remaining"], "planned": p["planned"]}
            )
        return Response(CampaignSerializer(rows, many=True).data)


class NextApi(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(
        request=None,
        responses={200: AssignmentSerializer, 204: OpenApiResponse(description="Nothing left for you")},
        summary="Lease the next image (qualification first, then work)",
    )
    def post(self, request, campaign_id: int):
        assignment = services.assignment_next(campaign_id=campaign_id, user=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The payload has AssignmentSerializer's shape and types already (the schema's; a test
        # compares the two), and the JSON renderer writes datetimes as the serializer would:
        # building a serializer per request only copied its fields.
        return Response(assignment_payload(assignment, request.user))


class SubmitApi(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(
        request=AnswerSerializer,
        responses={201: SubmitResultSerializer, 200: SubmitResultSerializer},
        summary="Submit an answer (a retry of the same answer for the same lease answers 200 with the stored result)",
    )
    def post(self, request, assignment_id: int):
        ser = AnswerSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        result = services.annotation_submit(assignment_id=assignment_id, user=request.user, answer=ser.to_answer())
        feedback = None
        if result.assignment.kind == AssignmentKind.QUALIFICATION and result.gold_response is not None:
            # Qualification answers get the expected answer back; gold mixed into work does not
            # (it must look like any other image).
            qual = result.qualification
            feedback = {
                "expected": result.gold_response.gold_item.factors,
                "score": result.gold_response.f1,
                "qualification": qual.status if qual else None,
                "qualification_score": qual.score if qual else None,
            }
        # A retried request (same lease, same answer) gets the same body with 200: nothing new
        # was created, and the client can tell a replay from a first submission.
        return Response(
            {
                "assignment": result.assignment.pk,
                "annotation": result.annotation.pk if result.annotation else None,
                "feedback": feedback,
                "replayed": result.replayed,
            },
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )


class SkipApi(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(
        request=SkipSerializer,
        responses={200: SkipResultSerializer},
        summary="Give an image back with a reason",
    )
    def post(self, request, assignment_id: int):
        ser = SkipSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services.assignment_skip(assignment_id=assignment_id, user=request.user, reason=ser.validated_data["reason"])
        return Response({"assignment": assignment_id, "status": "skipped"})


class MyAnnotationsApi(ListAPIView):
    permission_classes = [IsAnnotator]
    serializer_class = AnnotationSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.annotations_of(user=self.request.user)


class MyAnnotationApi(APIView):
    """One own annotation: read, or revise (PUT) until reviewed. Others' annotations are 404."""

    permission_classes = [IsAnnotator]

    def _own(self, request, annotation_id: int) -> Annotation:
        annotation = selectors.annotation_of(user=request.user, annotation_id=annotation_id)
        if annotation is None:
            raise NotFound("No such annotation.")
        return annotation

    @extend_schema(responses=AnnotationSerializer)
    def get(self, request, annotation_id: int):
        return Response(AnnotationSerializer(self._own(request, annotation_id)).data)

    @extend_schema(request=AnswerSerializer, responses=AnnotationSerializer, summary="Revise an own annotation")
    def put(self, request, annotation_id: int):
        self._own(request, annotation_id)
        ser = AnswerSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        # The row as this request wrote it: reading it again afterwards could return a
        # concurrent revision's version instead of ours.
        revised = services.annotation_revise(annotation_id=annotation_id, user=request.user, answer=ser.to_answer())
        return Response(AnnotationSerializer(revised).data)
