"""Test data for exports: a slice of the public ImageNet-X release, and done curation runs.

`load_imagenet_x` runs the foundation's importer on a copy of the package's release folder
cut to the first lines of each annotation file (imported, accepted records, source_release
imagenet-x-0.0.7, the published top factor as reference_top_factor, in file order). `curation_run_from_final` copies each
image's final annotation into a done CurationRun with top_factor = reference_top_factor:
exporting that run is "exporting the imported public release unchanged".
"""

from __future__ import annotations

import json
import tempfile
from importlib.resources import files
from itertools import islice
from pathlib import Path

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset
from catalog.services import IMAGENET_X_SLUG, imagenet_x_import
from curation.models import CuratedImage, CurationRun
from review.selectors import final_annotations


def package_dir() -> Path:
    return Path(str(files("imagenet_x") / "annotations"))


def package_lines(split: str, kind: str, n: int | None = None) -> list[bytes]:
    with open(package_dir() / f"imagenet_x_{split}_{kind}_factor.jsonl", "rb") as fh:
        return list(islice(fh, n)) if n is not None else list(fh)


_FOLDERS: dict[tuple, Path] = {}
SLIM_PROTOTYPES = 30  # the first 10 classes' prototypes: keeps each test's import small


def release_folder(n_val: int | None, n_train: int | None, *, all_prototypes: bool = False) -> Path:
    """A copy of the package's release folder keeping the first n lines of each annotation file.

    Unless `all_prototypes`, prototypical_paths.csv keeps its first SLIM_PROTOTYPES lines and
    filename_label.csv only the names the slice needs (the importer checks both against it).
    """
    key = (n_val, n_train, all_prototypes)
    if key not in _FOLDERS:
        folder = Path(tempfile.mkdtemp(prefix="imagenet-x-slice-"))
        for name in ("imagenet_labels.txt", "imagenet_1k_classes_to_100_metaclasses.csv"):
            (folder / name).symlink_to(package_dir() / name)
        val_names = set()
        for split, n in (("val", n_val), ("train", n_train)):
            for kind in ("multi", "top"):
                lines = package_lines(split, kind, n)
                (folder / f"imagenet_x_{split}_{kind}_factor.jsonl").write_bytes(b"".join(lines))
                if split == "val":
                    val_names |= {json.loads(line)["file_name"] for line in lines}
        if all_prototypes:
            for name in ("prototypical_paths.csv", "filename_label.csv"):
                (folder / name).symlink_to(package_dir() / name)
        else:
            protos = (package_dir() / "prototypical_paths.csv").read_text().splitlines()[: SLIM_PROTOTYPES + 1]
            (folder / "prototypical_paths.csv").write_text("\n".join(protos) + "\n")
            wanted = val_names | set(protos[1:])
            labels = (package_dir() / "filename_label.csv").read_text().splitlines()
            (folder / "filename_label.csv").write_text(
                "\n".join([labels[0], *(x for x in labels[1:] if x.split(",", 1)[0] in wanted)]) + "\n"
            )
        _FOLDERS[key] = folder
    return _FOLDERS[key]


def load_imagenet_x(*, n_val: int | None = 40, n_train: int | None = 20, all_prototypes: bool = False) -> Dataset:
    """Import the first n records of each split (None = all) with the foundation's importer."""
    imagenet_x_import(path=release_folder(n_val, n_train, all_prototypes=all_prototypes))
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
