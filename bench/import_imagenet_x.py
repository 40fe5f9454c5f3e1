"""Time `import_imagenet_x` into an empty PostgreSQL database and print JSON.

    .venv/bin/python bench/import_imagenet_x.py [--server postgres://postgres@127.0.0.1:5432]

Creates a scratch database (fov_bench_import), migrates it, then measures:
- the bulk import of the whole release (the figure; goal: under 120 s on a 2-core machine);
- a second run (idempotence: must create nothing);
- the baseline, measured in the same run: the naive way, one Annotation.save() plus one
  AnnotationVersion.save() per record, on the first 2,000 val records, as rows per second.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "fov_bench_import"
GOAL_S = 120.0
BASELINE_N = 2000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = ap.parse_args()
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    os.environ.update(DATABASE_URL=f"{args.server}/{DB}", TESTING="1", DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction

        from catalog.factors import FACTOR_KEYS
        from catalog.importers import RELEASE_NAME, read_release
        from catalog.models import Annotation, AnnotationVersion, Image
        from catalog.services import imagenet_x_import

        call_command("migrate", verbosity=0)
        first = imagenet_x_import()
        second = imagenet_x_import()

        # Baseline: per-row ORM saves into the same (now full) tables, rolled back afterwards.
        release = read_release()
        recs = release.records["val"][:BASELINE_N]
        images = dict(Image.objects.filter(file_name__in=[r.file_name for r in recs]).values_list("file_name", "id"))
        t0 = time.perf_counter()
        with transaction.atomic():
            Annotation.objects.filter(image_id__in=images.values()).delete()
            t0 = time.perf_counter()
            for r in recs:
                a = Annotation(
                    image_id=images[r.file_name],
                    source="imported",
                    source_release=RELEASE_NAME,
                    status="accepted",
                    justification=r.justification,
                    one_word=r.one_word,
                    reference_top_factor=r.top_factor,
                    **dict(zip(FACTOR_KEYS, r.flags, strict=True)),
                )
                a.save()
                AnnotationVersion(annotation=a, version=1, data=a.snapshot(), reason="import").save()
            baseline_s = time.perf_counter() - t0
            transaction.set_rollback(True)
        connection.close()
    finally:
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")

    # Rows written per annotation record: the Annotation, its version and (almost always) its Image.
    rows = first.rows_created + first.created["annotations"]  # + AnnotationVersion rows
    baseline_rows_per_s = 2 * BASELINE_N / baseline_s
    bulk_rows_per_s = rows / first.seconds
    print(
        json.dumps(
            {
                "figure": "import_imagenet_x wall time into an empty PostgreSQL database",
                "seconds": round(first.seconds, 2),
                "unit": "s",
                "goal_s": GOAL_S,
                "within_goal": first.seconds < GOAL_S,
                "rows_written": rows,
                "rows_per_s": round(bulk_rows_per_s),
                "created": first.created,
                "second_run_seconds": round(second.seconds, 2),
                "second_run_created": second.rows_created,
                "baseline": f"per-row ORM save() of Annotation + AnnotationVersion, first {BASELINE_N} val records",
                "baseline_rows_per_s": round(baseline_rows_per_s),
                "baseline_extrapolated_s": round(rows / baseline_rows_per_s, 1),
                "ratio_bulk_vs_baseline": round(bulk_rows_per_s / baseline_rows_per_s, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
