"""Reads for the prototypes the annotation form shows.

The form, the review view and the exports read prototypes only through these functions.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from catalog.models import Image, ImageClass
from prototypes.models import Prototype, PrototypeRun, RunStatus


def current_run(*, dataset_id: int) -> PrototypeRun | None:
    """The dataset's current PrototypeRun, or None."""
    return PrototypeRun.objects.filter(dataset_id=dataset_id, is_current=True, status=RunStatus.DONE).first()


def prototypes_for_class(
    image_class: ImageClass, *, k: int = 3, exclude_image_id: int | None = None
) -> tuple[PrototypeRun | None, list[Image]]:
    """(run, the k prototype images of the class) for the form.

    The current run's prototypes, best first (a class the run could not fill has fewer than k).
    Only while the dataset has no current run do any k readable images of the class stand in
    (run is None), so that the form works before the first run. `exclude_image_id` is the
    sample the form shows: it is never among its own prototypes.
    """
    run = current_run(dataset_id=image_class.dataset_id)
    if run is not None:
        protos = Prototype.objects.filter(run=run, image_class=image_class)
        if exclude_image_id is not None:
            protos = protos.exclude(image_id=exclude_image_id)
        return run, [p.image for p in protos.select_related("image", "image__dataset").order_by("rank")[:k]]
    images = Image.objects.filter(image_class=image_class, readable=True).exclude(relpath="")
    if exclude_image_id is not None:
        images = images.exclude(pk=exclude_image_id)
    return None, list(images.order_by("file_name")[:k])


def prototype_ids_for_class(
    *, dataset_id: int, image_class_id: int, k: int, exclude_image_id: int
) -> tuple[int | None, list[int]]:
    """prototypes_for_class as ids: (current run id, its k best prototype image ids of the class,
    best first), or (None, k stand-in image ids) while the dataset has no current run.

    For the queue's `next`, which records only the ids: one prepared statement (infra.sql)
    instead of the three queries and whole images of prototypes_for_class. Same rules.
    """
    from infra import sql

    rows = sql.all_rows(_PROTOTYPE_IDS_SQL, [image_class_id, exclude_image_id, dataset_id, RunStatus.DONE.value, k])
    if rows:
        return rows[0][0], [image_id for _run, image_id in rows if image_id is not None]
    return None, [r[0] for r in sql.all_rows(_STAND_IN_IDS_SQL, [image_class_id, exclude_image_id, k])]


_PROTOTYPE_IDS_SQL = (
    f"SELECT r.id, p.image_id FROM {PrototypeRun._meta.db_table} r"
    f" LEFT JOIN {Prototype._meta.db_table} p ON p.run_id = r.id AND p.image_class_id = %s AND p.image_id <> %s"
    " WHERE r.dataset_id = %s AND r.is_current AND r.status = %s ORDER BY p.rank LIMIT %s"
)
_STAND_IN_IDS_SQL = (
    f"SELECT i.id FROM {Image._meta.db_table} i WHERE i.image_class_id = %s AND i.readable AND i.relpath <> ''"
    " AND i.id <> %s ORDER BY i.file_name LIMIT %s"
)


def current_prototype_image_ids(*, dataset_id: int) -> QuerySet:
    """Ids of the images that are prototypes in the dataset's current run (a values queryset)."""
    return Prototype.objects.filter(
        run__dataset_id=dataset_id, run__is_current=True, run__status=RunStatus.DONE
    ).values("image_id")


def prototype_runs(*, dataset_id: int | None = None) -> QuerySet[PrototypeRun]:
    qs = PrototypeRun.objects.select_related("dataset").order_by("-created_at", "-id")
    if dataset_id is not None:
        qs = qs.filter(dataset_id=dataset_id)
    return qs


def run_prototypes_by_class(*, run: PrototypeRun) -> QuerySet[ImageClass]:
    """The dataset's classes with the run's prototypes prefetched as `run_prototypes` (rank order)."""
    return (
        ImageClass.objects.filter(dataset_id=run.dataset_id)
        .order_by("index")
        .prefetch_related(
            Prefetch(
                "prototypes",
                queryset=Prototype.objects.filter(run=run).select_related("image").order_by("rank"),
                to_attr="run_prototypes",
            )
        )
    )


def run_prototypes(*, run_id: int) -> QuerySet[Prototype]:
    return (
        Prototype.objects.filter(run_id=run_id)
        .select_related("image", "image_class")
        .order_by("image_class__index", "rank")
    )


def images_to_score(*, dataset, split: str = "") -> QuerySet[Image]:
    """Images a run scores: those with a stored file. Derived demo variants are left out: a
    prototype must be a typical photo, not one transformed to differ on purpose."""
    qs = Image.objects.filter(dataset=dataset, derived_from__isnull=True).exclude(relpath="")
    if split:
        qs = qs.filter(split=split)
    return qs
