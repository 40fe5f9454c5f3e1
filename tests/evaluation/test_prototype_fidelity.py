"""Fidelity: `compute_prototypes --predictions` on the shipped reference ResNet-50 file reproduces
the 3,000 published prototypes exactly (per class the 3 correct images with the highest
probability, ties by file name; many classes tie at probability 1.0)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from catalog.models import ReferencePrototype
from prototypes.models import Prototype, PrototypeRun
from tests.conftest import committed_imagenet_x_release
from tests.evaluation.helpers import reference_csv

# transactional_db: the prototype run commits (the service works in its own transactions); the flush
# afterwards empties what the module fixture imported, before it cleans up.
pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def imported(django_db_setup, django_db_blocker):
    with committed_imagenet_x_release(django_db_blocker) as result:
        yield result


def test_reference_resnet50_reproduces_the_3000_published_prototypes(imported, transactional_db, tmp_path):
    path = tmp_path / "ResNet50.csv"
    path.write_bytes(reference_csv("ResNet50"))
    call_command("compute_prototypes", "--dataset", "imagenet-x", "--predictions", str(path))
    run = PrototypeRun.objects.latest("id")
    ours = set(Prototype.objects.filter(run=run).values_list("image__file_name", flat=True))
    published = set(ReferencePrototype.objects.filter(dataset__slug="imagenet-x").values_list("file_name", flat=True))
    assert len(published) == 3000
    assert ours == published
    # and per class, in the published order of confidence (rank 1..3 are the same three images)
    by_class: dict[int, set] = {}
    for cls, name in Prototype.objects.filter(run=run).values_list("image_class__index", "image__file_name"):
        by_class.setdefault(cls, set()).add(name)
    ref_by_class: dict[int, set] = {}
    for cls, name in ReferencePrototype.objects.filter(dataset__slug="imagenet-x").values_list(
        "image_class__index", "file_name"
    ):
        ref_by_class.setdefault(cls, set()).add(name)
    assert by_class == ref_by_class
