"""REST API for releases. Thin: the same services and selectors as the pages."""

from __future__ import annotations

from pathlib import PurePosixPath

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
from exports import selectors, services, writers
from exports.licenses import DEFAULT_LICENSE, NOTES_MAX, SPDX_LICENSES
from exports.models import SEMVER_PATTERN, Release, ReleaseFile
from infra.api import MAX_ID, StrictCharField
from infra.errors import DomainError, NotFound
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
    # Looked up after validation: a dataset or run that does not exist is a 404, not bad input.
    dataset = serializers.SlugField(max_length=64)
    # A semantic version, optionally written with a leading "v" (the service drops it).
    version = StrictCharField(max_length=64, pattern=r"^\s*[vV]?" + SEMVER_PATTERN.lstrip("^").rstrip("$") + r"\s*$")
    curation_run = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    notes = StrictCharField(required=False, allow_blank=True, default="", max_length=NOTES_MAX)
    license = serializers.ChoiceField(choices=list(SPDX_LICENSES), required=False, default=DEFAULT_LICENSE)


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
        d = dict(s.validated_data)
        d["dataset"] = Dataset.objects.filter(slug=d["dataset"]).first()
        if d["dataset"] is None:
            raise NotFound(f"No dataset {s.validated_data['dataset']!r}.", field="dataset")
        d["curation_run"] = CurationRun.objects.filter(pk=d["curation_run"]).first()
        if d["curation_run"] is None:
            raise NotFound(f"No curation run {s.validated_data['curation_run']}.", field="curation_run")
        release = services.release_create(created_by=request.user, **d)
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
        parameters=[
            OpenApiParameter("old", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=True),
            OpenApiParameter("new", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=True),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        try:
            old_id, new_id = int(request.query_params["old"]), int(request.query_params["new"])
            if not (0 < old_id <= MAX_ID and 0 < new_id <= MAX_ID):
                raise ValueError
        except (KeyError, ValueError):
            raise DomainError("Give two release ids: ?old=ID&new=ID.", code="invalid")
        old = selectors.release_for(request.user, old_id)
        new = selectors.release_for(request.user, new_id)
        return Response(selectors.release_diff(old=old, new=new))


_FILE_BINARY = ("text/csv", "text/markdown", "application/jsonlines", "text/plain", "application/octet-stream")


def _download(request, pk: int, name: str | None):
    release = selectors.release_for(request.user, pk)
    fh, filename, sha = selectors.open_verified_release_file(release, name)
    if name is None:
        content_type = "application/gzip"
    else:
        content_type = writers.ENCODING.get(PurePosixPath(filename).suffix, "application/octet-stream")
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
    response = FileResponse(fh, as_attachment=True, filename=filename, content_type=content_type)
    response["X-Checksum-SHA256"] = sha
    return response


class ReleaseDownload(APIView):
    """The archive, checked against its SHA-256 first (token auth works too)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY}, summary="The release archive (.tar.gz)")
    def get(self, request, pk: int):
        return _download(request, pk, None)


class ReleaseFileDownload(APIView):
    """One file of a release, checked against its SHA-256 first, sent with its own media type."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiTypes.ANY,
            **{(200, t): OpenApiTypes.BINARY for t in _FILE_BINARY},
        },
        summary="One file of a release (CSV, JSON, JSON Lines, Markdown)",
    )
    def get(self, request, pk: int, name: str):
        return _download(request, pk, name)
