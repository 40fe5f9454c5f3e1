"""Evaluate a model's predictions against a release: per-factor accuracy and error ratio.

    manage.py evaluate_model --predictions FILE --name NAME --dataset SLUG [--release VERSION]
        [--which-factor top|multi] [--correctness class|real_class|metaclass] [--toolkit-compatible] [--json]

FILE: the toolkit's CSV, a .npz (file_names + logits/probabilities), a .npy of logits (rows in
the order of the toolkit's filename_label.csv, or --file-names), or an imagenet-testbed .pickle.
Pickles are read here only, for a local file you name: unpickling runs code, so the browser and the
API never accept one. Runs inline (no worker needed).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from evaluation import labels as L
from evaluation import parsing, services
from evaluation.models import InputKind
from infra.errors import DomainError


def _toolkit_order() -> np.ndarray:
    with open(L.package_annotation_dir() / "filename_label.csv", encoding="utf-8") as fh:
        return np.array([r["file_name"] for r in csv.DictReader(fh)], dtype=str)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--predictions", default="", help="A predictions file (see above).")
        parser.add_argument("--score-model", default="", help="Instead of a file: score the dataset's images with this "
                            "torchvision model through the prototype engine (e.g. resnet18).")  # fmt: skip
        parser.add_argument("--weights", default="none", help="With --score-model: torchvision weights name or none.")
        parser.add_argument("--checkpoint", default="", help="With --score-model: a local checkpoint file.")
        parser.add_argument("--name", default="")
        parser.add_argument("--dataset", default="imagenet-x")
        parser.add_argument("--release", default="", help="Version of a published release (default: the latest).")
        parser.add_argument("--labels", choices=["release", "toolkit"], default="release",
                            help="toolkit = the imagenet_x package's own annotation files.")  # fmt: skip
        parser.add_argument("--which-factor", choices=["top", "multi"], default="top")
        parser.add_argument("--correctness", choices=["class", "real_class", "metaclass"], default="class")
        parser.add_argument("--partition", "--split", dest="split", choices=["val", "train"], default="val")
        parser.add_argument("--keep-prototypes", action="store_true")
        parser.add_argument("--toolkit-compatible", action="store_true")
        parser.add_argument("--allow-low-coverage", action="store_true")
        parser.add_argument("--file-names", default="", help="For a .npy: a text file with one file name per row.")
        parser.add_argument("--user", default="", help="Owner (default: the first maintainer).")
        parser.add_argument("--no-figures", action="store_true")
        parser.add_argument("--json", action="store_true", help="Print the evaluation as JSON (factors by name).")

    def _owner(self, username: str):
        User = get_user_model()
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user {username!r}.")
            return user
        user = User.objects.filter(groups__name__in=["maintainer", "researcher"]).order_by("id").first()
        user = user or User.objects.filter(is_superuser=True).order_by("id").first()
        if user is None:
            raise CommandError("No maintainer or researcher account; create one or pass --user.")
        return user

    def handle(self, *args, **o):
        if o["score_model"]:
            return self._scored(o)
        if not o["predictions"]:
            raise CommandError("Give --predictions FILE or --score-model NAME.")
        path = Path(o["predictions"])
        if not path.is_file():
            raise CommandError(f"--predictions {path}: no such file.")
        name = o["name"] or path.name.split(".")[0]
        owner = self._owner(o["user"])
        data = path.read_bytes()
        if path.suffix == ".gz":
            data, fname = gzip.decompress(data), path.name.removesuffix(".gz")
        else:
            fname = path.name
        predictions, kind = None, ""
        try:
            if fname.endswith((".pickle", ".pkl")):
                model, predictions = parsing.read_testbed_pickle(str(path), file_names=_toolkit_order(), n_classes=1000)
                name, kind = o["name"] or model, InputKind.TESTBED
            elif fname.endswith(".npy"):
                names = (
                    np.array(Path(o["file_names"]).read_text().split(), dtype=str)
                    if o["file_names"]
                    else _toolkit_order()
                )
                predictions, kind = parsing.parse_array_file(data, n_classes=1000, file_names=names), InputKind.ARRAY
        except parsing.PredictionFileError as exc:
            raise CommandError(exc.message)
        try:
            ev = services.evaluation_create(
                owner=owner, name=name, dataset_slug=o["dataset"], data=None if predictions else data, filename=fname,
                predictions=predictions, input_kind=kind, label_source=o["labels"], release_version=o["release"],
                split=o["split"], which_factor=o["which_factor"], correctness=o["correctness"],
                filter_prototypes=not o["keep_prototypes"], toolkit_compatible=o["toolkit_compatible"],
                allow_low_coverage=o["allow_low_coverage"], enqueue=False,
            )  # fmt: skip
            services.evaluation_compute(evaluation_ids=[ev.pk], figures=not o["no_figures"])
        except DomainError as exc:
            raise CommandError(exc.message)
        self._print(ev, o)

    def _scored(self, o):
        try:
            ev = services.evaluation_from_scoring(
                owner=self._owner(o["user"]), name=o["name"] or o["score_model"], dataset_slug=o["dataset"],
                model_name=o["score_model"], weights=o["weights"], checkpoint=o["checkpoint"],
                label_source=o["labels"], release_version=o["release"], split=o["split"], which_factor=o["which_factor"],
                correctness=o["correctness"], filter_prototypes=not o["keep_prototypes"],
                toolkit_compatible=o["toolkit_compatible"], allow_low_coverage=o["allow_low_coverage"], enqueue=False,
            )  # fmt: skip
            services.evaluation_compute(evaluation_ids=[ev.pk], figures=not o["no_figures"])
        except DomainError as exc:
            raise CommandError(exc.message)
        self._print(ev, o)

    def _print(self, ev, o):
        ev.refresh_from_db()
        if ev.status != "done":
            raise CommandError(f"Evaluation {ev.pk} failed: {ev.error}")
        block = ev.primary
        if o["json"]:
            out = {
                "id": ev.pk, "name": ev.name, "labels": ev.labels_description, "correctness": ev.correctness,
                "mode": ev.metrics["mode"], "coverage": ev.coverage, "overall": block["overall"],
                "worst_factor": block["worst_factor"],
                "factors": {k: {"n": v["n"], "accuracy": v["accuracy"], "error_ratio": v["error_ratio"],
                                "accuracy_ci": v["ci"], "error_ratio_ci": v["error_ratio_ci"], "significant": v["significant"]}
                            for k, v in block["factors"].items()},
            }  # fmt: skip
            self.stdout.write(json.dumps(out, indent=2))
            return
        self.stdout.write(
            f"evaluation {ev.pk}: {ev.name} on {ev.labels_description} ({ev.metrics['mode']}): "
            f"accuracy {block['overall']['accuracy']:.4f} (n={block['overall']['n']}), worst factor {block['worst_factor']}"
        )
        for k, v in sorted(block["factors"].items(), key=lambda kv: -(kv[1]["error_ratio"] or 0)):
            er = v["error_ratio"]
            self.stdout.write(
                f"  {k:17s} n={v['n']:6d} acc={v['accuracy'] or 0:.3f} error ratio={er if er is None else round(er, 3)}"
            )
