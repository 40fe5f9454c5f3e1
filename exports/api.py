"""REST API for releases. Thin: the same services and selectors as the pages."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Dataset
from curation.models import CurationRun
from exports import selectors, services
from exports.models import Release, ReleaseFile
from infra.errors import DomainError
from infra.roles import Role, role_permission


class ReleaseFileSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseFile
        fields = ["name", "size", "sha256", "url"]

    def get_url(self, obj: ReleaseFile) -> str:
        return reverse("exports:file", args=[obj.release_id, obj.name])


class ReleaseSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    archive_url = serializers.SerializerMethodField()
    files = ReleaseFileSerializer(many=True, read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "dataset",
            "version",
            "notes",
            "license",
            "curation_run",
            "prototype_run",
            "status",
            "stage",
            "processed",
            "total",
            "error",
            "archive_sha256",
            "archive_size",
            "archive_url",
            "files",
            "created_at",
            "built_at",
            "published_at",
        ]

    def get_archive_url(self, obj: Release) -> str | None:
        return reverse("exports:archive", args=[obj.pk]) if obj.archive_sha256 else None


class ReleaseCreateSerializer(serializers.Serializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", queryset=Dataset.objects.all())
    version = serializers.CharField(max_length=64)
    curation_run = serializers.PrimaryKeyRelatedField(queryset=CurationRun.objects.all())
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    license = serializers.CharField(required=False, max_length=64, default="CC-BY-NC-4.0")


class ReleaseListCreate(APIView):
    """GET: releases the user may see. POST (maintainers): a draft release."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [role_permission(Role.MAINTAINER)()]
        return [IsAuthenticated()]

    @extend_schema(responses=ReleaseSerializer(many=True), parameters=[OpenApiParameter("dataset", str)])
    def get(self, request):
        qs = selectors.releases_for(request.user).prefetch_related("files")
        if slug := request.query_params.get("dataset"):
            qs = qs.filter(dataset__slug=slug)
        return Response(ReleaseSerializer(qs, many=True).data)

    @extend_schema(request=ReleaseCreateSerializer, responses={201: ReleaseSerializer})
    def post(self, request):
        s = ReleaseCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        release = services.release_create(created_by=request.user, **s.validated_data)
        return Response(ReleaseSerializer(release).data, status=201)


class ReleaseDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ReleaseSerializer)
    def get(self, request, pk: int):
        return Response(ReleaseSerializer(selectors.release_for(request.user, pk)).data)


class ReleaseBuild(APIView):
    permission_classes = [role_permission(Role.MAINTAINER)]

    @extend_schema(request=None, responses={202: ReleaseSerializer})
    def post(self, request, pk: int):
        release = services.release_build_start(release_id=pk, user=request.user)
        return Response(ReleaseSerializer(release).data, status=202)


class ReleasePublish(APIView):
    permission_classes = [role_permission(Role.MAINTAINER)]

    @extend_schema(request=None, responses=ReleaseSerializer)
    def post(self, request, pk: int):
        release = services.release_publish(release_id=pk, user=request.user)
        return Response(ReleaseSerializer(release).data)


class ReleaseDiff(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("old", int, required=True), OpenApiParameter("new", int, required=True)],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        try:
            old_id, new_id = int(request.query_params["old"]), int(request.query_params["new"])
        except (KeyError, ValueError):
            raise DomainError("Give two release ids: ?old=ID&new=ID.", code="invalid")
        old = selectors.release_for(request.user, old_id)
        new = selectors.release_for(request.user, new_id)
        return Response(selectors.release_diff(old=old, new=new))


class ReleaseDownload(APIView):
    """The archive (no `name`) or one file, checked against its SHA-256 first (token auth works too)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int, name: str | None = None):
        release = selectors.release_for(request.user, pk)
        fh, filename, sha = selectors.open_verified_release_file(release, name)
        response = FileResponse(fh, as_attachment=True, filename=filename)
        response["X-Checksum-SHA256"] = sha
        return response
