"""Build a release of the whole imported ImageNet-X data, streaming from PostgreSQL; print JSON.

    .venv/bin/python bench/exports.py [--database-url postgres://postgres@127.0.0.1:5432/fov_exp]

Needs the release imported in that database (`manage.py import_imagenet_x`; imported here if
missing). Curation runs holding every final annotation unchanged (top factor = the published
one) are made here for two sizes: the first half of the images (by id) and all of them
(60,101 annotations). Each measurement runs in a fresh subprocess so that its peak memory
(ru_maxrss) is its own:
- `baseline`: the same process up to the build (Django set up, connected, release created) and
  a bare streaming read of the full run's rows (the floor for any build: the database cost);
- `half` and `full`: release_build (every file, datasheet, Croissant, MANIFEST, the .tar.gz)
  timed from start to the release row saying `built`.
The figures: the full build's wall time against the 15 s goal, and the peak-memory growth from
half to full size against the growth in rows (2x rows should not mean 2x memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_S = 15.0


def _setup(database_url: str, media_root: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "MEDIA_ROOT": media_root,
            "PYTHONPATH": str(ROOT),
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)  # builds run in-process here; nothing is enqueued
    import django

    django.setup()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Highest resident set size seen while the build runs (sampled every 5 ms).

    ru_maxrss alone would show the import-time peak (Django, numpy...), which hides the build.
    """

    def __init__(self) -> None:
        import threading

        self.peak = self.start = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    _setup(args.database_url, args.media_root)
    from django.contrib.auth import get_user_model

    from curation.models import CuratedImage, CurationRun
    from exports import services
    from exports.models import Release

    run = CurationRun.objects.get(pk=args.run)
    user, _ = get_user_model().objects.get_or_create(username="bench-exports")
    version = f"0.0.{int(time.time())}-bench.{args.mode}"
    release = services.release_create(dataset=run.dataset, version=version, curation_run=run, created_by=user)
    sampler = RssSampler().__enter__()
    t0 = time.perf_counter()
    if args.mode == "baseline":
        n = 0
        rows = (
            CuratedImage.objects.filter(run=run)
            .order_by("image_id")
            .values_list(
                "image__file_name", "image__image_class__index", "justification", "one_word", "top_factor", "pose"
            )
        )
        for _ in rows.iterator(chunk_size=5000):
            n += 1
        status = "read only"
    else:
        started = services.release_build_start(release_id=release.pk, user=user, enqueue=False)
        built = services.release_build(release_id=release.pk, token=started.build_token)
        assert built is not None and built.status == "built", Release.objects.get(pk=release.pk).error
        n = built.total
        status = built.status
        archive_mib = built.archive_size / 2**20
    seconds = time.perf_counter() - t0
    sampler.__exit__(None, None, None)
    out = {
        "mode": args.mode,
        "rows": n,
        "seconds": round(seconds, 3),
        "rss_at_start_mib": round(sampler.start, 1),
        "peak_rss_mib": round(sampler.peak, 1),
        "growth_mib": round(sampler.peak - sampler.start, 1),
        "process_maxrss_mib": round(_peak_mib(), 1),
        "status": status,
    }
    if args.mode != "baseline":
        out["archive_mib"] = round(archive_mib, 2)
    # Not published: a bench release can be removed (with its files) so the database stays clean.
    release.refresh_from_db()
    import shutil

    shutil.rmtree(services.release_dir(release), ignore_errors=True)
    release.delete()
    print(json.dumps(out))


def _runs(database_url: str, media_root: str) -> dict[str, int]:
    """Done curation runs copying the final annotations: all images and the first half."""
    _setup(database_url, media_root)
    from django.core.management import call_command
    from django.db.models import Max

    from catalog.factors import FACTOR_KEYS
    from catalog.models import Dataset
    from catalog.services import imagenet_x_import
    from curation.models import CuratedImage, CurationRun
    from review.selectors import final_annotations

    call_command("migrate", verbosity=0)
    if not Dataset.objects.filter(slug="imagenet-x").exists():
        imagenet_x_import()
    ds = Dataset.objects.get(slug="imagenet-x")
    ids: dict[str, int] = {}
    final = list(final_annotations(dataset_id=ds.id).values_list("id", "image_id"))
    half_limit = sorted(i for _, i in final)[len(final) // 2 - 1]
    for name, limit in (("full", None), ("half", half_limit)):
        method = f"bench-exports: final annotations unchanged ({name})"
        run = CurationRun.objects.filter(dataset=ds, status="done", params__method=method).first()
        if run is None:
            run = CurationRun.objects.create(dataset=ds, status="running", params={"method": method})
            qs = final_annotations(dataset_id=ds.id)
            rows = []
            for a in qs.iterator(chunk_size=5000):
                if limit is not None and a.image_id > limit:
                    continue
                rows.append(
                    CuratedImage(
                        run=run,
                        image_id=a.image_id,
                        annotation_id=a.id,
                        justification=a.justification,
                        one_word=a.one_word,
                        top_factor=a.reference_top_factor,
                        **{k: getattr(a, k) for k in FACTOR_KEYS},
                    )
                )
            CuratedImage.objects.bulk_create(rows, batch_size=5000)
            CurationRun.objects.filter(pk=run.pk).update(status="done", total=len(rows), processed=len(rows))
        ids[name] = run.pk
    assert CuratedImage.objects.filter(run_id=ids["full"]).aggregate(m=Max("id"))["m"]
    return ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fov_exp")
    )
    ap.add_argument("--media-root", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    ap.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    media = args.media_root or tempfile.mkdtemp(prefix="bench-exports-")
    ids = _runs(args.database_url, media)

    def measure(mode: str, run: int) -> dict:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--mode",
            mode,
            "--run",
            str(run),
            "--database-url",
            args.database_url,
            "--media-root",
            media,
        ]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if res.returncode:
            sys.stderr.write(res.stderr)
            raise SystemExit(f"{mode} failed")
        return json.loads(res.stdout.strip().splitlines()[-1])

    baseline = measure("baseline", ids["full"])
    half = measure("half", ids["half"])
    full = measure("full", ids["full"])
    rows_ratio = full["rows"] / half["rows"]
    print(
        json.dumps(
            {
                "figure": "release build of the full imported ImageNet-X data (60,101 annotations), streaming from PostgreSQL",
                "value": full["seconds"],
                "unit": "s",
                "goal_s": GOAL_S,
                "ratio_to_goal": round(full["seconds"] / GOAL_S, 3),
                "baseline": {
                    "what": "bare streaming read of the same rows in the same kind of process (the database floor)",
                    **baseline,
                },
                "ratio_to_read_floor": round(full["seconds"] / baseline["seconds"], 2) if baseline["seconds"] else None,
                "memory": {
                    "half": half,
                    "full": full,
                    "rows_ratio": round(rows_ratio, 3),
                    "peak_rss_ratio_full_over_half": round(full["peak_rss_mib"] / half["peak_rss_mib"], 3),
                    "growth_ratio_full_over_half": round(full["growth_mib"] / half["growth_mib"], 3)
                    if half["growth_mib"] > 0
                    else None,
                },
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "note": "2 cores shared with other jobs",
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
