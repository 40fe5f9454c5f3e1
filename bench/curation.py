"""Time the whole curation pipeline on the imported ImageNet-X release and print JSON.

    .venv/bin/python bench/curation.py [--database-url postgres://postgres@127.0.0.1:5432/fov_cur]
                                       [--broker redis://127.0.0.1:6379/6] [--workers 2] [--naive-sample 300]

Needs the release imported in that database (`manage.py import_imagenet_x`; imported here if
missing). Measures, in the same run:
- the figure: wall time of one curation run over all 60,101 final annotations, from
  `curation_start` (planning the chunks) to the run row saying `done` (embeddings, top factors,
  60,101 stored results, statistics and PNG/SVG figures), through real Celery workers
  (subprocesses, queue "curation") on Redis and PostgreSQL. The workers are warmed first
  (spaCy loaded) by a run on a 16-annotation scratch dataset, as long-running workers are;
- the embedding throughput (texts/s) of infra.embeddings.embed_texts on all 60,101 texts;
- the baseline: the naive version, one nlp(text) with spaCy's full pipeline (tagger, parser,
  NER...) plus one CuratedImage.save() per row, timed on a sample and extrapolated linearly to
  60,101 rows (said so in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_S = 20.0
GOAL_RATIO = 10.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fov_cur")
    )
    ap.add_argument("--broker", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--naive-sample", type=int, default=300)
    ap.add_argument("--chunk-size", type=int, default=5000)
    args = ap.parse_args()
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker,
        "TESTING": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    from catalog.factors import FACTOR_KEYS
    from catalog.models import Annotation, Dataset
    from catalog.services import imagenet_x_import
    from config.celery import app
    from curation import services, topfactor
    from curation.models import CuratedImage, CurationRun
    from infra.embeddings import embed_texts, load_nlp

    call_command("migrate", verbosity=0)
    if not Dataset.objects.filter(slug="imagenet-x").exists():
        imagenet_x_import()
    ds = Dataset.objects.get(slug="imagenet-x")
    app.control.purge()

    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "curation",
                "-c",
                "1",
                "--pool",
                "solo",
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"bench{i}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # keep stdout for the JSON; errors still reach stderr
        )
        for i in range(args.workers)
    ]
    try:
        _wait_for_workers(app, args.workers)
        warm = _warmup_dataset()
        for _ in range(args.workers):
            _wait(services.curation_start(dataset_slug=warm, chunk_size=1))

        t0 = time.perf_counter()
        run = services.curation_start(dataset_slug=ds.slug, chunk_size=args.chunk_size)
        t_start = time.perf_counter() - t0
        run = _wait(run)
        whole_s = time.perf_counter() - t0
        assert run.status == "done", run.error
        n = run.total
        assert CuratedImage.objects.filter(run=run).count() == n
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)

    # Embedding throughput alone (this process, one core).
    nlp = load_nlp()
    rows = list(Annotation.objects.filter(image__dataset=ds).values_list("justification", "one_word"))
    texts = [topfactor.annotation_text(j, o, "both") for j, o in rows]
    t = time.perf_counter()
    embed_texts(nlp, texts)
    embed_s = time.perf_counter() - t

    # Naive baseline on a sample: full spaCy pipeline, one nlp(text) and one save per row.
    import spacy

    from infra.embeddings import _model_path

    full = spacy.load(_model_path("en_core_web_md"))
    fvecs = topfactor.factor_vectors(nlp, "wording")
    sample = list(
        Annotation.objects.filter(image__dataset=ds)
        .select_related("image", "image__image_class")
        .order_by("id")[: args.naive_sample]
    )
    scratch = CurationRun.objects.create(dataset=ds, params={"naive_baseline": True}, total=len(sample))
    t = time.perf_counter()
    for a in sample:
        doc = full(topfactor.annotation_text(a.justification, a.one_word, "both"))
        mask = [[bool(getattr(a, k)) for k in FACTOR_KEYS]]
        vec = doc.vector.reshape(1, -1)
        import numpy as np

        top = int(topfactor.paper_select(vec, np.array(mask), fvecs)[0])
        CuratedImage.objects.create(
            run=scratch,
            image_id=a.image_id,
            annotation=a,
            split=a.image.split,
            meta_label=a.image.image_class.meta_label,
            justification=a.justification,
            one_word=a.one_word,
            top_factor=FACTOR_KEYS[top] if top >= 0 else "",
            text_has_vector=bool(doc.has_vector),
            **{k: getattr(a, k) for k in FACTOR_KEYS},
        )
    naive_sample_s = time.perf_counter() - t
    scratch.delete()
    naive_s = naive_sample_s / len(sample) * n

    print(
        json.dumps(
            {
                "benchmark": "curation pipeline on the imported ImageNet-X release",
                "figure": round(whole_s, 2),
                "unit": "s for one whole run (plan, embed, select, store, statistics, figures)",
                "goal": f"< {GOAL_S} s and >= {GOAL_RATIO}x the naive version",
                "annotations": n,
                "workers": args.workers,
                "chunk_size": args.chunk_size,
                "start_s": round(t_start, 2),
                "embedding_texts_per_s": round(n / embed_s),
                "embedding_s": round(embed_s, 2),
                "baseline": {
                    "what": "one nlp(text) with the full en_core_web_md pipeline + one CuratedImage.save() per row",
                    "sample_rows": len(sample),
                    "sample_s": round(naive_sample_s, 2),
                    "extrapolated_s": round(naive_s, 1),
                    "note": "timed on the sample and extrapolated linearly to all rows",
                    "texts_per_s": round(len(sample) / naive_sample_s, 1),
                },
                "ratio": round(naive_s / whole_s, 1),
                "goal_met": whole_s < GOAL_S and naive_s / whole_s >= GOAL_RATIO,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
            },
            indent=2,
        )
    )


def _wait_for_workers(app, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5) or []) >= n:
            return
    raise SystemExit(f"{n} celery workers did not answer within {timeout} s")


def _warmup_dataset() -> str:
    from catalog.factors import FACTOR_KEYS
    from catalog.models import Annotation, Dataset, Image, ImageClass

    ds, created = Dataset.objects.get_or_create(slug="bench-warmup", defaults={"name": "Benchmark warm-up"})
    if created:
        cls = ImageClass.objects.create(dataset=ds, index=0, name="thing")
        for i in range(16):
            img = Image.objects.create(dataset=ds, split="val", image_class=cls, file_name=f"w{i}.JPEG")
            Annotation.objects.create(
                image=img,
                source="imported",
                status="accepted",
                source_release="warmup",
                justification="a dark picture of a dog",
                one_word="dark",
                **{k: k in ("darker", "pose") for k in FACTOR_KEYS},
            )
    return ds.slug


def _wait(run, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in ("done", "failed"):
            return run
        time.sleep(0.05)
    raise SystemExit(f"run {run.id} did not finish in {timeout} s")


if __name__ == "__main__":
    main()
