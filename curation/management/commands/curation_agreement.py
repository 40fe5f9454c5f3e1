"""Agreement of our selectors with the published top factors on the val split (prints JSON).

The paper rule is evaluated with each text/factor-text variant; the learned selectors (learned-1,
learned-2) are trained on the TRAIN split's published top factors only (or a stored version is
reused) and evaluated on val, each with per-factor precision and recall. Their K-fold
cross-validation agreement on train is reported beside (the figure learned-2's settings and the
default learned version were chosen by). Nothing is fitted or tuned on val.
"""

from __future__ import annotations

import json
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Split
from curation import selector_training, services, topfactor, topfactor2
from curation.agreement import agreement, per_factor, wilson_interval
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
        parser.add_argument(
            "--learned2-model", type=int, default=None, help="learned-2 SelectorModel id (default: latest or train one)"
        )
        parser.add_argument("--retrain", action="store_true", help="train new learned selector versions first")
        parser.add_argument("--folds", type=int, default=5, help="cross-validation folds on train (0 = no CV)")
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
        results, preds = [], []
        for tf in topfactor.TEXT_FIELDS:
            for ft in topfactor.FACTOR_TEXTS:
                pred = topfactor.paper_select(vecs[tf], mask, fvecs[ft])
                preds.append(pred)
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
        if selector_training.version_of(model_row) != topfactor.LEARNED_SELECTOR_VERSION:
            raise CommandError(f"selector model {model_row.id} is not a {topfactor.LEARNED_SELECTOR_VERSION} model")
        learned = services._learned(model_row.path, model_row.sha256)
        pred = learned.select(vecs[learned.text_field], mask, fvecs[learned.factor_text])
        preds.append(pred)
        results.append(
            {
                "selector": "learned",
                "version": model_row.params.get("selector_version") or topfactor.LEARNED_SELECTOR_VERSION,
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
        row2 = self._learned2_row(ds, o)
        model2 = selector_training.load_learned2(row2.path, row2.sha256)
        justifications, one_words = [r[0] or "" for r in rows], [r[1] or "" for r in rows]
        pred = model2.select(
            justifications, one_words, mask, vectors=topfactor2.embed_pair(nlp, justifications, one_words)
        )
        preds.append(pred)
        results.append(
            {
                "selector": "learned",
                "version": topfactor2.VERSION,
                "default_learned_version": selector_training.DEFAULT_LEARNED_VERSION == topfactor2.VERSION,
                "model": f"{row2.name} v{row2.version}",
                "trained_on": row2.params.get("split"),
                "trained_on_detail": row2.params.get("trained_on"),
                "estimator": row2.params.get("estimator"),
                "features": row2.params.get("features"),
                "text_field": row2.params.get("text_field"),
                "factor_text": row2.params.get("factor_text"),
                "train_metrics": row2.metrics,
                **agreement(pred, ref, mask),
            }
        )
        # Baseline for scale: always pick the selected factor that is most often the published top
        # factor in TRAIN (a frequency prior, no text at all).
        prior = self._train_prior(ds)
        pred = topfactor.masked_argmax(np.broadcast_to(prior, mask.shape), mask)
        preds.append(pred)
        results.append(
            {"selector": "train-frequency-prior", "text_field": None, "factor_text": None, **agreement(pred, ref, mask)}
        )
        for r in results:
            r["share_ci95"] = wilson_interval(r["agree"], r["images_multi_factor"])
        for r, p in zip(results, preds, strict=True):
            if r["selector"] == "learned":  # the paper variants' per-factor figures would be nine more tables
                r["per_factor"] = per_factor(p, ref, mask)
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
        if o["folds"]:
            out["cv_on_train"] = self._cv(ds, nlp, fvecs["wording"], model2.config, o["folds"])
        self.stdout.write(json.dumps(out, indent=2))

    @staticmethod
    def _learned2_row(ds, o) -> SelectorModel:
        if o["learned2_model"]:
            row = SelectorModel.objects.filter(pk=o["learned2_model"], name=topfactor2.VERSION).first()
            if row is None:
                raise CommandError(f"no {topfactor2.VERSION} selector model {o['learned2_model']}")
            return row
        row = None
        if not o["retrain"]:
            row = (
                SelectorModel.objects.filter(name=topfactor2.VERSION, params__dataset=ds.slug)
                .order_by("-version")
                .first()
            )
        return row or selector_training.selector_model_train_learned2(dataset_slug=ds.slug)

    @staticmethod
    def _cv(ds, nlp, fvecs, config, folds: int) -> dict:
        """K-fold agreement on TRAIN (published top factors) of learned-1 and of learned-2's settings."""
        from sklearn.model_selection import KFold

        rows = selector_training.published_train_rows(ds)
        rows = rows.subset(np.nonzero(rows.usable())[0])
        k = min(folds, len(rows))
        if k < 2:
            return {"skipped": f"{len(rows)} usable train rows: too few for cross-validation"}
        vj, vo = topfactor2.embed_pair(nlp, rows.justifications, rows.one_words)
        vboth = embed_texts(
            nlp,
            [topfactor.annotation_text(j, w, "both") for j, w in zip(rows.justifications, rows.one_words, strict=True)],
        )[0]
        out: dict = {"folds": k, "images": len(rows), "metric": "agreement on held-out folds, images with 2+ factors"}
        try:
            out[topfactor2.VERSION] = topfactor2.cross_validate(
                rows, factor_vecs=fvecs, vectors=(vj, vo), configs=[config], folds=k
            )[0]
        except topfactor2.NotTrainable as exc:
            out[topfactor2.VERSION] = {"skipped": str(exc)}
        agree = n = 0
        try:
            for tr, te in KFold(k, shuffle=True, random_state=0).split(np.arange(len(rows))):
                m = topfactor.LearnedSelector.train(
                    vboth[tr], rows.mask[tr], rows.label[tr], fvecs, factor_text="wording", text_field="both"
                )
                a, b = topfactor2.agreement_share(
                    m.select(vboth[te], rows.mask[te], fvecs), rows.label[te], rows.mask[te]
                )
                agree, n = agree + a, n + b
            out[topfactor.LEARNED_SELECTOR_VERSION] = {
                "agree": agree,
                "images_multi_factor": n,
                "share": agree / n if n else None,
            }
        except ValueError as exc:
            out[topfactor.LEARNED_SELECTOR_VERSION] = {"skipped": str(exc)}
        return out

    @staticmethod
    def _train_prior(ds) -> np.ndarray:
        tops = final_annotations(dataset_id=ds.id, split=Split.TRAIN).exclude(reference_top_factor="")
        counts = dict.fromkeys(FACTOR_KEYS, 0)
        for k in tops.values_list("reference_top_factor", flat=True):
            counts[k] += 1
        return np.array([counts[k] for k in FACTOR_KEYS], dtype=float)
