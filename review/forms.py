"""Forms of the review pages (parsing only; the services validate the domain rules, with the
limits of catalog.answers, the same as the annotator's form)."""

from __future__ import annotations

from django import forms

from catalog.answers import JUSTIFICATION_MAX, ONE_WORD_MAX
from catalog.factors import FACTORS
from catalog.models import Dataset
from review import selectors
from review.models import AuditSettings
from review.services import MAX_COMMENT


class DecisionForm(forms.Form):
    expected_version = forms.IntegerField(min_value=1)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)


class CorrectionForm(DecisionForm):
    factors = forms.MultipleChoiceField(choices=[(f.key, f.wording) for f in FACTORS], required=False)
    nothing_differs = forms.BooleanField(required=False)
    justification = forms.CharField(max_length=JUSTIFICATION_MAX, required=False)
    one_word = forms.CharField(max_length=ONE_WORD_MAX, required=False)


class AdjudicationForm(forms.Form):
    expected_state = forms.CharField(max_length=2000)
    factors = forms.MultipleChoiceField(choices=[(f.key, f.wording) for f in FACTORS], required=False)
    nothing_differs = forms.BooleanField(required=False)
    justification = forms.CharField(max_length=JUSTIFICATION_MAX, required=False)
    one_word = forms.CharField(max_length=ONE_WORD_MAX, required=False)


class QualityFilterForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("slug"), required=False, to_field_name="slug")
    campaign = forms.IntegerField(required=False, min_value=1)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotator.models import Campaign

        self.fields["campaign"] = forms.TypedChoiceField(
            choices=[("", "all campaigns")] + [(c.pk, c.name) for c in Campaign.objects.order_by("name")],
            required=False,
            coerce=int,
            empty_value=None,
        )

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def to_filter(self) -> selectors.QualityFilter:
        d = self.cleaned_data if self.is_valid() else {}
        ds = d.get("dataset")
        return selectors.QualityFilter(
            dataset_id=ds.pk if ds else None,
            campaign_id=d.get("campaign"),
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
        )


class AuditSettingsForm(forms.ModelForm):
    class Meta:
        model = AuditSettings
        fields = [
            "base_rate",
            "new_annotator_rate",
            "new_annotator_until",
            "low_gold_rate",
            "low_gold_below",
            "consensus_threshold",
            "auto_accept_full_agreement",
            "min_annotations",
            "seed",
        ]
