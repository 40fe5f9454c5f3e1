from __future__ import annotations

from django import forms

from catalog.models import Dataset
from curation.models import CurationRun
from exports.licenses import DEFAULT_LICENSE, NOTES_MAX, SPDX_LICENSES


class ReleaseForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("slug"), to_field_name="slug")
    version = forms.CharField(max_length=64, help_text="Semantic version, e.g. 1.0.0")
    curation_run = forms.ModelChoiceField(
        queryset=CurationRun.objects.select_related("dataset").order_by("-created_at"),
        help_text="Only a done run of the same dataset can be released.",
    )
    license = forms.ChoiceField(
        choices=[(x, x) for x in SPDX_LICENSES], initial=DEFAULT_LICENSE, help_text="SPDX identifier"
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=NOTES_MAX)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["curation_run"].label_from_instance = lambda run: (
            f"#{run.pk} · {run.dataset.slug} · {run.status} · {run.created_at:%Y-%m-%d %H:%M}"
        )
