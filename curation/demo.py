"""Demo data of the curation app: called by `manage.py demo_setup` after the apps to its left.

Idempotent: a dataset that already has a finished run (or a learned selector) is left alone.
Runs in-process (no worker needed) and stays well under a minute: ~10 s per 60k annotations.
"""

from __future__ import annotations

from typing import TextIO

from catalog.models import Dataset
from curation import selector_training, services, topfactor2
from curation.models import CurationRun, SelectorModel
from infra.errors import DomainError


def _curate(slug: str, stdout: TextIO) -> None:
    if not Dataset.objects.filter(slug=slug).exists():
        stdout.write(f"curation: no dataset {slug!r}, skipped\n")
        return
    if CurationRun.objects.filter(dataset__slug=slug, status=CurationRun.Status.DONE).exists():
        stdout.write(f"curation: {slug} already has a finished run\n")
        return
    try:
        run = services.curation_start(dataset_slug=slug, enqueue=False)
    except DomainError as exc:
        stdout.write(f"curation: {slug} skipped: {exc.message}\n")
        return
    run = services.curation_run_execute(run_id=run.id)
    stdout.write(f"curation: run {run.id} on {slug}: {run.status}, {run.processed} images\n")


def setup(*, stdout: TextIO) -> None:
    _curate("demo", stdout)
    if Dataset.objects.filter(slug="imagenet-x").exists():
        if not SelectorModel.objects.filter(name="learned", params__dataset="imagenet-x").exists():
            try:
                m = services.selector_model_train(dataset_slug="imagenet-x")
                stdout.write(f"curation: trained {m} on {m.metrics['n_train']} train annotations\n")
            except DomainError as exc:
                stdout.write(f"curation: learned selector not trained: {exc.message}\n")
        if not SelectorModel.objects.filter(name=topfactor2.VERSION, params__dataset="imagenet-x").exists():
            try:
                m = selector_training.selector_model_train_learned2(dataset_slug="imagenet-x")
                stdout.write(f"curation: trained {m} on {m.metrics['n_train']} train annotations\n")
            except DomainError as exc:
                stdout.write(f"curation: {topfactor2.VERSION} selector not trained: {exc.message}\n")
        _curate("imagenet-x", stdout)
