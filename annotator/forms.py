"""The contrast form: 16 factor checkboxes (built from catalog.factors), justification, summary."""

from __future__ import annotations

from django import forms

from annotator.models import CampaignStatus
from annotator.services import SAMPLE_SIZE_MAX, SKIP_REASON_MAX
from catalog.answers import JUSTIFICATION_MAX, ONE_WORD_MAX, Answer, answer_clean
from catalog.factors import FACTORS
from catalog.models import Dataset, Split
from infra.errors import DomainError


class AnswerForm(forms.Form):
    """Validation lives in catalog.answers.answer_clean (shared with the API and review); errors land at their field."""

    nothing_differs = forms.BooleanField(required=False, label="nothing differs")
    justification = forms.CharField(
        required=False,  # the service says "required" with its own message, at the field
        max_length=JUSTIFICATION_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": JUSTIFICATION_MAX, "id": "id_justification"}),
    )
    one_word = forms.CharField(
        required=False,
        max_length=ONE_WORD_MAX,
        label="one-word summary",
        widget=forms.TextInput(attrs={"maxlength": ONE_WORD_MAX, "autocomplete": "off"}),
    )
    time_on_task_ms = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for f in FACTORS:
            self.fields[f.key] = forms.BooleanField(required=False, label=f.wording, help_text=f.definition)
        self.answer: Answer | None = None

    @classmethod
    def from_annotation(cls, annotation) -> AnswerForm:
        initial = {f.key: getattr(annotation, f.key) for f in FACTORS}
        initial.update(
            nothing_differs=annotation.nothing_differs,
            justification=annotation.justification,
            one_word=annotation.one_word,
        )
        return cls(initial=initial)

    def factor_rows(self) -> list[tuple[object, forms.BoundField]]:
        """(Factor, bound field) in the paper's form order, for the template."""
        return [(f, self[f.key]) for f in FACTORS]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.answer = answer_clean(
                factors=[f.key for f in FACTORS if data.get(f.key)],
                nothing_differs=bool(data.get("nothing_differs")),
                justification=data.get("justification") or "",
                one_word=data.get("one_word") or "",
                time_on_task_ms=data.get("time_on_task_ms"),
            )
        except DomainError as exc:
            for name, message in (exc.details or {exc.field or "__all__": exc.message}).items():
                # "factors" is the checkbox group: its message shows above the checkboxes.
                self.add_error(name if name in self.fields else None, message)
        return data


class SkipForm(forms.Form):
    reason = forms.CharField(
        max_length=SKIP_REASON_MAX,
        required=True,
        widget=forms.TextInput(attrs={"maxlength": SKIP_REASON_MAX, "autocomplete": "off"}),
    )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("slug"), to_field_name="slug")
    split = forms.ChoiceField(choices=[("", "every split"), *Split.choices], required=False)
    class_indices = forms.CharField(required=False, help_text="Class indices, comma separated; empty = every class.")
    # Bounded like the column (a larger number used to reach the database: an OverflowError).
    sample_size = forms.IntegerField(required=False, min_value=1, max_value=SAMPLE_SIZE_MAX)
    overlap_fraction = forms.FloatField(min_value=0, max_value=1, initial=0.1)
    overlap_copies = forms.IntegerField(min_value=2, max_value=10, initial=3)
    gold_rate = forms.FloatField(min_value=0, max_value=1, initial=0.05)
    qualification_threshold = forms.FloatField(min_value=0, max_value=1, initial=0.5)
    status = forms.ChoiceField(choices=CampaignStatus.choices, initial=CampaignStatus.ACTIVE)

    def clean_class_indices(self) -> list[int]:
        raw = self.cleaned_data.get("class_indices") or ""
        parts = [x for x in raw.replace(" ", "").split(",") if x]
        if not all(x.isdigit() and len(x) <= 9 for x in parts):
            raise forms.ValidationError("Give class indices as whole numbers (0 and up) separated by commas.")
        return [int(x) for x in parts]

    def clean(self):
        data = super().clean()
        ds, indices = data.get("dataset"), data.get("class_indices")
        if ds is not None and indices:
            found = dict(ds.classes.filter(index__in=indices).values_list("index", "id"))
            unknown = sorted(set(indices) - set(found))
            if unknown:
                self.add_error("class_indices", f"{ds.slug} has no class with index {', '.join(map(str, unknown))}.")
            data["class_ids"] = [found[i] for i in indices if i in found]
        else:
            data["class_ids"] = None
        return data
