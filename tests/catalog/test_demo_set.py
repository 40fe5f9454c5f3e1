"""The demo set: real photographs, five ImageNet classes, variants whose factors are known by construction."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image as PILImage
from PIL import ImageChops, ImageOps, ImageStat

from catalog.demo_images import DEMO_CLASSES, build_demo_images
from catalog.factors import FACTOR_KEYS
from catalog.importers import default_release_path, read_classes
from catalog.models import Image, ImageClass
from catalog.services import DEMO_SLUG, demo_dataset_build

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list]:
    dest = tmp_path_factory.mktemp("demo")
    specs, _ = build_demo_images(dest)
    return dest, specs


def _open(dest: Path, rel: str) -> PILImage.Image:
    with PILImage.open(dest / rel) as im:
        return im.convert("RGB")


def _spec(specs, slug: str, name: str):
    return next(s for s in specs if s.relpath.endswith(f"/{slug}_{name}.jpg"))


def test_classes_are_real_imagenet_classes():
    release = {c.index: c for c in read_classes(default_release_path())}
    for c in DEMO_CLASSES:
        assert (release[c.index].wnid, release[c.index].name) == (c.wnid, c.name)


def test_each_class_has_three_base_crops_and_at_least_twelve_images(built):
    _, specs = built
    for c in DEMO_CLASSES:
        mine = [s for s in specs if s.wnid == c.wnid]
        assert len(mine) >= 12
        assert len([s for s in mine if s.derived_from is None]) == 3


def test_no_image_is_a_flat_placeholder(built):
    dest, specs = built
    for s in specs:
        # A real photo (even darkened, or a sketch of one) varies: a solid-colour image has a
        # spread of ~0 and a handful of grey levels.
        im = _open(dest, s.relpath)
        assert max(ImageStat.Stat(im).stddev) > 8 and len(im.convert("L").getcolors()) > 40, s.relpath


def test_known_factors_are_factor_keys_and_point_to_their_base(built):
    _, specs = built
    bases = {s.relpath for s in specs if s.derived_from is None}
    for s in specs:
        if s.derived_from is None:
            assert s.known_factors is None
        else:
            assert s.derived_from in bases and s.known_factors and set(s.known_factors) <= set(FACTOR_KEYS)


def test_lighting_variants_are_darker_and_brighter_than_their_base(built):
    dest, specs = built
    for c in DEMO_CLASSES:
        base = ImageStat.Stat(ImageOps.grayscale(_open(dest, f"{c.wnid}/{c.slug}_base1.jpg"))).mean[0]
        dark = ImageStat.Stat(ImageOps.grayscale(_open(dest, _spec(specs, c.slug, "darker").relpath))).mean[0]
        bright = ImageStat.Stat(ImageOps.grayscale(_open(dest, _spec(specs, c.slug, "brighter").relpath))).mean[0]
        assert dark < 0.5 * base and bright > 1.2 * base, c.slug


def test_style_variant_has_no_colour_and_flip_is_the_mirror(built):
    dest, specs = built
    c = DEMO_CLASSES[0]
    r, g, b = _open(dest, _spec(specs, c.slug, "grayscale").relpath).split()
    assert max(ImageStat.Stat(ImageChops.difference(r, b)).mean) < 2
    base = _open(dest, f"{c.wnid}/{c.slug}_base1.jpg")
    flip = _open(dest, _spec(specs, c.slug, "flip").relpath)
    assert max(ImageStat.Stat(ImageChops.difference(ImageOps.mirror(base), flip)).mean) < 4
    assert max(ImageStat.Stat(ImageChops.difference(base, flip)).mean) > 10


def test_build_is_deterministic(built, tmp_path):
    dest, specs = built
    again, written = build_demo_images(tmp_path)
    assert again == specs and written == len(specs)
    assert all((dest / s.relpath).read_bytes() == (tmp_path / s.relpath).read_bytes() for s in specs)


def test_demo_dataset_is_registered_with_known_factors(db):
    r = demo_dataset_build()
    images = Image.objects.filter(dataset__slug=DEMO_SLUG)
    assert images.count() == r.images and images.filter(readable=True).count() == r.images
    flip = images.get(file_name="tabby_flip.jpg")
    assert flip.known_factors == ["pose"] and flip.derived_from.file_name == "tabby_base1.jpg"
    assert flip.path.is_file() and flip.width and flip.height
    cls = ImageClass.objects.get(dataset__slug=DEMO_SLUG, index=967)
    assert (cls.wnid, cls.name, cls.meta_label) == ("n07920052", "espresso", "food")


def test_second_build_changes_nothing(db):
    demo_dataset_build()
    before = list(Image.objects.values_list("id", "sha256", "known_factors", "derived_from_id"))
    r = demo_dataset_build()
    assert not r.changed
    assert list(Image.objects.values_list("id", "sha256", "known_factors", "derived_from_id")) == before


def test_demo_setup_creates_accounts_runs_hooks_and_is_idempotent(db, monkeypatch, django_user_model):
    from catalog.management.commands import demo_setup

    monkeypatch.setattr(demo_setup, "DEMO_HOOK_APPS", ("tests.catalog.demo_hook_app", "no_such_app"))
    out = io.StringIO()
    call_command("demo_setup", skip_imagenet_x=True, stdout=out)
    text = out.getvalue()
    assert "maintainer  / demo-maintainer" in text and "hook ran (created)" in text
    maintainer = django_user_model.objects.get(username="maintainer")
    assert maintainer.check_password("demo-maintainer") and maintainer.is_staff
    assert set(maintainer.groups.values_list("name", flat=True)) == {"maintainer", "reviewer"}
    for name in ["annotator", "annotator2", "annotator3"]:
        u = django_user_model.objects.get(username=name)
        assert u.check_password(f"demo-{name}") and list(u.groups.values_list("name", flat=True)) == ["annotator"]
    users_before, images_before = django_user_model.objects.count(), Image.objects.count()
    out2 = io.StringIO()
    call_command("demo_setup", skip_imagenet_x=True, stdout=out2)
    assert "nothing changed" in out2.getvalue() and "hook ran" in out2.getvalue()
    assert "(created)" not in out2.getvalue()
    assert (django_user_model.objects.count(), Image.objects.count()) == (users_before, images_before)
