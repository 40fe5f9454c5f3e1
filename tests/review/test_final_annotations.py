"""review.selectors.final_annotations: review's rule for an image's final answer."""

import pytest

from catalog.models import Annotation, Dataset, Image, ImageClass
from review.selectors import final_annotations


@pytest.fixture
def two_images(db):
    ds = Dataset.objects.create(slug="d", name="d")
    c = ImageClass.objects.create(dataset=ds, index=0, name="tench")
    return [Image.objects.create(dataset=ds, split="val", image_class=c, file_name=f"x{i}.jpg") for i in range(2)]


@pytest.mark.embedded
def test_final_annotation_rule(two_images, annotator, other_annotator):
    single, multi = two_images
    imported = Annotation.objects.create(image=single, source="imported", source_release="r", status="accepted")
    mine = Annotation.objects.create(image=single, annotator=annotator, status="submitted")
    Annotation.objects.create(image=multi, annotator=annotator, status="submitted")
    Annotation.objects.create(image=multi, annotator=other_annotator, status="submitted")
    ds = single.dataset_id
    # A single submitted answer beats the imported one; a multi-annotated image waits for adjudication.
    assert [a.id for a in final_annotations(dataset_id=ds)] == [mine.id]
    mine.status = "rejected"
    mine.save()
    assert [a.id for a in final_annotations(dataset_id=ds)] == [imported.id]
    consensus = Annotation.objects.create(image=multi, source="consensus", status="accepted")
    assert [a.id for a in final_annotations(dataset_id=ds)] == [imported.id, consensus.id]
