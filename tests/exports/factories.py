"""Test data for exports: a slice of the public ImageNet-X release, and done curation runs.

`load_imagenet_x` runs the foundation's importer on a copy of the package's release folder
cut to the first lines of each annotation file (imported, accepted records, source_release
imagenet-x-0.0.7, the published top factor as reference_top_factor, in file order). `curation_run_from_final` copies each
image's final annotation into a done CurationRun with top_factor = reference_top_factor:
exporting that run is "exporting the imported public release unchanged".
"""

from __future__ import annotations

import tempfile
from importlib.resources import files
from itertools import islice
from pathlib import Path

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset
from catalog.selectors import final_annotations
from catalog.services import IMAGENET_X_SLUG, imagenet_x_import
from curation.models import CuratedImage, CurationRun


def package_dir() -> Path:
    return Path(str(files("imagenet_x") / "annotations"))


def package_lines(split: str, kind: str, n: int | None = None) -> list[bytes]:
    with open(package_dir() / f"imagenet_x_{split}_{kind}_factor.jsonl", "rb") as fh:
        return list(islice(fh, n)) if n is not None else list(fh)


_FOLDERS: dict[tuple[int | None, int | None], Path] = {}


def release_folder(n_val: int | None, n_train: int | None) -> Path:
    """A copy of the package's release folder keeping the first n lines of each annotation file."""
    key = (n_val, n_train)
    if key not in _FOLDERS:
        folder = Path(tempfile.mkdtemp(prefix="imagenet-x-slice-"))
        for f in package_dir().iterdir():
            if f.suffix in (".csv", ".txt"):
                (folder / f.name).symlink_to(f)
        for split, n in (("val", n_val), ("train", n_train)):
            for kind in ("multi", "top"):
                (folder / f"imagenet_x_{split}_{kind}_factor.jsonl").write_bytes(
                    b"".join(package_lines(split, kind, n))
                )
        _FOLDERS[key] = folder
    return _FOLDERS[key]


def load_imagenet_x(*, n_val: int | None = 40, n_train: int | None = 20) -> Dataset:
    """Import the first n records of each split (None = all) with the foundation's importer."""
    imagenet_x_import(path=release_folder(n_val, n_train))
    return Dataset.objects.get(slug=IMAGENET_X_SLUG)


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
