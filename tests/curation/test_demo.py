import io

import pytest

from curation import demo
from curation.models import CurationRun

from .conftest import make_dataset


@pytest.mark.django_db
@pytest.mark.embedded
def test_demo_setup_curates_the_demo_dataset_once():
    make_dataset(slug="demo")
    out = io.StringIO()
    demo.setup(stdout=out)
    run = CurationRun.objects.get()
    assert run.status == "done" and run.processed == 8
    demo.setup(stdout=out)
    assert CurationRun.objects.count() == 1
    assert "already has a finished run" in out.getvalue()
