"""REST API of evaluations: the same services and selectors as the pages."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import downloads, selectors, services
from evaluation.models import Correctness, Evaluation, WhichFactor, ZooModel
from infra.api import MAX_ID
from infra.errors import DomainError
from infra.roles import Role, role_permission

Researcher = role_permission(Role.RESEARCHER)


class EvaluationSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    release = serializers.SerializerMethodField()
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Evaluation
        fields = ["id", "name", "dataset", "label_source", "release", "curation_run", "split", "which_factor",
                  "correctness", "filter_prototypes", "toolkit_compatible", "k_worst", "input_kind", "input_name",
                  "coverage", "status", "error", "shared", "owner", "created_at", "finished_at"]  # fmt: skip

    def get_release(self, obj: Evaluation) -> str | None:
        return obj.release.version if obj.release_id else None


class EvaluationDetailSerializer(EvaluationSerializer):
    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "metrics"]


class UploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    predictions = serializers.FileField()
    dataset = serializers.CharField(default="imagenet-x")
    release = serializers.CharField(required=False, allow_blank=True, default="")
    label_source = serializers.ChoiceField(choices=["release", "toolkit"], default="release")
    which_factor = serializers.ChoiceField(choices=WhichFactor.choices, default="top")
    correctness = serializers.ChoiceField(choices=Correctness.choices, default="class")
    split = serializers.ChoiceField(choices=["val", "train"], default="val")
    filter_prototypes = serializers.BooleanField(default=True)
    toolkit_compatible = serializers.BooleanField(default=False)
    allow_low_coverage = serializers.BooleanField(default=False)
    k_worst = serializers.IntegerField(default=100, min_value=1, max_value=1000)


class ZooSerializer(serializers.ModelSerializer):
    class Meta:
        model = ZooModel
        fields = [
            "group",
            "name",
            "which_factor",
            "correctness",
            "accuracies",
            "average",
            "worst_factor",
            "worst_100_classes",
        ]


def _valid(serializer: serializers.Serializer) -> dict:
    if not serializer.is_valid():
        field, errs = next(iter(serializer.errors.items()))
        raise DomainError(f"{field}: {' '.join(str(e) for e in errs)}", field=field, details=serializer.errors)
    return serializer.validated_data


class EvaluationList(APIView):
    permission_classes = [Researcher]
    parser_classes = [MultiPartParser]  # a file upload: the one multipart endpoint of the API

    @extend_schema(responses=EvaluationSerializer(many=True))
    def get(self, request):
        qs = selectors.evaluations_for(request.user)[:500]
        return Response(EvaluationSerializer(qs, many=True).data)

    @extend_schema(
        request=UploadSerializer,
        responses={201: EvaluationSerializer, 413: OpenApiTypes.OBJECT, 415: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        d = _valid(UploadSerializer(data=request.data))
        up = d["predictions"]
        ev = services.evaluation_create(
            owner=request.user, name=d["name"], dataset_slug=d["dataset"], data=up.read(), filename=up.name,
            label_source=d["label_source"], release_version=d["release"], which_factor=d["which_factor"],
            correctness=d["correctness"], split=d["split"], filter_prototypes=d["filter_prototypes"],
            toolkit_compatible=d["toolkit_compatible"], allow_low_coverage=d["allow_low_coverage"], k_worst=d["k_worst"],
        )  # fmt: skip
        ev.refresh_from_db()
        return Response(EvaluationSerializer(ev).data, status=201)


class EvaluationDetail(APIView):
    permission_classes = [Researcher]

    @extend_schema(responses=EvaluationDetailSerializer)
    def get(self, request, evaluation_id: int):
        return Response(EvaluationDetailSerializer(selectors.evaluation_for(request.user, evaluation_id)).data)


class EvaluationCsv(APIView):
    permission_classes = [Researcher]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, evaluation_id: int):
        ev = selectors.evaluation_for(request.user, evaluation_id)
        if ev.status != "done":
            raise DomainError("The evaluation is not computed yet.", code="not_ready")
        return HttpResponse(downloads.accuracies_csv([(ev.name, ev.primary, ev.k_worst)]), content_type="text/csv")


class EvaluationImages(APIView):
    permission_classes = [Researcher]

    @extend_schema(
        parameters=[OpenApiParameter(p, str, required=False) for p in ("factor", "meta_label", "wrong", "page", "q")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, evaluation_id: int):
        ev = selectors.evaluation_for(request.user, evaluation_id)
        try:
            page = int(request.query_params.get("page") or 1)
        except ValueError:
            raise DomainError("page is a whole number.", field="page")
        return Response(selectors.drilldown(
            ev, factor=request.query_params.get("factor", ""), meta_label=request.query_params.get("meta_label", ""),
            wrong_only=request.query_params.get("wrong") in ("1", "true"), page=page, q=request.query_params.get("q", "")[:100],
        ))  # fmt: skip


class EvaluationShare(APIView):
    permission_classes = [Researcher]

    @extend_schema(request=None, responses=EvaluationSerializer)
    def post(self, request, evaluation_id: int):
        shared = str(request.data.get("shared", "true")).lower() not in ("0", "false")
        return Response(
            EvaluationSerializer(
                services.evaluation_share(user=request.user, evaluation_id=evaluation_id, shared=shared)
            ).data
        )


class Compare(APIView):
    permission_classes = [Researcher]

    @extend_schema(
        parameters=[
            OpenApiParameter("a", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=True),
            OpenApiParameter("b", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=True),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        try:
            a, b = int(request.query_params["a"]), int(request.query_params["b"])
            if not (0 < a <= MAX_ID and 0 < b <= MAX_ID):
                raise ValueError
        except (KeyError, ValueError):
            raise DomainError("Give two evaluation ids, a and b.", field="a")
        return Response(
            selectors.comparison(selectors.evaluation_for(request.user, a), selectors.evaluation_for(request.user, b))
        )


class ZooQuery(serializers.Serializer):
    group = serializers.RegexField(r"^[a-z0-9_]{1,64}$", required=False)
    which_factor = serializers.ChoiceField(choices=WhichFactor.choices, required=False)
    correctness = serializers.ChoiceField(choices=Correctness.choices, required=False)


class ZooPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ZooSerializer(many=True)


class Zoo(APIView):
    """The paper's model zoo (the toolkit's published per-factor tables), filtered and paginated."""

    permission_classes = [Researcher]

    @extend_schema(parameters=[ZooQuery], responses=ZooPage)
    def get(self, request):
        from rest_framework.pagination import LimitOffsetPagination

        blank = [k for k in ZooQuery().fields if k in request.query_params and not request.query_params[k]]
        if blank:  # DRF skips a blank optional query value; here it is refused, as the schema says
            raise DomainError(f"{blank[0]} must not be blank.", field=blank[0])
        q = _valid(ZooQuery(data=request.query_params))
        qs = ZooModel.objects.filter(**q).order_by("group", "name", "which_factor", "correctness")
        pager = LimitOffsetPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response(ZooSerializer(page, many=True).data)
