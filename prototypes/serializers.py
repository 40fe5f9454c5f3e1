from __future__ import annotations

from rest_framework import serializers

from prototypes.models import Prototype, PrototypeRun


class PrototypeRunSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = PrototypeRun
        fields = [
            "id",
            "dataset",
            "source",
            "status",
            "is_current",
            "error",
            "model_name",
            "weights",
            "weights_id",
            "weights_sha256",
            "checkpoint",
            "seed",
            "k",
            "fill_incorrect",
            "split",
            "predictions_file",
            "preprocessing",
            "device",
            "dtype",
            "batch_size",
            "library_versions",
            "resolved",
            "images_total",
            "images_done",
            "images_scored",
            "images_skipped",
            "skipped_reasons",
            "conversions",
            "short_classes",
            "wall_s",
            "images_per_s",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PrototypeSerializer(serializers.ModelSerializer):
    class_index = serializers.IntegerField(source="image_class.index", read_only=True)
    class_name = serializers.CharField(source="image_class.name", read_only=True)
    file_name = serializers.CharField(source="image.file_name", read_only=True)

    class Meta:
        model = Prototype
        fields = [
            "id",
            "run",
            "image_class",
            "class_index",
            "class_name",
            "image",
            "file_name",
            "rank",
            "probability",
            "true_class_probability",
            "predicted_class",
            "filled",
        ]
        read_only_fields = fields
