"""Demo data: a prototype run for the `demo` dataset, marked current (called by manage.py demo_setup).

No pretrained weights can be downloaded on the demo machine, so the run uses ResNet-50 with
random weights, explicitly (`--weights none`), recorded on the run as such. A random network
classifies almost nothing correctly, so --fill-incorrect fills every class from the highest
true-class probabilities; those prototypes are marked `filled`. With a real checkpoint,
`manage.py compute_prototypes --dataset demo --checkpoint resnet50-0676ba61.pth` replaces it.
"""

from __future__ import annotations

from typing import TextIO

from catalog.models import Dataset
from prototypes import services
from prototypes.selectors import current_run, images_to_score

DEMO_SLUG = "demo"


def setup(*, stdout: TextIO, image_size: int | None = None) -> None:
    """image_size: crop size override, only for tests (the demo itself uses the weights' 224)."""
    dataset = Dataset.objects.filter(slug=DEMO_SLUG).first()
    if dataset is None:
        stdout.write("prototypes: no 'demo' dataset, nothing to do\n")
        return
    existing = current_run(dataset_id=dataset.id)
    if existing is not None:
        stdout.write(f"prototypes: demo already has current run {existing.pk}\n")
        return
    if not images_to_score(dataset=dataset).exists():
        stdout.write("prototypes: the demo dataset has no image files yet, nothing to score\n")
        return
    run = services.prototype_run_create(
        dataset=dataset,
        model_name="resnet50",
        weights="none",
        seed=0,
        image_size=image_size,
        k=3,
        fill_incorrect=True,
        make_current=True,
        enqueue=False,
    )
    for shard_id in run.shards.values_list("id", flat=True):
        services.prototype_shard_score(shard_id=shard_id, merge_inline=True)
    run.refresh_from_db()
    if run.status != "done":
        stdout.write(f"prototypes: demo run {run.pk} ended {run.status}: {run.error}\n")
        return
    stdout.write(
        f"prototypes: demo run {run.pk} (resnet50, random weights, filled) scored {run.images_scored} images, "
        f"skipped {run.images_skipped}, {run.prototypes.count()} prototypes, current\n"
    )
