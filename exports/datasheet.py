"""The datasheet of a release (Gebru et al., "Datasheets for Datasets", 2021), filled from the data.

Every figure is computed by the database from the release's curation run and the catalogue;
nothing depends on the clock, so rebuilding a release gives the same datasheet. The
Markdown version is rendered from this same dict by writers.datasheet_markdown.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, Sum
from django.db.models.functions import Cast

from catalog.factors import FACTOR_KEYS, FACTORS_BY_KEY, RELEASE_FACTOR_ORDER
from catalog.models import Annotation, ImageClass
from curation.models import CuratedImage

PAPER = (
    "Idrissi, B. Y., Bouchacourt, D., Balestriero, R., Evtimov, I., Hazirbas, C., Ballas, N., Vincent, P., "
    "Drozdzal, M., Lopez-Paz, D., Ibrahim, M. ImageNet-X: Understanding model mistakes with factor of "
    "variation annotations. ICLR 2023."
)


def citation(release: Any) -> str:
    return (
        f"{release.dataset.name} ({release.dataset.slug}), release {release.version}, "
        f"{release.created_at.year}. Annotations collected following {PAPER}"
    )


def _annotators(image_ids: Any) -> dict[str, Any]:
    user = Annotation.objects.filter(image_id__in=image_ids, source="user")
    return {
        "distinct_annotators": user.values("annotator_id").distinct().count(),
        "user_annotations": user.count(),
        "imported_records": Annotation.objects.filter(image_id__in=image_ids, source="imported").count(),
        "consensus_records": Annotation.objects.filter(image_id__in=image_ids, source="consensus").count(),
    }


def _multi_review(image_ids: Any, n_images: int) -> dict[str, Any]:
    """Coverage of multi-review and, per factor, how often all of an image's annotators agreed."""
    per_image = (
        Annotation.objects.filter(image_id__in=image_ids, source="user")
        .values("image_id")
        .annotate(n=Count("id"), **{f"s_{k}": Sum(Cast(k, IntegerField())) for k in FACTOR_KEYS})
        .filter(n__gte=2)
        .order_by()
    )
    multi = 0
    agree = dict.fromkeys(FACTOR_KEYS, 0)
    for row in per_image.iterator(chunk_size=5000):
        multi += 1
        for k in FACTOR_KEYS:
            if row[f"s_{k}"] in (0, row["n"]):
                agree[k] += 1
    out: dict[str, Any] = {
        "images_with_two_or_more_annotators": multi,
        "coverage": round(multi / n_images, 6) if n_images else 0.0,
    }
    if multi:
        # Unanimity rate: share of multi-reviewed images whose annotators all gave the same answer.
        out["agreement_per_factor"] = {k: round(agree[k] / multi, 6) for k in RELEASE_FACTOR_ORDER}
    else:
        out["agreement_per_factor"] = None
    return out


def _top_factor_sources(run_id: int) -> dict[str, dict[str, int]]:
    """Per split: how many top factors came from the annotators' main factors, from the only
    ticked factor, and from the run's selector (images without a top factor count as "none")."""
    rows = (
        CuratedImage.objects.filter(run_id=run_id)
        .values("split", "top_factor_source")
        .annotate(n=Count("id"))
        .order_by("split", "top_factor_source")
    )
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["split"] or "none", {})[r["top_factor_source"] or "none"] = r["n"]
    return out


def _final_sources(run_id: int) -> dict[str, int]:
    rows = CuratedImage.objects.filter(run_id=run_id).values("annotation__source").annotate(n=Count("id")).order_by()
    return {
        (r["annotation__source"] or "none"): r["n"] for r in sorted(rows, key=lambda r: r["annotation__source"] or "")
    }


def build_datasheet(
    *,
    release: Any,
    split_stats: dict[str, dict[str, Any]],
    n_classes: int,
    n_prototypes: int,
    prototypes: dict[str, Any],
) -> dict[str, Any]:
    dataset = release.dataset
    run = release.curation_run
    image_ids = CuratedImage.objects.filter(run_id=run.pk).values("image_id")
    n_images = sum(s["images"] for s in split_stats.values())
    meta = (
        ImageClass.objects.filter(dataset=dataset).values("meta_label").annotate(n=Count("id")).order_by("meta_label")
    )
    classes_in_release = CuratedImage.objects.filter(run_id=run.pk).values("image__image_class_id").distinct().count()
    annotators = _annotators(image_ids)
    review = _multi_review(image_ids, n_images)
    params = run.params if isinstance(run.params, dict) else {}
    stats = run.stats if isinstance(run.stats, dict) else {}
    files = []
    for split in split_stats:
        files += [f"imagenet_x_{split}_multi_factor.jsonl", f"imagenet_x_{split}_top_factor.jsonl"]
    files += ["prototypical_paths.csv", "classes.csv", "datasheet.json", "DATASHEET.md", "croissant.json", "MANIFEST"]
    return {
        "title": f"{dataset.name} {release.version}",
        "dataset": dataset.slug,
        "version": release.version,
        "created": release.created_at.date().isoformat(),
        "license": release.license,
        "reference": "Datasheet sections follow Gebru et al., Datasheets for Datasets, CACM 64(12), 2021.",
        "motivation": {
            "For what purpose was the dataset created?": (
                "To describe, for each image, which factors of variation (pose, background, lighting, ...) make it "
                "differ from the prototypical images of its class, so that model mistakes can be analysed per factor, "
                "as in ImageNet-X."
            ),
            "Who created the dataset?": "The maintainers of this annotation platform; see notes.",
            "Notes of this release": release.notes or None,
        },
        "composition": {
            "What do the instances represent?": (
                "One record per image: the image file name, its class index, one 0/1 flag per factor of variation "
                f"({len(FACTOR_KEYS)} factors), the annotator's justification and a one-word description."
            ),
            "Images per split": {s: st["images"] for s, st in split_stats.items()},
            "Total images": n_images,
            "Classes in the dataset": n_classes,
            "Classes with at least one image in this release": classes_in_release,
            "Classes per meta-label": {r["meta_label"]: r["n"] for r in meta},
            "Images per factor (multi-factor files)": {s: st["multi_factor_counts"] for s, st in split_stats.items()},
            "Images per top factor (top-factor files)": {s: st["top_factor_counts"] for s, st in split_stats.items()},
            "Images without a top factor": {s: st["images_without_top_factor"] for s, st in split_stats.items()},
            "Prototype images": n_prototypes,
            "Does the dataset contain the images?": "No: only file names, labels and annotations; the pixels stay "
            "with the source dataset and its licence.",
        },
        "collection_process": {
            "How was the data collected?": (
                "Annotators compared each image with three prototypical images of its class and marked every factor "
                "that differs, wrote a justification and a one-word summary (ImageNet-X protocol)."
            ),
            "Factors and their definitions": {k: FACTORS_BY_KEY[k].definition for k in RELEASE_FACTOR_ORDER},
            "Annotators": annotators,
            "Multi-review": review,
            "Sources of the final answers": _final_sources(run.pk),
            "Prototypes": prototypes,
        },
        "preprocessing_cleaning_labeling": {
            "Curation run": run.pk,
            "Curation method": params.get("method") or params.get("selector") or None,
            "Curation parameters": params or None,
            "Curation finished": run.finished_at.date().isoformat() if run.finished_at else None,
            # Figures the curation run computed itself (curation owns them; copied as they are).
            "Top-factor selection summary": stats.get("selection"),
            "Top-factor agreement with the published reference": stats.get("agreement_with_reference"),
            "How was the top factor chosen?": (
                "By the curation run: for each image one of its selected factors. Where the final answer names "
                "its main factor (the annotator, or a reviewer correcting the answer, said which ticked factor "
                "is the main difference), that one (source 'annotator'); where only one factor is ticked, that "
                "one ('single'); otherwise the one the run's selector finds its justification supports best "
                "('selector', see the parameters above). The top-factor files keep the ImageNet-X format; "
                "the source of each count is below."
            ),
            "Sources of the top factors": _top_factor_sources(run.pk),
            "Are the raw annotations available?": "Not in this release; every version of every answer is kept "
            "on the platform.",
        },
        "uses": {
            "What tasks can the dataset be used for?": (
                "Analysing the errors of image classifiers per factor of variation, measuring robustness, and "
                "selecting evaluation subsets."
            ),
            "Are there tasks for which it should not be used?": (
                "Judging people: the annotations describe images, not the people in them."
            ),
        },
        "distribution": {
            "How is the dataset distributed?": "As one reproducible .tar.gz archive and as single files, each "
            "with its SHA-256 (MANIFEST, croissant.json).",
            "Files": files,
            "Licence": release.license,
            "Format": "JSON lines in the format of the public ImageNet-X files, so that the imagenet-x package "
            "loads them unchanged.",
        },
        "maintenance": {
            "Who maintains the dataset?": "The platform's maintainers.",
            "Will the dataset be updated?": (
                "Yes, as new semantic versions; a published version never changes. The release page shows what "
                "changed between two versions."
            ),
            "How to cite": citation(release),
        },
    }
