"""Agreement of our selectors with the published top factors on the val split (prints JSON).

The paper rule is evaluated with each text/factor-text variant; the learned selector is trained
on the TRAIN split's published top factors only (or a stored version is reused) and evaluated on
val. Nothing is fitted or tuned on val.
"""

from __future__ import annotations

import json
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Split
from curation import services, topfactor
from curation.agreement import agreement
from curation.models import SelectorModel
from infra.embeddings import embed_texts, load_nlp, model_info
from review.selectors import final_annotations


class Command(BaseCommand):
    help = "Share of val images (2+ factors) whose chosen top factor equals the published one, per selector."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="imagenet-x")
        parser.add_argument(
            "--learned-model", type=int, default=None, help="SelectorModel id (default: latest or train one)"
        )
        parser.add_argument("--retrain", action="store_true", help="train a new learned selector version first")
        parser.add_argument("--no-confusion", action="store_true")

    def handle(self, *args, **o):
        ds = Dataset.objects.filter(slug=o["dataset"]).first()
        if ds is None:
            raise CommandError(f"no dataset {o['dataset']!r}")
        rows = list(
            final_annotations(dataset_id=ds.id, split=Split.VAL)
            .exclude(reference_top_factor="")
            .values_list("justification", "one_word", "reference_top_factor", *FACTOR_KEYS)
        )
        if not rows:
            raise CommandError(f"dataset {ds.slug} has no val annotations with a published top factor")
        t0 = time.perf_counter()
        nlp = load_nlp(settings.SPACY_MODEL)
        mask = np.array([r[3:] for r in rows], dtype=bool)
        ref = np.array([FACTOR_KEYS.index(r[2]) for r in rows])
        vecs = {
            f: embed_texts(nlp, [topfactor.annotation_text(r[0], r[1], f) for r in rows])[0]
            for f in topfactor.TEXT_FIELDS
        }
        fvecs = {f: topfactor.factor_vectors(nlp, f) for f in topfactor.FACTOR_TEXTS}
        results = []
        for tf in topfactor.TEXT_FIELDS:
            for ft in topfactor.FACTOR_TEXTS:
                pred = topfactor.paper_select(vecs[tf], mask, fvecs[ft])
                results.append(
                    {
                        "selector": "paper",
                        "version": topfactor.PAPER_SELECTOR_VERSION,
                        "text_field": tf,
                        "factor_text": ft,
                        **agreement(pred, ref, mask),
                    }
                )
        model_row = None
        if o["learned_model"]:
            model_row = SelectorModel.objects.filter(pk=o["learned_model"]).first()
            if model_row is None:
                raise CommandError(f"no selector model {o['learned_model']}")
        elif not o["retrain"]:
            model_row = (
                SelectorModel.objects.filter(name="learned", params__dataset=ds.slug).order_by("-version").first()
            )
        if model_row is None:
            model_row = services.selector_model_train(dataset_slug=ds.slug)
        learned = services._learned(model_row.path, model_row.sha256)
        pred = learned.select(vecs[learned.text_field], mask, fvecs[learned.factor_text])
        results.append(
            {
                "selector": "learned",
                "version": model_row.params.get("selector_version"),
                "model": f"{model_row.name} v{model_row.version}",
                "trained_on": model_row.params.get("split"),
                "estimator": model_row.params.get("estimator"),
                "features": model_row.params.get("features"),
                "text_field": learned.text_field,
                "factor_text": learned.factor_text,
                "train_metrics": model_row.metrics,
                **agreement(pred, ref, mask),
            }
        )
        # Baseline for scale: always pick the selected factor that is most often the published top
        # factor in TRAIN (a frequency prior, no text at all).
        prior = self._train_prior(ds)
        pred = topfactor.masked_argmax(np.broadcast_to(prior, mask.shape), mask)
        results.append(
            {"selector": "train-frequency-prior", "text_field": None, "factor_text": None, **agreement(pred, ref, mask)}
        )
        if o["no_confusion"]:
            for r in results:
                r.pop("confusion")
        out = {
            "dataset": ds.slug,
            "split": "val",
            "images": len(rows),
            "images_multi_factor": int((mask.sum(1) >= 2).sum()),
            "spacy_model": model_info(nlp),
            "seconds": round(time.perf_counter() - t0, 2),
            "selectors": results,
        }
        self.stdout.write(json.dumps(out, indent=2))

    @staticmethod
    def _train_prior(ds) -> np.ndarray:
        tops = final_annotations(dataset_id=ds.id, split=Split.TRAIN).exclude(reference_top_factor="")
        counts = dict.fromkeys(FACTOR_KEYS, 0)
        for k in tops.values_list("reference_top_factor", flat=True):
            counts[k] += 1
        return np.array([counts[k] for k in FACTOR_KEYS], dtype=float)
