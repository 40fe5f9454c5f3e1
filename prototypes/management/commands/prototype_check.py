"""manage.py prototype_check --dataset SLUG (--model NAME [--weights|--checkpoint] | --predictions FILE.csv)

The paper's appendix check: how often another model classifies the current prototypes
correctly (ImageNet-X reports ~99% for models more accurate than ResNet-50).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Dataset
from infra.errors import DomainError
from prototypes import engine, services


class Command(BaseCommand):
    help = "Accuracy of another model (or predictions file) on the dataset's current prototypes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--model", default="")
        parser.add_argument("--weights", default=engine.DEFAULT_WEIGHTS)
        parser.add_argument("--checkpoint", default="")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--image-size", type=int, default=None)
        parser.add_argument("--device", default="auto")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--predictions", default="")

    def handle(self, *args, **o) -> None:
        dataset = Dataset.objects.filter(slug=o["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset {o['dataset']!r}")
        if bool(o["model"]) == bool(o["predictions"]):
            raise CommandError("give exactly one of --model or --predictions")
        spec = None
        if o["model"]:
            spec = engine.ModelSpec(
                name=o["model"],
                weights=o["weights"],
                checkpoint=o["checkpoint"] or None,
                seed=o["seed"],
                image_size=o["image_size"],
            )
        try:
            result = services.prototypes_check(
                dataset=dataset,
                spec=spec,
                predictions=o["predictions"] or None,
                options=engine.ScoreOptions(device=o["device"], batch_size=o["batch_size"], num_workers=0),
            )
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(json.dumps(result, indent=2))
