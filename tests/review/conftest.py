"""Fixtures for the review tests: a small dataset with real image files and annotators' answers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from PIL import Image as PILImage

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass
from tests.conftest import _make_user


def make_images(root, n: int = 6, *, slug: str = "rv", meta_labels=("dog", "bird")) -> list[Image]:
    root.mkdir(parents=True, exist_ok=True)
    ds = Dataset.objects.create(slug=slug, name=slug, root=str(root))
    classes = [
        ImageClass.objects.create(dataset=ds, index=i, name=f"class {i}", meta_label=m)
        for i, m in enumerate(meta_labels)
    ]
    images = []
    for i in range(n):
        name = f"img_{i:04d}.jpg"
        PILImage.new("RGB", (64, 48), ((i * 37) % 255, 90, 160)).save(root / name)
        images.append(
            Image.objects.create(
                dataset=ds,
                split="val",
                image_class=classes[i % len(classes)],
                file_name=name,
                relpath=name,
                readable=True,
                width=64,
                height=48,
            )
        )
    return images


def answer(
    image: Image,
    user,
    factors=(),
    *,
    justification: str = "looks different",
    one_word: str = "",
    seconds: float | None = 12.0,
    created_at: dt.datetime | None = None,
    nothing_differs=None,
) -> Annotation:
    """An annotator's answer written the way the annotator app writes it: the row plus version 1."""
    ann = Annotation.objects.create(
        image=image,
        annotator=user,
        justification=justification,
        one_word=one_word,
        nothing_differs=(not factors) if nothing_differs is None else nothing_differs,
        time_on_task_ms=None if seconds is None else int(seconds * 1000),
        **{k: k in factors for k in FACTOR_KEYS},
    )
    if created_at is not None:
        Annotation.objects.filter(pk=ann.pk).update(created_at=created_at)
        ann.refresh_from_db()
    AnnotationVersion.objects.create(annotation=ann, version=1, data=ann.snapshot(), author=user, reason="create")
    return ann


@pytest.fixture
def images(db, tmp_path):
    return make_images(tmp_path / "rv")


@pytest.fixture
def third_annotator(django_user_model):
    return _make_user(django_user_model, "ann3", "annotator")


@pytest.fixture
def second_reviewer(django_user_model):
    return _make_user(django_user_model, "rev2", "reviewer")


def minutes_ago(m: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=m)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The role fixtures create several users per test; the default PBKDF2 costs ~0.4 s each on
    # this shared 2-core machine. Passwords are not what these tests check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
