from __future__ import annotations

from django import forms

from evaluation.models import Correctness, WhichFactor


class UploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    predictions = forms.FileField(
        help_text="CSV file_name,predicted_class,predicted_probability; or .npz with file_names and logits/probabilities."
    )
    dataset = forms.CharField(initial="imagenet-x", max_length=64)
    labels = forms.ChoiceField(
        choices=[("release", "published release"), ("toolkit", "the imagenet_x package's annotations")],
        initial="release",
    )
    release = forms.CharField(required=False, max_length=64, help_text="Version; blank = the latest published release.")
    which_factor = forms.ChoiceField(choices=WhichFactor.choices, initial="top")
    correctness = forms.ChoiceField(choices=Correctness.choices, initial="class")
    split = forms.ChoiceField(choices=[("val", "val"), ("train", "train")], initial="val")
    keep_prototypes = forms.BooleanField(required=False)
    toolkit_compatible = forms.BooleanField(required=False)
    allow_low_coverage = forms.BooleanField(required=False)
