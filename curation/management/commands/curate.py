"""Start a curation run from the command line (through Celery, or inline), optionally training the learned selector."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from curation import selector_training, selectors, services, topfactor
from infra.errors import DomainError


class Command(BaseCommand):
    help = "Curate a dataset: top factor per image, meta-labels, statistics and figures (prints JSON)."

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="dataset slug, e.g. imagenet-x or demo")
        parser.add_argument("--split", default="", choices=["", "train", "val"])
        parser.add_argument("--campaign", type=int, default=None)
        parser.add_argument("--selector", default="paper", choices=list(services.SELECTORS))
        parser.add_argument(
            "--text-field",
            default=None,
            choices=list(topfactor.TEXT_FIELDS),
            help="default: the paper rule's (one_word) or the learned selector's (both)",
        )
        parser.add_argument(
            "--factor-text", default=None, choices=list(topfactor.FACTOR_TEXTS), help="default: wording"
        )
        parser.add_argument("--chunk-size", type=int, default=services.DEFAULT_CHUNK_SIZE)
        parser.add_argument(
            "--train-learned",
            action="store_true",
            help="first train a new version of the learned selector on the dataset's train split",
        )
        parser.add_argument(
            "--learned-version",
            default=selector_training.DEFAULT_LEARNED_VERSION,
            choices=list(selector_training.LEARNED_VERSIONS),
            help="which learned selector --selector learned (and --train-learned) uses (default: %(default)s)",
        )
        parser.add_argument(
            "--wordnet-meta-labels",
            action="store_true",
            help="first derive class meta-labels from WordNet hypernyms (skipped when NLTK's WordNet data is absent)",
        )
        parser.add_argument("--inline", action="store_true", help="run in this process instead of Celery workers")
        parser.add_argument("--wait", action="store_true", help="wait for the workers to finish the run")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args, **o):
        try:
            if o["wordnet_meta_labels"]:
                n = services.image_classes_meta_labels_derive(dataset_slug=o["dataset"])
                self.stderr.write(
                    "WordNet data is not installed: meta-labels left as imported"
                    if n is None
                    else f"{n} class meta-labels updated from WordNet hypernyms"
                )
            if o["train_learned"] and o["learned_version"] == topfactor.LEARNED_SELECTOR_VERSION:
                m = services.selector_model_train(
                    dataset_slug=o["dataset"],
                    text_field=o["text_field"] or topfactor.LEARNED_DEFAULT_TEXT,
                    factor_text=o["factor_text"] or topfactor.LEARNED_DEFAULT_FACTOR_TEXT,
                )
                self.stderr.write(f"trained {m} on {m.metrics.get('n_train')} train rows")
            elif o["train_learned"]:
                m = selector_training.selector_model_train_learned2(dataset_slug=o["dataset"])
                self.stderr.write(f"trained {m} on {m.metrics.get('n_train')} train rows")
            run = services.curation_start(
                dataset_slug=o["dataset"],
                split=o["split"],
                campaign_id=o["campaign"],
                selector=o["selector"],
                text_field=o["text_field"] or topfactor.PAPER_DEFAULT_TEXT,
                factor_text=o["factor_text"] or topfactor.PAPER_DEFAULT_FACTOR_TEXT,
                learned_version=o["learned_version"],
                chunk_size=o["chunk_size"],
                enqueue=not o["inline"],
            )
        except DomainError as exc:
            raise CommandError(exc.message)
        if o["inline"]:
            run = services.curation_run_execute(run_id=run.id)
        elif o["wait"]:
            deadline = time.monotonic() + o["timeout"]
            while run.status not in ("done", "failed") and time.monotonic() < deadline:
                time.sleep(0.5)
                run.refresh_from_db()
        run.refresh_from_db()
        out = selectors.run_progress(run)
        out["selection"] = run.stats.get("selection")
        self.stdout.write(json.dumps(out, indent=2))
        if run.status == "failed":
            raise CommandError(f"run {run.id} failed: {run.error}")
