"""Latency of the dataset explorer's filtered pages on the imported ImageNet-X release; prints JSON.

    .venv/bin/python bench/explorer.py [--database-url postgres://postgres@127.0.0.1:5432/fov_expl]
                                       [--repeats 15] [--out bench/results/explorer.json]

Needs the release imported in that database (imported here if missing) and a finished curation
run (curated here in-process if missing: a few minutes). Measures, in the same run:
- the figure: wall time of a full gallery request (GET /curation/explore/imagenet-x/?<filters>,
  48 images, through Django's test client as a signed-in reviewer: the view, the queries, the
  template) for a mix of filtered pages, each repeated; p50/p95 overall and per filter. The
  count (count.json, fetched by the page after it renders on the final-answer basis) is timed
  on its own, and page + count together;
- the baseline: the obvious ORM version of the same page, `Annotation.objects.filter(pk__in=
  final_annotations(...))` with the filters chained on, `.count()` and an OFFSET page, timed on
  the filters it can express, in the same process against the same database;
- the number of queries of one page at 24 and at 96 images (constant in the page size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILTERS = {
    "val + pose": "split=val&factor=pose",
    "style or darker, dog": "factor=style&factor=darker&mode=any&meta=dog",
    "words: grass": "q=grass",
    "one class": "class=5",
    "published top texture, train": "ref_top=texture&split=train",
    "3+ factors": "nf_min=3",
    "top factor background": "top=background",
    "deep page: background after id 30000": "after=30000&factor=background",
    "run snapshot: val + pose (run page link)": "basis=run&split=val&factor=pose",
}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def summary(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 1),
        "p95_ms": round(pct(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fov_expl")
    )
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "explorer.json"))
    args = ap.parse_args()
    os.environ.update({"DATABASE_URL": args.database_url, "TESTING": "1", "DJANGO_SETTINGS_MODULE": "config.settings"})
    os.environ.pop("CELERY_BROKER_URL", None)  # curate in-process if a run is needed

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q, Subquery
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.factors import FACTOR_KEYS
    from catalog.models import Annotation, Dataset
    from catalog.services import imagenet_x_import
    from curation import services
    from curation.explorer.selectors import latest_done_run
    from review.selectors import final_annotations

    call_command("migrate", verbosity=0)
    if not Dataset.objects.filter(slug="imagenet-x").exists():
        imagenet_x_import()
    ds = Dataset.objects.get(slug="imagenet-x")
    run = latest_done_run(ds.pk)
    if run is None:
        r = services.curation_start(dataset_slug=ds.slug, enqueue=False)
        run = services.curation_run_execute(run_id=r.id)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    user, _ = get_user_model().objects.get_or_create(username="bench-explorer")
    user.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    client = Client()
    client.force_login(user)
    base = f"/curation/explore/{ds.slug}/"

    def get(path: str) -> float:
        t = time.perf_counter()
        r = client.get(path)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, (path, r.status_code)
        return ms

    for qs in FILTERS.values():  # warm: templates, connections, caches
        get(f"{base}?{qs}")
    page, count, both = {}, {}, {}
    for _ in range(args.repeats):
        for name, qs in FILTERS.items():
            p = get(f"{base}?{qs}")
            c = get(f"{base}count.json?{qs}") if "basis=run" not in qs else 0.0
            page.setdefault(name, []).append(p)
            count.setdefault(name, []).append(c)
            both.setdefault(name, []).append(p + c)

    # Baseline: the obvious ORM page (filters chained on the final answers, count, OFFSET).
    def naive(qs: str, offset: int = 0) -> float:
        from django.http import QueryDict

        d = QueryDict(qs)
        final = final_annotations(dataset_id=ds.pk, split=d.get("split") or None)
        q = Annotation.objects.filter(pk__in=Subquery(final.values("pk")))
        factors = d.getlist("factor")
        if factors:
            cond = Q(**{factors[0]: True})
            for k in factors[1:]:
                cond = (cond & Q(**{k: True})) if d.get("mode", "all") == "all" else (cond | Q(**{k: True}))
            q = q.filter(cond)
        if d.get("meta"):
            q = q.filter(image__image_class__meta_label=d["meta"])
        if d.get("class"):
            q = q.filter(image__image_class__index=int(d["class"]))
        if d.get("ref_top"):
            q = q.filter(reference_top_factor=d["ref_top"])
        if d.get("q"):
            q = q.filter(Q(justification__icontains=d["q"]) | Q(one_word__icontains=d["q"]))
        q = q.select_related("image", "image__image_class", "annotator").order_by("image_id")
        t = time.perf_counter()
        q.count()
        list(q[offset : offset + 48])
        return (time.perf_counter() - t) * 1000

    naive_filters = {
        "val + pose": ("split=val&factor=pose", 0),
        "style or darker, dog": ("factor=style&factor=darker&mode=any&meta=dog", 0),
        "words: grass": ("q=grass", 0),
        "one class": ("class=5", 0),
        "published top texture, train": ("ref_top=texture&split=train", 0),
        "deep page: background (offset 14,400)": ("factor=background", 14400),
    }
    naive_ms: dict[str, list[float]] = {}
    repeats_naive = max(3, args.repeats // 3)
    for _ in range(repeats_naive):
        for name, (qs, offset) in naive_filters.items():
            naive_ms.setdefault(name, []).append(naive(qs, offset))

    queries = {}
    for per in (24, 96):
        with CaptureQueriesContext(connection) as ctx:
            client.get(f"{base}?split=val&factor=pose&per={per}")
        queries[per] = len(ctx.captured_queries)

    all_page = [v for vs in page.values() for v in vs]
    all_both = [v for vs in both.values() for v in vs]
    all_count = [v for name, vs in count.items() if "run snapshot" not in name for v in vs]
    all_naive = [v for vs in naive_ms.values() for v in vs]
    out = {
        "benchmark": "explorer filtered gallery page (48 images) on the ImageNet-X import",
        "command": f"bench/explorer.py --repeats {args.repeats}",
        "images": Annotation.objects.filter(image__dataset=ds).count(),
        "curation_run": run.pk,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Other jobs share the machine: the 1/5/15-minute load averages when the run ended.
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "database": connection.vendor,
        "figure": {
            "what": "p95 of a full gallery request over the filters below (view + queries + template)",
            "page": summary(all_page),
            "count_json": summary(all_count),
            "page_plus_count": summary(all_both),
        },
        "per_filter_page": {k: summary(v) for k, v in page.items()},
        "per_filter_count": {k: summary(v) for k, v in count.items() if "run snapshot" not in k},
        "baseline": {
            "what": "ORM: filters chained on Annotation pk__in final_annotations, .count() and an OFFSET "
            "page (no template); the filters it can express",
            "all": summary(all_naive),
            "per_filter": {k: summary(v) for k, v in naive_ms.items()},
        },
        "queries_per_page": {"per=24": queries[24], "per=96": queries[96]},
        "filters": FILTERS,
        "unit": "ms",
        "factor_keys": len(FACTOR_KEYS),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
