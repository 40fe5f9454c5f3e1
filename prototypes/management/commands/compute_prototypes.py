"""manage.py compute_prototypes --dataset SLUG [...]: score a dataset and store its prototypes.

Runs in this process with a progress bar (shard after shard), or on the Celery gpu queue with
--async. --predictions FILE.csv selects prototypes from precomputed predictions, no model.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Dataset
from infra.errors import DomainError
from prototypes import engine, services
from prototypes.models import PrototypeRun


class Command(BaseCommand):
    help = "Compute the k most confident correctly classified images per class (ImageNet-X prototypes)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", required=True, help="Dataset slug.")
        parser.add_argument("--model", default=engine.DEFAULT_MODEL, help="torchvision classification model name.")
        parser.add_argument(
            "--weights",
            default=engine.DEFAULT_WEIGHTS,
            help="Weights enum member (default IMAGENET1K_V1) or 'none' for random weights.",
        )
        parser.add_argument("--checkpoint", default="", help="Local state-dict file instead of downloaded weights.")
        parser.add_argument("--seed", type=int, default=0, help="Init seed for --weights none.")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        parser.add_argument("--workers", type=int, default=None, help="DataLoader decode workers (default: measured).")
        parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
        parser.add_argument("--decode", default="auto", choices=["auto", "cpu", "device"])
        parser.add_argument("--image-size", type=int, default=None, help="Crop size override (tests, benchmarks).")
        parser.add_argument("--k", type=int, default=engine.DEFAULT_K)
        parser.add_argument(
            "--fill-incorrect",
            action="store_true",
            help="Fill classes with fewer than k correct images from the highest true-class probability.",
        )
        parser.add_argument("--split", default="", choices=["", "train", "val"])
        parser.add_argument("--predictions", default="", help="Predictions CSV (imagenet-x format): no model is run.")
        parser.add_argument("--export-predictions", default="", help="Write every image's prediction to this CSV.")
        parser.add_argument("--shards", type=int, default=1)
        parser.add_argument("--async", dest="run_async", action="store_true", help="Enqueue on the gpu queue.")
        parser.add_argument(
            "--resume",
            type=int,
            default=None,
            metavar="RUN_ID",
            help="Score the unfinished shards of an interrupted run.",
        )
        parser.add_argument("--no-current", action="store_true", help="Do not make the run the dataset's current one.")

    def handle(self, *args, **o) -> None:
        try:
            if o["resume"]:
                return self._resume(o)
            dataset = Dataset.objects.filter(slug=o["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset {o['dataset']!r}")
            if o["predictions"]:
                run = services.prototype_run_from_predictions(
                    dataset=dataset,
                    path=o["predictions"],
                    k=o["k"],
                    fill_incorrect=o["fill_incorrect"],
                    split=o["split"],
                    make_current=not o["no_current"],
                )
                return self._report(run)
            spec = engine.ModelSpec(
                name=o["model"],
                weights=o["weights"],
                checkpoint=o["checkpoint"] or None,
                seed=o["seed"],
                image_size=o["image_size"],
            )
            # Fail before creating a run when the weights cannot be loaded (no network: name --checkpoint).
            engine.load_model(spec)
            run = services.prototype_run_create(
                dataset=dataset,
                model_name=o["model"],
                weights=o["weights"],
                checkpoint=o["checkpoint"],
                seed=o["seed"],
                image_size=o["image_size"],
                k=o["k"],
                fill_incorrect=o["fill_incorrect"],
                split=o["split"],
                shards=o["shards"],
                device=o["device"],
                batch_size=o["batch_size"],
                num_workers=o["workers"],
                dtype=o["dtype"],
                decode=o["decode"],
                make_current=not o["no_current"],
                enqueue=o["run_async"],
            )
            if o["run_async"]:
                self.stdout.write(f"prototype run {run.pk} queued on the gpu queue ({run.shards.count()} shards)")
                return
            self._score(run, o["export_predictions"])
        except engine.EngineError as exc:
            raise CommandError(str(exc))
        except DomainError as exc:
            raise CommandError(exc.message)

    def _resume(self, o) -> None:
        run = PrototypeRun.objects.filter(pk=o["resume"]).first()
        if run is None:
            raise CommandError(f"no prototype run {o['resume']}")
        todo = services.prototype_run_resume(run=run, enqueue=o["run_async"])
        self.stdout.write(f"run {run.pk}: {len(todo)} unfinished shard(s)")
        if not o["run_async"]:
            self._score(run, "")

    def _score(self, run: PrototypeRun, export: str) -> None:
        from tqdm import tqdm

        run.refresh_from_db()
        bar = tqdm(
            total=run.images_total,
            initial=run.images_done,
            unit="img",
            desc=f"run {run.pk}",
            file=self.stderr._out,
            dynamic_ncols=True,
        )
        writer = engine.PredictionWriter(export) if export else None
        try:
            for shard in run.shards.exclude(status="done").order_by("index"):
                services.prototype_shard_score(
                    shard_id=shard.pk, on_progress=bar.update, merge_inline=True, sink=writer
                )
        finally:
            bar.close()
            if writer:
                writer.close()
        run.refresh_from_db()
        if run.status == "merging":
            run = services.prototype_run_merge(run_id=run.pk)
        self._report(run)
        if export:
            self.stdout.write(f"predictions written to {export}")

    def _report(self, run: PrototypeRun) -> None:
        run.refresh_from_db()
        if run.status == "failed":
            raise CommandError(f"prototype run {run.pk} failed: {run.error}")
        self.stdout.write(
            f"prototype run {run.pk} {run.status}: {run.images_scored} scored, {run.images_skipped} skipped"
            + (f" {run.skipped_reasons}" if run.skipped_reasons else "")
            + (f", {run.images_per_s:.1f} images/s" if run.images_per_s else "")
            + f", weights {run.weights_id}"
            + (", current" if run.is_current else "")
        )
        if run.short_classes:
            self.stdout.write(
                f"{len(run.short_classes)} class(es) with fewer than {run.k} correct images"
                + (" (filled from incorrect ones)" if run.fill_incorrect else "")
            )
