"""REST API of the curation app (maintainers only)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.factors import META_LABELS
from catalog.models import Split
from curation import selector_training, selectors, services, topfactor
from infra.api import id_field
from infra.errors import NotFound
from infra.roles import Role, role_permission


class StartSerializer(serializers.Serializer):
    dataset = serializers.SlugField()
    split = serializers.ChoiceField(choices=["", *Split.values], required=False, default="")
    campaign_id = id_field(required=False, allow_null=True, default=None)
    selector = serializers.ChoiceField(choices=list(services.SELECTORS), required=False, default="paper")
    text_field = serializers.ChoiceField(
        choices=list(topfactor.TEXT_FIELDS), required=False, default=topfactor.PAPER_DEFAULT_TEXT
    )
    factor_text = serializers.ChoiceField(
        choices=list(topfactor.FACTOR_TEXTS), required=False, default=topfactor.PAPER_DEFAULT_FACTOR_TEXT
    )
    selector_model_id = id_field(required=False, allow_null=True, default=None)
    learned_version = serializers.ChoiceField(
        choices=list(selector_training.LEARNED_VERSIONS),
        required=False,
        default=selector_training.DEFAULT_LEARNED_VERSION,
    )
    chunk_size = serializers.IntegerField(
        required=False, default=services.DEFAULT_CHUNK_SIZE, min_value=1, max_value=services.MAX_CHUNK_SIZE
    )


class MaintainerAPIView(APIView):
    permission_classes = [role_permission(Role.MAINTAINER)]


class RunListAPI(MaintainerAPIView):
    @extend_schema(operation_id="curation_runs_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"results": [selectors.run_progress(r) for r in selectors.curation_runs()[:50]]})

    @extend_schema(operation_id="curation_runs_start", request=StartSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        s = StartSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        run = services.curation_start(
            dataset_slug=d["dataset"],
            split=d["split"],
            campaign_id=d["campaign_id"],
            selector=d["selector"],
            text_field=d["text_field"],
            factor_text=d["factor_text"],
            selector_model_id=d["selector_model_id"],
            learned_version=d["learned_version"],
            chunk_size=d["chunk_size"],
            user=request.user,
        )
        return Response(selectors.run_progress(run), status=201)


class RunDetailAPI(MaintainerAPIView):
    @extend_schema(operation_id="curation_run_detail", responses=OpenApiTypes.OBJECT)
    def get(self, request, run_id: int):
        run = selectors.curation_run_get(run_id)
        if run is None:
            raise NotFound(f"Curation run {run_id} does not exist.")
        return Response({**selectors.run_progress(run), "stats": run.stats})


class RunRestartAPI(MaintainerAPIView):
    @extend_schema(operation_id="curation_run_restart", request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request, run_id: int):
        run = services.curation_run_restart(run_id=run_id)
        return Response(selectors.run_progress(run), status=202)


class TrainSerializer(serializers.Serializer):
    dataset = serializers.SlugField()
    version = serializers.ChoiceField(
        choices=list(selector_training.LEARNED_VERSIONS),
        required=False,
        default=selector_training.DEFAULT_LEARNED_VERSION,
    )
    text_field = serializers.ChoiceField(
        choices=list(topfactor.TEXT_FIELDS), required=False, default=topfactor.LEARNED_DEFAULT_TEXT
    )
    factor_text = serializers.ChoiceField(
        choices=list(topfactor.FACTOR_TEXTS), required=False, default=topfactor.LEARNED_DEFAULT_FACTOR_TEXT
    )


class SelectorModelListAPI(MaintainerAPIView):
    @extend_schema(operation_id="curation_selector_models_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(
            {
                "results": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "version": m.version,
                        "sha256": m.sha256,
                        "params": m.params,
                        "metrics": m.metrics,
                        "created_at": m.created_at.isoformat(),
                    }
                    for m in selectors.selector_models()[:50]
                ]
            }
        )

    @extend_schema(
        operation_id="curation_selector_models_train", request=TrainSerializer, responses={201: OpenApiTypes.OBJECT}
    )
    def post(self, request):
        s = TrainSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        if s.validated_data["version"] == topfactor.LEARNED_SELECTOR_VERSION:
            m = services.selector_model_train(
                dataset_slug=s.validated_data["dataset"],
                text_field=s.validated_data["text_field"],
                factor_text=s.validated_data["factor_text"],
                user=request.user,
            )
        else:  # learned-2 reads both texts separately: text_field/factor_text do not apply
            m = selector_training.selector_model_train_learned2(
                dataset_slug=s.validated_data["dataset"], user=request.user
            )
        return Response({"id": m.id, "name": m.name, "version": m.version, "metrics": m.metrics}, status=201)


class MetaLabelSerializer(serializers.Serializer):
    meta_label = serializers.ChoiceField(choices=list(META_LABELS))


class ClassMetaLabelAPI(MaintainerAPIView):
    @extend_schema(
        operation_id="curation_class_meta_label_set", request=MetaLabelSerializer, responses=OpenApiTypes.OBJECT
    )
    def patch(self, request, class_id: int):
        s = MetaLabelSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        if "meta_label" not in s.validated_data:  # PATCH {}: nothing to change, answer the class as it is
            cls = selectors.image_class_get(class_id)
            if cls is None:
                raise NotFound(f"Class {class_id} does not exist.")
            return Response(
                {"id": cls.id, "name": cls.name, "meta_label": cls.meta_label, "source": cls.meta_label_source}
            )
        cls = services.image_class_meta_label_set(
            image_class_id=class_id, meta_label=s.validated_data["meta_label"], user=request.user
        )
        return Response({"id": cls.id, "name": cls.name, "meta_label": cls.meta_label, "source": cls.meta_label_source})
