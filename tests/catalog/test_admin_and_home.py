"""The catalogue's admin pages and the home page's dataset summary."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass
from catalog.selectors import dataset_summaries
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


@pytest.fixture
def staff_maintainer(maintainer):
    maintainer.is_staff = True
    maintainer.save()
    maintainer.user_permissions.set(Permission.objects.filter(content_type__app_label="catalog"))
    return maintainer


@pytest.fixture
def annotated(db):
    ds = Dataset.objects.create(slug="d", name="D")
    classes = [ImageClass.objects.create(dataset=ds, index=i, name=f"c{i}") for i in range(3)]
    images = [
        Image.objects.create(dataset=ds, split="val", image_class=classes[i % 3], file_name=f"{i}.jpg")
        for i in range(4)
    ]
    a = Annotation.objects.create(image=images[0], source="imported", source_release="r", pose=True)
    AnnotationVersion.objects.create(annotation=a, version=1, data=a.snapshot())
    return ds, a


@pytest.mark.parametrize(
    "model", ["dataset", "imageclass", "image", "referenceprototype", "annotation", "annotationversion"]
)
def test_admin_lists_every_catalogue_model(staff_maintainer, annotated, model):
    from django.apps import apps

    r = client_for(staff_maintainer).get(f"/admin/catalog/{model}/")
    assert r.status_code == 200
    meta = apps.get_model("catalog", model)._meta
    html = r.content.decode()
    assert f"Select {meta.verbose_name} to view" in html or f"Select {meta.verbose_name} to change" in html
    n = meta.model.objects.count()
    assert f"{n} {meta.verbose_name if n == 1 else meta.verbose_name_plural}" in html


def test_admin_shows_an_annotation_with_its_versions_read_only(staff_maintainer, annotated):
    _, a = annotated
    c = client_for(staff_maintainer)
    r = c.get(f"/admin/catalog/annotation/{a.id}/change/")
    assert r.status_code == 200 and b"Annotation versions" in r.content and b'name="_save"' not in r.content
    r = c.post(f"/admin/catalog/annotation/{a.id}/change/", {"justification": "edited"})
    a.refresh_from_db()
    assert r.status_code == 403 and a.justification == ""


def test_admin_is_closed_to_non_staff(annotator, annotated):
    r = client_for(annotator).get("/admin/catalog/image/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_dataset_summary_counts_images_classes_and_annotations(annotated):
    Dataset.objects.create(slug="empty", name="E")
    rows = {d.slug: (d.n_classes, d.n_images, d.n_annotations) for d in dataset_summaries()}
    assert rows == {"d": (3, 4, 1), "empty": (0, 0, 0)}


def test_home_page_lists_datasets(annotator, annotated):
    r = client_for(annotator).get("/")
    assert r.status_code == 200 and b"<code>d</code>" in r.content


def test_home_page_needs_login(client):
    r = client.get("/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
