"""The page form that starts a prototype run (the same services as manage.py compute_prototypes)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django import forms
from django.conf import settings

from catalog.models import Dataset
from prototypes import engine, services

# An upload is stored as bytes and only ever read as a state dict (torch.load weights_only=True)
# or as CSV text: never unpickled.
MAX_CHECKPOINT_BYTES = 2 * 1024**3
MAX_PREDICTIONS_BYTES = 200 * 1024**2


class RunStartForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("slug"), to_field_name="slug")
    source = forms.ChoiceField(
        choices=[("model", "a torchvision model"), ("predictions", "an uploaded predictions file")], initial="model"
    )
    model_name = forms.CharField(initial=engine.DEFAULT_MODEL, required=False, max_length=64)
    weights = forms.CharField(
        initial=engine.DEFAULT_WEIGHTS, required=False, max_length=64, help_text="Named torchvision weights, or none."
    )
    checkpoint = forms.FileField(required=False, help_text="A state dict (.pt/.pth); loaded with weights_only.")
    predictions = forms.FileField(
        required=False, help_text="CSV: file_name, predicted_class, predicted_probability[, true_class_probability]"
    )
    shards = forms.IntegerField(min_value=1, max_value=256, initial=1, help_text="Tasks on the gpu queue.")
    k = forms.IntegerField(min_value=1, max_value=20, initial=engine.DEFAULT_K)
    split = forms.ChoiceField(choices=[("", "every split"), ("val", "val"), ("train", "train")], required=False)
    fill_incorrect = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("source") == "predictions":
            f = data.get("predictions")
            if f is None:
                self.add_error("predictions", "Upload the predictions file.")
            elif f.size > MAX_PREDICTIONS_BYTES:
                self.add_error("predictions", "The predictions file is larger than 200 MB.")
        else:
            if not data.get("model_name"):
                self.add_error("model_name", "Name a torchvision model.")
            f = data.get("checkpoint")
            if f is not None and f.size > MAX_CHECKPOINT_BYTES:
                self.add_error("checkpoint", "The checkpoint is larger than 2 GB.")
        return data

    @staticmethod
    def _store(upload, kind: str) -> str:
        folder = Path(settings.MEDIA_ROOT) / "prototypes" / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".csv" if kind == "predictions" else ".pt"
        path = folder / f"{uuid.uuid4().hex}{suffix}"
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        return str(path)

    def start(self, *, user):
        d = self.cleaned_data
        if d["source"] == "predictions":
            return services.prototype_run_from_predictions(
                dataset=d["dataset"],
                path=self._store(d["predictions"], "predictions"),
                k=d["k"],
                fill_incorrect=d["fill_incorrect"],
                split=d["split"],
                created_by=user,
            )
        checkpoint = self._store(d["checkpoint"], "checkpoint") if d.get("checkpoint") else ""
        return services.prototype_run_create(
            dataset=d["dataset"],
            model_name=d["model_name"],
            weights=d["weights"] or "none",
            checkpoint=checkpoint,
            k=d["k"],
            fill_incorrect=d["fill_incorrect"],
            split=d["split"],
            shards=d["shards"],
            created_by=user,
        )
