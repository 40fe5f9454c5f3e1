"""Read-only API: prototype runs and their prototypes, for any signed-in user (the form's JS reads them)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated

from catalog.models import Dataset
from infra.errors import DomainError
from prototypes import selectors
from prototypes.models import PrototypeRun
from prototypes.serializers import PrototypeRunSerializer, PrototypeSerializer


class RunList(generics.ListAPIView):
    """Runs, newest first; ?dataset=SLUG filters."""

    serializer_class = PrototypeRunSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    def get_queryset(self):
        slug = self.request.query_params.get("dataset")
        if slug:
            return selectors.prototype_runs(dataset_id=get_object_or_404(Dataset, slug=slug).id)
        return selectors.prototype_runs()


class RunDetail(generics.RetrieveAPIView):
    serializer_class = PrototypeRunSerializer
    permission_classes = [IsAuthenticated]
    queryset = PrototypeRun.objects.select_related("dataset")


class RunPrototypes(generics.ListAPIView):
    """A run's prototypes, by class index then rank; ?class_index=N filters."""

    serializer_class = PrototypeSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    def get_queryset(self):
        run = get_object_or_404(PrototypeRun, pk=self.kwargs["run_id"])
        qs = selectors.run_prototypes(run_id=run.pk)
        idx = self.request.query_params.get("class_index")
        if idx is not None:
            if not idx.isdigit():
                raise DomainError("class_index must be a non-negative integer.", field="class_index")
            qs = qs.filter(image_class__index=int(idx))
        return qs
