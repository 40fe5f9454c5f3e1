"""catalog.answers (the one answer validator) and the append-only history of annotations."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from catalog.answers import ONE_WORD_MAX, answer_clean, f1_counts, f1_from_counts
from catalog.models import Annotation, AnnotationVersion, AppendOnlyError, Dataset, Image, ImageClass
from catalog.services import annotation_version_append
from infra.errors import DomainError


def _answer(**kw):
    base = {"factors": ["pose"], "nothing_differs": False, "justification": "turned", "one_word": "pose"}
    return answer_clean(**{**base, **kw})


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"one_word": "x" * (ONE_WORD_MAX + 1)}, "one_word"),
        ({"one_word": "one two three four"}, "one_word"),
        ({"one_word": ""}, "one_word"),
        ({"factors": []}, "factors"),
        ({"nothing_differs": True}, "nothing_differs"),
        ({"factors": ["nope"]}, "factors"),
        ({"justification": " "}, "justification"),
        ({"justification": "x" * 2001}, "justification"),
    ],
)
def test_the_validator_names_the_bad_field(kw, field):
    with pytest.raises(DomainError) as exc:
        _answer(**kw)
    assert exc.value.field == field


@pytest.mark.embedded
def test_zero_factors_only_with_nothing_differs_and_reviewers_may_leave_the_summary_empty():
    a = _answer(factors=[], nothing_differs=True)
    assert a.factors == [] and a.nothing_differs
    assert _answer(one_word="", one_word_required=False).one_word == ""
    with pytest.raises(DomainError):
        _answer(one_word="a b c d", one_word_required=False)


@pytest.mark.embedded
def test_one_f1():
    assert f1_counts(["pose", "color"], ["pose"]) == (1, 1, 0)
    assert f1_from_counts(1, 1, 0) == pytest.approx(2 / 3)
    assert f1_from_counts(0, 0, 0) == 1.0


@pytest.fixture
def annotation(db, annotator):
    ds = Dataset.objects.create(slug="d", name="d")
    c = ImageClass.objects.create(dataset=ds, index=0, name="tench")
    img = Image.objects.create(dataset=ds, split="val", image_class=c, file_name="x.jpg")
    ann = Annotation(image=img, annotator=annotator, pose=True, justification="turned", one_word="pose")
    annotation_version_append(annotation=ann, author=annotator, reason="create")
    return ann


@pytest.mark.embedded
def test_versions_are_appended_never_rewritten(annotation, annotator):
    ann = annotation
    assert ann.version == 1 and ann.versions.get().data["factors"] == ["pose"]
    ann.color = True
    annotation_version_append(annotation=ann, author=annotator, reason="revise")
    assert [v.version for v in ann.versions.all()] == [1, 2]
    assert ann.versions.get(version=2).data["factors"] == ["pose", "color"]
    v1 = ann.versions.get(version=1)
    with pytest.raises(AppendOnlyError):
        v1.save()
    with pytest.raises(AppendOnlyError):
        v1.delete()
    with pytest.raises(AppendOnlyError):
        AnnotationVersion.objects.filter(pk=v1.pk).update(reason="x")
    with pytest.raises(AppendOnlyError):
        AnnotationVersion.objects.filter(pk=v1.pk).delete()
    assert ann.versions.get(version=1).data["factors"] == ["pose"]


def test_postgres_refuses_rewriting_versions_even_in_raw_sql(annotation):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    for sql in ("UPDATE catalog_annotationversion SET reason = 'x'", "DELETE FROM catalog_annotationversion"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    assert AnnotationVersion.objects.get(annotation=annotation).reason == "create"
