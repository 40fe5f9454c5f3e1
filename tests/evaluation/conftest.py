from __future__ import annotations

import pytest

from catalog.models import Dataset
from infra.roles import Role
from tests.conftest import _make_user
from tests.evaluation.helpers import reference_csv


@pytest.fixture(autouse=True)
def _fresh_label_cache():
    """Label sets are cached per process; each test's database starts over."""
    from evaluation.label_sources import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def other_researcher(django_user_model):
    return _make_user(django_user_model, "res2", Role.RESEARCHER)


@pytest.fixture
def imagenet_x_dataset(db):
    """The dataset row only: evaluations against the toolkit's own label files need no import."""
    return Dataset.objects.create(slug="imagenet-x", name="ImageNet-X")


@pytest.fixture
def resnet_csv() -> bytes:
    return reference_csv("ResNet50")


@pytest.fixture
def evaluate(imagenet_x_dataset, django_capture_on_commit_callbacks):
    """Create and compute an evaluation against the toolkit's labels, in this process."""
    from evaluation import services

    def _evaluate(owner, data, *, name="ResNet50", figures=False, **kw):
        kw.setdefault("label_source", "toolkit")
        ev = services.evaluation_create(owner=owner, name=name, dataset_slug="imagenet-x", data=data,
                                        filename=kw.pop("filename", "ResNet50.csv"), enqueue=False, **kw)  # fmt: skip
        services.evaluation_compute(evaluation_ids=[ev.pk], figures=figures)
        ev.refresh_from_db()
        return ev

    return _evaluate
