"""prototypes.demo.setup: a recorded run for the demo dataset, current, and idempotent."""

from __future__ import annotations

import io

import pytest

from prototypes import demo
from prototypes.models import PrototypeRun
from prototypes.selectors import prototypes_for_class

pytestmark = pytest.mark.django_db


def test_demo_setup_computes_a_current_run_once(dataset_factory):
    ds = dataset_factory(n_images=4, n_classes=2, slug="demo")
    # The demo uses ResNet-50 at the weights' 224 crop; a 32 crop keeps the test fast on 2 shared cores.
    demo.setup(stdout=io.StringIO(), image_size=32)
    run = PrototypeRun.objects.get(dataset=ds)
    assert run.is_current and run.model_name == "resnet50" and run.weights == "none" and run.fill_incorrect
    for cls in ds.classes.all():
        got, images = prototypes_for_class(cls)
        assert got == run and len(images) == 2  # 2 images per class in this tiny set
    demo.setup(stdout=io.StringIO(), image_size=32)
    assert PrototypeRun.objects.count() == 1


def test_demo_setup_without_a_demo_dataset_does_nothing():
    out = io.StringIO()
    demo.setup(stdout=out)
    assert "no 'demo' dataset" in out.getvalue() and not PrototypeRun.objects.exists()
