"""Test data for exports: a slice of the public ImageNet-X release, and done curation runs.

`load_imagenet_x` reads the first lines of the package's own files (the same records the
foundation importer stores: imported, accepted, source_release imagenet-x-0.0.7, the published
top factor as reference_top_factor), in file order. `curation_run_from_final` copies each
image's final annotation into a done CurationRun with top_factor = reference_top_factor:
exporting that run is "exporting the imported public release unchanged".
"""

from __future__ import annotations

import json
from importlib.resources import files
from itertools import islice
from pathlib import Path

from catalog.factors import FACTOR_KEYS, RELEASE_FACTOR_ORDER
from catalog.models import Annotation, Dataset, Image, ImageClass, ReferencePrototype
from catalog.selectors import final_annotations
from curation.models import CuratedImage, CurationRun

SOURCE_RELEASE = "imagenet-x-0.0.7"


def package_dir() -> Path:
    return Path(str(files("imagenet_x") / "annotations"))


def package_lines(split: str, kind: str, n: int | None = None) -> list[bytes]:
    with open(package_dir() / f"imagenet_x_{split}_{kind}_factor.jsonl", "rb") as fh:
        return list(islice(fh, n)) if n is not None else list(fh)


def load_imagenet_x(*, n_val: int | None = 40, n_train: int | None = 20, slug: str = "imagenet-x") -> Dataset:
    """Import the first n records of each split (None = all) the way the foundation importer does."""
    dataset, _ = Dataset.objects.get_or_create(slug=slug, defaults={"name": "ImageNet-X", "root": ""})
    labels = (package_dir() / "imagenet_labels.txt").read_text().splitlines()
    class_by_index: dict[int, ImageClass] = {c.index: c for c in ImageClass.objects.filter(dataset=dataset)}
    missing = [
        ImageClass(dataset=dataset, index=i, wnid=line.split(",", 1)[0], name=line.split(",", 1)[1])
        for i, line in enumerate(labels)
        if i not in class_by_index
    ]
    ImageClass.objects.bulk_create(missing, batch_size=1000)
    class_by_index = {c.index: c for c in ImageClass.objects.filter(dataset=dataset)}
    for split, n in (("val", n_val), ("train", n_train)):
        multi = [json.loads(line) for line in package_lines(split, "multi", n)]
        top = [json.loads(line) for line in package_lines(split, "top", n)]
        images = Image.objects.bulk_create(
            [
                Image(dataset=dataset, split=split, image_class=class_by_index[r["class"]], file_name=r["file_name"])
                for r in multi
            ],
            batch_size=2000,
        )
        anns = []
        for img, m, t in zip(images, multi, top, strict=True):
            tops = [k for k in RELEASE_FACTOR_ORDER if t[k]]
            anns.append(
                Annotation(
                    image=img,
                    source="imported",
                    status="accepted",
                    source_release=SOURCE_RELEASE,
                    justification=m["justification"] or "",
                    one_word=m["one_word"] or "",
                    reference_top_factor=tops[0] if tops else "",
                    **{k: bool(m[k]) for k in FACTOR_KEYS},
                )
            )
        Annotation.objects.bulk_create(anns, batch_size=2000)
    protos = (package_dir() / "prototypical_paths.csv").read_text().splitlines()[1:]
    by_name = dict(Image.objects.filter(dataset=dataset).values_list("file_name", "image_class_id"))
    ReferencePrototype.objects.bulk_create(
        [
            ReferencePrototype(
                dataset=dataset, image_class_id=by_name[name], file_name=name, position=i, source_release=SOURCE_RELEASE
            )
            for i, name in enumerate(protos)
            if name in by_name
        ],
        ignore_conflicts=True,
    )
    return dataset


def curation_run_from_final(
    dataset: Dataset, *, status: str = "done", params: dict | None = None, error: str = ""
) -> CurationRun:
    """A curation run holding each image's final annotation unchanged (top = the published top factor)."""
    run = CurationRun.objects.create(
        dataset=dataset,
        status=status,
        error=error,
        params=params if params is not None else {"method": "reference top factor (imported unchanged)"},
    )
    rows = []
    for ann in final_annotations(dataset_id=dataset.id).iterator(chunk_size=5000):
        rows.append(
            CuratedImage(
                run=run,
                image_id=ann.image_id,
                annotation_id=ann.id,
                justification=ann.justification,
                one_word=ann.one_word,
                top_factor=ann.reference_top_factor or (ann.selected_factors[:1] or [""])[0],
                **{k: getattr(ann, k) for k in FACTOR_KEYS},
            )
        )
    CuratedImage.objects.bulk_create(rows, batch_size=5000)
    CurationRun.objects.filter(pk=run.pk).update(total=len(rows), processed=len(rows))
    run.refresh_from_db()
    return run
