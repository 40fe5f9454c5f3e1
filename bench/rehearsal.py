"""The whole pipeline rehearsed end to end at the dataset's size, with faults injected.

    .venv/bin/python bench/rehearsal.py --images 60000 --out bench/results/rehearsal_60k.json

Stages, each timed (wall seconds, throughput, peak RSS of the processes involved):

1. generate  - N small JPEGs in ImageFolder layout (1,000 classes), named after the published
               ImageNet-X records (val first, then train), so each image has a real answer;
2. ingest    - catalog's images_ingest over both folders (every file decoded with Pillow);
3. prototypes - a predictions CSV (file_name, predicted_class, predicted_probability) -> a run;
4. campaign  - every image, 10 % with three independent annotations;
5. annotate  - simulated annotators over HTTP (gunicorn, token auth), each answering with the
               published record of the image it is given; they retry what failed;
6. after-submit backlog - review's after-submit checks (the coalesced list of answers, handled
               in batches by drain tasks) finished by the Celery workers;
7. review    - the reviewer's audit sample accepted; every multi-annotated image adjudicated
               (majority answer, as a reviewer settles it);
8. curation  - the Celery pipeline (chunks, then finalise) on the workers;
9. release   - built by a worker, then published;
10. evaluation - the predictions file evaluated against the published release (a Celery worker).

Faults (on by default; --no-faults for the undisturbed run): Redis restarted during annotate
(append-only file on, as in service: queued messages survive), one gunicorn worker SIGKILLed,
the web processes' PostgreSQL connections ended with pg_terminate_backend, and a Celery worker
SIGKILLed during the backlog and during curation (each restarted after a second, as a process
supervisor would). Everything listens on 127.0.0.1 only; Redis is a private instance on a free
port, the database is created from scratch (unless --reuse-database: the test suite's).

Checks at the end (the "nothing lost" list in the JSON): annotations the clients saw accepted =
user annotations stored = the campaign's planned total = n_done summed; no (image, annotator)
pair twice; a retried submit never made a second annotation; every image has exactly one final
answer; the release holds one row per image; the after-submit list and queue are empty.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._shared import free_port, recreate_database  # noqa: E402

DATASET = "rehearsal"
ANSWER_FALLBACK = {"factors": ["pose"], "nothing_differs": False, "justification": "pose", "one_word": "pose"}


# --- process helpers ------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return out


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RssMonitor:
    """Peak resident memory of each group of processes (summed over the group), per stage."""

    def __init__(self) -> None:
        self.groups: dict[str, callable] = {}
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pids in list(self.groups.items()):
                try:
                    total = sum(_rss_kib(p) for p in pids())
                except Exception:  # a process list that changes under us: next tick
                    continue
                self.peak[name] = max(self.peak.get(name, 0), total)

    def reset(self) -> dict[str, float]:
        out = {k: round(v / 1024, 1) for k, v in self.peak.items()}
        self.peak = {}
        return out

    def stop(self) -> None:
        self._stop.set()


class Services:
    """Private Redis, gunicorn and Celery workers for the rehearsal (127.0.0.1 only)."""

    def __init__(self, *, database_url: str, workdir: Path, web_workers: int, web_threads: int) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.web_port = free_port()
        self.broker = f"redis://127.0.0.1:{self.redis_port}/0"
        self.database_url = database_url
        self.web_workers, self.web_threads = web_workers, web_threads
        self.redis: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.celery: list[subprocess.Popen] = []
        sep = "&" if "?" in database_url else "?"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "CELERY_BROKER_URL": self.broker,
            "MEDIA_ROOT": str(workdir / "media"),
            "VAR_DIR": str(workdir / "var"),
            # A task whose worker was SIGKILLed stays unacknowledged; the broker hands it to
            # another worker after this many seconds (an hour in service; a minute here).
            "CELERY_VISIBILITY_TIMEOUT": str(60),
            # Every connection says who it is, so the fault injector ends only the web's.
            "DATABASE_URL": f"{database_url}{sep}application_name=rehearsal-driver",
        }
        self.web_env = {**self.env, "DATABASE_URL": f"{database_url}{sep}application_name=rehearsal-web"}
        self.worker_env = {**self.env, "DATABASE_URL": f"{database_url}{sep}application_name=rehearsal-worker"}

    # Redis with an append-only file, as a broker in service runs: a restart keeps the queue.
    def redis_start(self) -> None:
        (self.workdir / "redis").mkdir(exist_ok=True)
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--dir",
                str(self.workdir / "redis"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def redis_restart(self, down_seconds: float = 1.0) -> None:
        assert self.redis is not None
        self.redis.send_signal(signal.SIGTERM)  # a clean shutdown flushes the append-only file
        self.redis.wait(timeout=30)
        time.sleep(down_seconds)
        self.redis_start()

    def web_start(self) -> None:
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                str(self.web_workers),
                "--threads",
                str(self.web_threads),
                "-k",
                "gthread",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "5",
            ],
            cwd=REPO,
            env=self.web_env,
        )
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def web_pids(self) -> list[int]:
        return [self.web.pid, *_children(self.web.pid)] if self.web else []

    def kill_web_worker(self) -> int:
        workers = _children(self.web.pid)
        victim = random.Random(1).choice(sorted(workers))
        os.kill(victim, signal.SIGKILL)  # the master forks a replacement
        return victim

    def celery_start(self, n: int = 1, queues: str = "default,curation,gpu,exports") -> None:
        for _ in range(n):
            self.celery.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        queues,
                        "--pool",
                        "solo",
                        "-l",
                        "WARNING",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "-n",
                        f"rehearsal{len(self.celery)}@%h",
                    ],
                    cwd=REPO,
                    env=self.worker_env,
                    stdout=subprocess.DEVNULL,  # the banner; warnings go to stderr
                )
            )

    def celery_pids(self) -> list[int]:
        return [p.pid for p in self.celery if p.poll() is None]

    def kill_celery_worker(self) -> int:
        """SIGKILL one worker mid-task, then start a replacement a second later (the supervisor)."""
        alive = [p for p in self.celery if p.poll() is None]
        victim = alive[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.celery.remove(victim)
        time.sleep(1.0)
        self.celery_start(1)
        return victim.pid

    def terminate_web_connections(self) -> int:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'rehearsal-web' AND datname = current_database()"
            ).fetchall()
        return len(rows)

    def stop(self) -> None:
        for p in [self.web, *self.celery]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in [self.web, *self.celery]:
            if p is not None:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(timeout=30)


# --- data -----------------------------------------------------------------------------------
def _records(n: int):
    """The first n published ImageNet-X records (val, then train) and the release's classes."""
    from catalog.importers import read_release

    rel = read_release()
    val, train = rel.records["val"], rel.records["train"]
    # Both splits in their published proportion (48,868 : 11,233), so that a 3,000-image
    # rehearsal exercises train images too.
    n_train = min(len(train), round(n * len(train) / (len(val) + len(train))))
    n_val = min(len(val), n - n_train)
    return rel.classes, [("val", r) for r in val[:n_val]] + [("train", r) for r in train[:n_train]]


def _write_jpegs(args: tuple[str, list[tuple[str, str, int]]]) -> int:
    from PIL import Image as PILImage

    root, items = args
    for rel, seed in items:
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        img = PILImage.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3)))
        img.paste(tuple(rng.randrange(256) for _ in range(3)), (rng.randrange(16), rng.randrange(16), 24, 24))
        img.save(path, "JPEG", quality=70)
    return len(items)


def generate(root: Path, classes, records, procs: int) -> None:
    from multiprocessing import Pool

    wnid = {c.index: c.wnid for c in classes}
    items = [(f"{wnid[r.class_index]}/{r.file_name}", i) for i, (_split, r) in enumerate(records)]
    chunks = [(str(root), items[i : i + 2000]) for i in range(0, len(items), 2000)]
    with Pool(procs) as pool:
        pool.map(_write_jpegs, chunks)


# --- the annotators -------------------------------------------------------------------------
class Annotators:
    """Simulated people over HTTP: next, then submit the published answer of that image.

    Each retries a request that failed on the way (connection reset by a killed worker, 5xx
    while the database connection was ended) with the same body: a retried submit must come
    back with the same annotation, never a second one.
    """

    def __init__(self, base: str, tokens: list[str], campaign: int, answers: dict[str, dict], concurrency: int):
        self.base, self.tokens, self.campaign, self.answers = base, tokens, campaign, answers
        self.concurrency = concurrency
        self.accepted: dict[int, int] = {}  # assignment id -> annotation id the server answered
        self.retries = Counter()
        self.statuses = Counter()
        self.duplicate_answers = 0
        self.lat: list[float] = []

    async def _post(self, client, url: str, headers: dict, body: dict | None, what: str):
        import httpx

        for attempt in range(30):
            t0 = time.perf_counter()
            try:
                r = await client.post(url, headers=headers, json=body)
            except httpx.HTTPError as exc:
                self.retries[f"{what} {type(exc).__name__}"] += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
                continue
            self.lat.append(time.perf_counter() - t0)
            self.statuses[f"{what} {r.status_code}"] += 1
            if r.status_code >= 500:
                self.retries[f"{what} {r.status_code}"] += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
                continue
            return r
        raise RuntimeError(f"{what} kept failing: {url}")

    async def person(self, client, token: str) -> None:
        headers = {"Authorization": f"Token {token}"}
        while True:
            r = await self._post(client, f"/api/annotate/campaigns/{self.campaign}/next", headers, None, "next")
            if r.status_code == 204:
                return
            if r.status_code == 409:  # a concurrent request of ours (a retry raced): ask again
                await asyncio.sleep(0.05)
                continue
            if r.status_code != 200:
                raise RuntimeError(f"next answered {r.status_code}: {r.text[:200]}")
            a = r.json()
            # The API shows no file name (it would give gold images away): the people's answer
            # sheet is keyed by image id.
            body = vary(self.answers.get(a["image"]["id"], ANSWER_FALLBACK), a["image"]["id"], token)
            r = await self._post(client, f"/api/annotate/assignments/{a['id']}/submit", headers, body, "submit")
            if r.status_code not in (200, 201):
                raise RuntimeError(f"submit answered {r.status_code}: {r.text[:200]}")
            ann = r.json()["annotation"]
            if a["id"] in self.accepted and self.accepted[a["id"]] != ann:
                self.duplicate_answers += 1
            self.accepted[a["id"]] = ann

    async def run(self) -> None:
        import logging

        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30.0) as client:
            await asyncio.gather(*(self.person(client, t) for t in self.tokens))


def vary(body: dict, image_id: int, who: str) -> dict:
    """Another person's answer to the same image: the published one, or in one case out of four
    one factor more or less (seeded by image and person), so that overlap images disagree as
    often as people do and adjudication has work."""
    from catalog.factors import FACTOR_KEYS

    rng = random.Random(f"{image_id}:{who}")
    if rng.random() >= 0.25:
        return body
    factors = list(body["factors"])
    if factors and rng.random() < 0.5:
        factors.remove(rng.choice(factors))
    else:
        factors.append(rng.choice([k for k in FACTOR_KEYS if k not in factors] or FACTOR_KEYS))
    factors = [k for k in FACTOR_KEYS if k in set(factors)]
    main = body.get("main_factor", "")
    main = main if main in factors else (factors[0] if factors else "")
    return {**body, "factors": factors, "nothing_differs": not factors, "main_factor": main}


def _answer_body(record) -> dict:
    from catalog.factors import FACTOR_KEYS

    factors = [k for k, on in zip(FACTOR_KEYS, record.flags, strict=True) if on]
    justification = (record.justification or "").strip()[:2000] or "as published"
    one_word = " ".join((record.one_word or "").split()[:3])[:40] or (factors[0] if factors else "none")
    # Campaigns ask for the main factor: the published top factor where it is one of the ticks.
    top = getattr(record, "top_factor", "") or ""
    return {
        "factors": factors,
        "nothing_differs": not factors,
        "justification": justification,
        "one_word": one_word,
        "main_factor": top if top in factors else (factors[0] if factors else ""),
    }


# --- stages ---------------------------------------------------------------------------------
class Stages:
    def __init__(self, monitor: RssMonitor) -> None:
        self.monitor = monitor
        self.rows: dict[str, dict] = {}
        self.partial_out = ""

    def run(self, name: str, fn, *, units: str = "", count=None):
        print(f"[rehearsal] {name} ...", file=sys.stderr, flush=True)
        self.monitor.reset()
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        n = count(out) if count else None
        row = {"wall_s": round(wall, 2), "peak_rss_mib": self.monitor.reset()}
        if n is not None:
            row.update({"items": n, "unit": units, "per_s": round(n / wall, 1) if wall else None})
        self.rows[name] = row
        print(f"[rehearsal] {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
        if self.partial_out:  # a long run cut short still leaves the stages it finished
            Path(self.partial_out).write_text(json.dumps({"partial": True, "stages": self.rows}, indent=2) + "\n")
        return out


def _wait(pred, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def _wait_status(model, pk: int, what: str, timeout: float, *, ok: str = "done"):
    """Wait until a background job's row is `ok` or failed; its row, or exit with its error."""
    row = _wait(lambda: (x := model.objects.get(pk=pk)).status in (ok, "failed") and x, timeout, what)
    if row.status != ok:
        raise SystemExit(f"{what} failed: {row.error}")
    return row


def rehearse(args) -> dict:
    """Run every stage; the servers it started are stopped whatever happens (a crashed driver
    must not leave gunicorn, Celery and Redis behind)."""
    holder: dict = {}
    try:
        return _rehearse(args, holder)
    finally:
        if "svc" in holder:
            holder["svc"].stop()
        if "monitor" in holder:
            holder["monitor"].stop()


def _rehearse(args, holder: dict) -> dict:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fov-rehearsal-"))
    svc = Services(
        database_url=args.database_url, workdir=workdir, web_workers=args.web_workers, web_threads=args.web_threads
    )
    holder["svc"] = svc
    monitor = holder["monitor"] = RssMonitor()
    monitor.groups = {
        # this process and its JPEG writers (the servers it started are counted on their own)
        "rehearsal_driver": lambda: [
            p
            for p in (os.getpid(), *_children(os.getpid()))
            if p not in {*svc.web_pids(), *svc.celery_pids(), svc.redis.pid if svc.redis else -1}
        ],
        "gunicorn": svc.web_pids,
        "celery": lambda: [p for pid in svc.celery_pids() for p in (pid, *_children(pid))],
        "redis": lambda: [svc.redis.pid] if svc.redis and svc.redis.poll() is None else [],
    }
    stages = Stages(monitor)
    stages.partial_out = args.out
    faults: list[dict] = []
    load0 = os.getloadavg()
    t_all = time.perf_counter()

    if not args.reuse_database:
        recreate_database(args.database_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=svc.env, check=True
        )
    os.environ.update({k: svc.env[k] for k in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATABASE_URL", "DEBUG")})
    os.environ.update({k: svc.env[k] for k in ("CELERY_BROKER_URL", "MEDIA_ROOT", "VAR_DIR", "ALLOWED_HOSTS")})
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotator.models import Assignment, AssignmentStatus, CampaignItem
    from annotator.services import campaign_create
    from catalog.models import Annotation, AnnotationSource, Dataset, Image, ImageClass
    from catalog.services import images_ingest
    from infra.roles import Role

    settings.MEDIA_ROOT = svc.env["MEDIA_ROOT"]
    svc.redis_start()
    classes, records = _records(args.images)
    answers = {r.file_name: _answer_body(r) for _, r in records}
    root = workdir / "images"

    stages.run(
        "generate", lambda: generate(root, classes, records, args.procs), units="images", count=lambda _: len(records)
    )

    def ingest():
        # The catalogue first (as the ImageNet-X import registers its records: split, class,
        # file name, no file yet), then the ImageFolder: ingest decodes every file and attaches
        # it to the record of the same name, keeping the catalogue's split and class.
        ds, _ = Dataset.objects.get_or_create(slug=DATASET, defaults={"name": "Rehearsal (generated pixels)"})
        ImageClass.objects.bulk_create(
            [ImageClass(dataset=ds, index=c.index, wnid=c.wnid, name=c.name, meta_label=c.meta_label) for c in classes],
            ignore_conflicts=True,
        )
        class_id = dict(ImageClass.objects.filter(dataset=ds).values_list("index", "id"))
        Image.objects.bulk_create(
            [
                Image(dataset=ds, split=split, image_class_id=class_id[r.class_index], file_name=r.file_name)
                for split, r in records
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )
        res = images_ingest(dataset_slug=DATASET, root=root)
        if res.unreadable:
            raise SystemExit(f"{len(res.unreadable)} generated files unreadable, e.g. {res.unreadable[0]}")
        return Image.objects.filter(dataset__slug=DATASET, readable=True).count()

    n_images = stages.run("ingest", ingest, units="images", count=lambda n: n)

    def prototypes():
        from prototypes.services import prototype_run_from_predictions

        ds = Dataset.objects.get(slug=DATASET)
        rng = random.Random(7)
        path = workdir / "predictions.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name", "predicted_class", "predicted_probability"])
            for _, r in records:
                # 80 % right, with the confidence a trained classifier would give.
                ok = rng.random() < 0.8
                w.writerow([r.file_name, r.class_index if ok else rng.randrange(1000), f"{rng.uniform(0.3, 1):.4f}"])
        run = prototype_run_from_predictions(dataset=ds, path=str(path))
        return run

    run = stages.run("prototypes", prototypes, units="images", count=lambda _: len(records))

    def campaign():
        ds = Dataset.objects.get(slug=DATASET)
        return campaign_create(
            name="rehearsal", dataset=ds, overlap_fraction=0.1, overlap_copies=3, gold_rate=0.0, lease_minutes=30
        )

    camp = stages.run("campaign", campaign, units="images", count=lambda c: c.items.count())
    planned = sum(camp.items.values_list("planned", flat=True))

    User = get_user_model()
    ann_group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    people = User.objects.bulk_create([User(username=f"person{i}") for i in range(args.annotators)])
    people = list(User.objects.filter(username__startswith="person").order_by("id"))
    User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=ann_group.pk) for u in people])
    tokens = [t.key for t in Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in people])]
    reviewer = User.objects.create(username="rehearsal-reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name=Role.REVIEWER)[0])
    maintainer = User.objects.create(username="rehearsal-maintainer", is_staff=True)
    maintainer.groups.add(Group.objects.get_or_create(name=Role.MAINTAINER)[0])
    connection.close()

    def earlier():
        """The first (1 - live_fraction) of the queue answered before the rehearsal's people
        start, as earlier annotators would have (the published records, varied per person),
        written with COPY; the rest goes through HTTP. At --live-fraction 1 nothing here."""
        from django.db.models import F
        from django.utils import timezone

        from annotator.services import campaign_counters_recount
        from catalog.answers import factor_flags
        from catalog.models import AnnotationVersion
        from infra.bulkcopy import bulk_insert

        cut = round((1 - args.live_fraction) * camp.n_items)
        if cut <= 0:
            return 0
        fillers = [User.objects.create(username=f"earlier{k}") for k in range(3)]
        items = CampaignItem.objects.filter(campaign=camp, position__lt=cut).values_list(
            "id", "image_id", "image__file_name", "planned"
        )
        anns, meta = [], []
        for item_id, image_id, fname, n_planned in items:
            for k in range(n_planned):
                body = vary(answers.get(fname, ANSWER_FALLBACK), image_id, fillers[k].username)
                anns.append(
                    Annotation(
                        image_id=image_id,
                        source=AnnotationSource.USER,
                        annotator_id=fillers[k].pk,
                        nothing_differs=body["nothing_differs"],
                        justification=body["justification"],
                        one_word=body["one_word"],
                        main_factor=body.get("main_factor", ""),
                        time_on_task_ms=20000,
                        **factor_flags(body["factors"]),
                    )
                )
                meta.append((item_id, image_id, fillers[k].pk))
        bulk_insert(Annotation, anns)
        bulk_insert(
            AnnotationVersion,
            [
                AnnotationVersion(annotation=a, version=1, data=a.snapshot(), author_id=a.annotator_id, reason="create")
                for a in anns
            ],
        )
        now = timezone.now()
        bulk_insert(
            Assignment,
            [
                Assignment(
                    campaign=camp,
                    annotator_id=u,
                    item_id=i,
                    image_id=img,
                    status=AssignmentStatus.SUBMITTED,
                    started_at=now,
                    expires_at=now,
                    submitted_at=now,
                    annotation_id=a.pk,
                )
                for a, (i, img, u) in zip(anns, meta, strict=True)
            ],
        )
        CampaignItem.objects.filter(campaign=camp, position__lt=cut).update(n_done=F("planned"))
        campaign_counters_recount(campaign_id=camp.pk)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        return len(anns)

    n_earlier = stages.run("earlier_answers", earlier, units="annotations", count=lambda n: n)
    connection.close()

    svc.web_start()
    # Workers run while people annotate, as in service: review's after-submit checks follow.
    svc.celery_start(args.celery_workers)
    by_id = {
        iid: answers.get(name, ANSWER_FALLBACK)
        for iid, name in Image.objects.filter(dataset__slug=DATASET).values_list("id", "file_name")
    }
    connection.close()
    sim = Annotators(svc.base, tokens, camp.pk, by_id, args.concurrency)

    def done_so_far() -> int:
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            return conn.execute(
                f"SELECT COALESCE(SUM(n_done), 0) FROM {CampaignItem._meta.db_table} WHERE campaign_id = %s", [camp.pk]
            ).fetchone()[0]

    def injector(stop: threading.Event) -> None:
        plan = [
            (0.15, "redis_restart", lambda: svc.redis_restart()),
            (0.35, "gunicorn_worker_sigkill", svc.kill_web_worker),
            (0.55, "pg_terminate_backend_web", svc.terminate_web_connections),
            (0.75, "gunicorn_worker_sigkill", svc.kill_web_worker),
            (0.85, "celery_worker_sigkill", svc.kill_celery_worker),
        ]
        # fractions of the live share, on top of the answers written before it
        live = planned - n_earlier
        for frac, name, fn in plan:
            while not stop.is_set() and done_so_far() < n_earlier + frac * live:
                stop.wait(1.0)
            if stop.is_set():
                return
            t0 = time.perf_counter()
            detail = fn()
            faults.append(
                {
                    "stage": "annotate",
                    "fault": name,
                    "at_fraction": frac,
                    "detail": detail,
                    "took_s": round(time.perf_counter() - t0, 2),
                }
            )
            print(f"[rehearsal] fault: {faults[-1]}", file=sys.stderr, flush=True)

    def annotate():
        stop = threading.Event()
        inj = threading.Thread(target=injector, args=(stop,), daemon=True)
        if args.faults:
            inj.start()
        try:
            asyncio.run(sim.run())
        finally:
            stop.set()
            if args.faults:
                inj.join(timeout=30)
        return len(sim.accepted)

    stages.run("annotate", annotate, units="annotations", count=lambda n: n)
    import redis

    r = redis.Redis.from_url(svc.broker)
    # Review's after-submit checks: answers wait in a coalesced list (infra.enqueue) that drain
    # tasks on the default queue handle in batches; a batch leaves the list once handled.
    after_key = "fov:coalesce:review.after_submit"

    def waiting() -> int:
        return r.llen("default") + r.llen(after_key) + r.exists(after_key + ":lock")

    backlog = r.llen(after_key)

    def drain():
        if args.faults and waiting() > 20:
            time.sleep(2.0)
            faults.append(
                {"stage": "after_submit_backlog", "fault": "celery_worker_sigkill", "detail": svc.kill_celery_worker()}
            )
        _wait(lambda: waiting() == 0, args.timeout, "the after-submit checks to finish", poll=1.0)
        return backlog

    stages.run("after_submit_backlog", drain, units="answers", count=lambda n: n)

    def review():
        from review import selectors as rsel
        from review import services as rsvc

        ds = Dataset.objects.get(slug=DATASET)
        sample, _ = rsel.sampled_annotations(reviewer=reviewer, dataset_id=ds.pk)
        accepted = 0
        for a in list(sample.values("id", "version")):
            rsvc.review_accept(annotation_id=a["id"], reviewer=reviewer, expected_version=a["version"])
            accepted += 1
        multi = rsel.multi_annotated_images(dataset_id=ds.pk)
        settled = 0
        for image_id in list(multi.values_list("image_id", flat=True)):
            answers_ = rsel.image_answers(Image.objects.get(pk=image_id))
            if any(a.source == AnnotationSource.CONSENSUS for a in answers_):
                continue  # settled automatically (full agreement) after submit
            user_answers = [a for a in answers_ if a.source == AnnotationSource.USER]
            if len(user_answers) < 2:
                continue
            votes = Counter(tuple(a.selected_factors) for a in user_answers)
            factors = list(votes.most_common(1)[0][0])
            rsvc.adjudication_settle(
                image_id=image_id,
                reviewer=reviewer,
                factors=factors,
                nothing_differs=not factors,
                justification="majority of the three answers",
                one_word=factors[0] if factors else "none",
                expected_state=rsvc.state_token(user_answers),
            )
            settled += 1
        return {"accepted": accepted, "adjudicated": settled}

    review_out = stages.run("review", review, units="decisions", count=lambda o: o["accepted"] + o["adjudicated"])

    def curate():
        from curation import services as csvc
        from curation.models import CurationRun

        crun = csvc.curation_start(dataset_slug=DATASET, user=maintainer)
        if args.faults:
            _wait(lambda: CurationRun.objects.get(pk=crun.pk).processed > 0, args.timeout, "the first chunk")
            faults.append({"stage": "curation", "fault": "celery_worker_sigkill", "detail": svc.kill_celery_worker()})
        return _wait_status(CurationRun, crun.pk, "the curation run", args.timeout)

    crun = stages.run("curation", curate, units="images", count=lambda c: c.total)

    def release():
        from exports import services as esvc
        from exports.models import Release

        ds = Dataset.objects.get(slug=DATASET)
        rel = esvc.release_create(dataset=ds, version="1.0.0", curation_run=crun, created_by=maintainer)
        esvc.release_build_start(release_id=rel.pk, user=maintainer)
        rel = _wait_status(Release, rel.pk, "the release build", args.timeout, ok="built")
        return esvc.release_publish(release_id=rel.pk, user=maintainer)

    rel = stages.run("release", release)

    def evaluation():
        # The researcher's last step: the predictions file of the "model" whose prototypes the
        # run used, evaluated against the release just published (val split, top factors),
        # computed by a Celery worker.
        from evaluation import services as evsvc
        from evaluation.models import Evaluation

        ev = evsvc.evaluation_create(
            owner=maintainer,
            name="rehearsal model",
            dataset_slug=DATASET,
            data=(workdir / "predictions.csv").read_bytes(),
            filename="predictions.csv",
            release_version="1.0.0",
            split="val",
            allow_low_coverage=True,
        )
        ev = _wait_status(Evaluation, ev.pk, "the evaluation", args.timeout)
        m = ev.metrics or {}
        block = (m.get("kinds") or {}).get(m.get("primary") or "class") or {}
        factors = block.get("factors", {})
        ratios = {k: f.get("error_ratio") for k, f in factors.items() if f.get("error_ratio") is not None}
        return {
            "evaluation_id": ev.pk,
            "status": ev.status,
            "coverage": ev.coverage,
            "overall_accuracy": block.get("overall", {}).get("accuracy"),
            "worst_factor": block.get("worst_factor"),
            "highest_error_ratio": max(ratios.items(), key=lambda kv: kv[1]) if ratios else None,
        }

    ev = stages.run("evaluation", evaluation, units="images", count=lambda e: e["coverage"].get("matched", 0))

    # --- checks: nothing lost between stages ---------------------------------------------------
    from exports.services import release_dir
    from review.selectors import final_annotations

    ds = Dataset.objects.get(slug=DATASET)
    user_anns = Annotation.objects.filter(image__dataset=ds, source=AnnotationSource.USER)
    n_user = user_anns.count()
    pairs = user_anns.values("image_id", "annotator_id").distinct().count()
    n_done = sum(CampaignItem.objects.filter(campaign=camp).values_list("n_done", flat=True))
    submitted_assignments = Assignment.objects.filter(campaign=camp, status=AssignmentStatus.SUBMITTED).count()
    finals = final_annotations(dataset_id=ds.pk)
    n_final = finals.count()
    final_images = len(set(finals.values_list("image_id", flat=True)))
    out_dir = release_dir(rel)
    release_rows = {}
    for p in sorted(Path(out_dir).rglob("*.jsonl")):
        with open(p, "rb") as fh:
            release_rows[p.name] = sum(1 for _ in fh)
    multi_rows = sum(v for k, v in release_rows.items() if "multi" in k)
    checks = {
        "client_accepted_annotations": len(sim.accepted),
        "earlier_annotations_copied_in": n_earlier,
        "user_annotations_stored": n_user,
        "campaign_planned": planned,
        "campaign_n_done_sum": n_done,
        "submitted_assignments": submitted_assignments,
        "distinct_image_annotator_pairs": pairs,
        "retried_submit_made_another_annotation": sim.duplicate_answers,
        "images": n_images,
        # The current prototype run's images are shown beside the others, never annotated
        # (campaign_create leaves them out): the campaign, and so the release, has the rest.
        "images_in_campaign": camp.n_items,
        "images_left_out_as_prototypes": n_images - camp.n_items,
        "final_answers": n_final,
        "images_with_a_final_answer": final_images,
        "curated_images": crun.total,
        "release_rows": release_rows,
        "release_multi_factor_rows": multi_rows,
        "after_submit_queue_left": waiting(),
    }
    ok = (
        len(sim.accepted) + n_earlier == n_user == planned == n_done == submitted_assignments == pairs
        and sim.duplicate_answers == 0
        and n_final == final_images == camp.n_items == crun.total
        and (multi_rows == camp.n_items or not release_rows)
        and checks["after_submit_queue_left"] == 0
    )
    checks["nothing_lost"] = bool(ok)
    svc.stop()
    monitor.stop()
    total = time.perf_counter() - t_all
    lat = sorted(sim.lat)
    return {
        "benchmark": "rehearsal",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "server": f"gunicorn gthread {args.web_workers}x{args.web_threads}, {args.celery_workers} Celery worker(s), PostgreSQL, private Redis (AOF)",
            "loadavg_1m_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        },
        "images": n_images,
        "annotators": args.annotators,
        "live_fraction": args.live_fraction,
        "client_concurrency": args.concurrency,
        "faults_injected": faults,
        "total_wall_s": round(total, 1),
        "goal_total_wall_s": 1200,
        "stages": stages.rows,
        "http": {
            "requests": len(lat),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
            "statuses": dict(sim.statuses),
            "client_retries": dict(sim.retries),
        },
        "review": review_out,
        "prototype_run": getattr(run, "pk", None),
        "release": {"version": rel.version, "status": rel.status},
        "evaluation": ev,
        "checks": checks,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=60000)
    ap.add_argument("--annotators", type=int, default=40, help="simulated annotators (accounts)")
    ap.add_argument("--concurrency", type=int, default=16, help="HTTP connections the annotators share")
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--web-threads", type=int, default=4)
    ap.add_argument("--celery-workers", type=int, default=2)
    ap.add_argument("--procs", type=int, default=2, help="processes generating JPEGs")
    ap.add_argument("--no-faults", dest="faults", action="store_false")
    ap.add_argument(
        "--live-fraction",
        type=float,
        default=1.0,
        help="share of the queue answered live over HTTP; the rest is copied in first as earlier answers",
    )
    ap.add_argument("--timeout", type=float, default=1800.0, help="longest wait for a background stage, seconds")
    ap.add_argument("--workdir", default="", help="images, media and Redis files (default: a new temp folder)")
    ap.add_argument("--reuse-database", action="store_true", help="use the migrated database as it is (tests)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fov_scale_bench_rehearsal"),
    )
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args()
    result = rehearse(args)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    if not result["checks"]["nothing_lost"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
