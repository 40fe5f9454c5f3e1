"""Load benchmark of the annotation queue: N concurrent clients doing next + submit over HTTP.

A real server (gunicorn, 127.0.0.1 only) runs on a PostgreSQL database of its own, which this
script creates from scratch (DROP + CREATE + migrate), fills with a campaign and annotators,
then drives with N client threads, each with its own token. Prints one JSON object:
requests/s, p50/p99 latency of next and of submit, the median render time of the form page,
and a baseline measured in the same run (GET /healthz: one SELECT 1 through the same stack
under the same number of clients), with the ratios to it and to the issue's goals.

    .venv/bin/python bench/annotation_load.py --clients 20 --seconds 20

Goals (issue 4, 2-core machine, 20 clients): p99 < 50 ms for next and for submit, form
render median < 30 ms.

Two load phases, both reported: the closed loop ("figures": 20 clients with no pause, the
saturation figures; by Little's law p99 < 50 ms there needs > 400 req/s on two cores shared
with this load generator and PostgreSQL), then "with_think_time": the same 20 clients each
pausing a few seconds before every item as a person would (--think-min/--think-max,
--think-seconds 0 skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    idx = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[idx]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids(master: int, database_url: str) -> dict[str, list[int]]:
    """The gunicorn master and its workers, and the PostgreSQL backends serving the bench database."""
    import psycopg

    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                workers.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    name = urlparse(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        backends = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
            )
        ]
    return {"gunicorn": [master, *workers], "postgresql": backends}


class _CpuMeter:
    """CPU time the server side (gunicorn processes, PostgreSQL backends) spends in a phase.

    Unlike latencies, CPU per request hardly moves when other jobs load this shared machine,
    so it is the figure to compare between runs. Backends opened during the phase count from
    zero; the bench database is used by nobody else.
    """

    def __init__(self, master: int, database_url: str) -> None:
        self.master, self.url = master, database_url
        pids = _server_pids(master, database_url)
        self.before = {(k, pid): _cpu_seconds(pid) for k, ps in pids.items() for pid in ps}

    def stop(self, n_requests: int) -> dict:
        pids = _server_pids(self.master, self.url)
        out = {}
        for kind, ps in pids.items():
            used = sum(max(0.0, _cpu_seconds(pid) - self.before.get((kind, pid), 0.0)) for pid in ps)
            out[kind] = round(used * 1000 / max(1, n_requests), 2)
        return {**out, "unit": "ms CPU per request"}


def _recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _setup_data(n_images: int, n_clients: int, overlap: float, copies: int) -> dict:
    """Runs in this process with DATABASE_URL pointing at the bench database."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from rest_framework.authtoken.models import Token

    from annotator.services import campaign_create
    from catalog.models import Dataset, Image, ImageClass
    from infra.roles import Role

    ds = Dataset.objects.create(slug="bench", name="bench")
    classes = [ImageClass.objects.create(dataset=ds, index=i, name=f"class {i}") for i in range(20)]
    Image.objects.bulk_create(
        [
            Image(
                dataset=ds,
                split="val",
                image_class=classes[i % 20],
                file_name=f"b{i:06d}.jpg",
                relpath=f"b{i:06d}.jpg",
                readable=True,
            )
            for i in range(n_images)
        ],
        batch_size=2000,
    )
    campaign = campaign_create(name="bench", dataset=ds, overlap_fraction=overlap, overlap_copies=copies, gold_rate=0.0)
    group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    User = get_user_model()
    tokens = []
    for i in range(n_clients + 1):
        u = User.objects.create(username=f"bench{i}")
        u.groups.add(group)
        tokens.append(Token.objects.create(user=u).key)
    # The form client signs in with a session cookie (pages do not take tokens).
    form_user = User.objects.get(username=f"bench{n_clients}")
    s = SessionStore()
    s["_auth_user_id"] = str(form_user.pk)
    s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    s["_auth_user_hash"] = form_user.get_session_auth_hash()
    s.create()
    return {
        "campaign": campaign.pk,
        "tokens": tokens[:n_clients],
        "form_token": tokens[n_clients],
        "session": s.session_key,
        "planned": sum(campaign.items.values_list("planned", flat=True)),
    }


ANSWER = {
    "factors": ["pose", "background"],
    "main_factor": "pose",  # new campaigns ask which ticked factor is the main one
    "nothing_differs": False,
    "justification": "turned left, other room",
    "one_word": "pose",
}


def _drive(
    base: str, tokens: list[str], campaign: int, seconds: float, think: tuple[float, float] | None = None
) -> dict:
    """Each token is one client doing next + submit in a loop until `seconds` have passed.

    Without `think` the loop is closed with no pause (saturation: every client fires its next
    request as soon as the previous answer arrives). With think=(lo, hi) each client waits a
    uniform random lo..hi seconds before each item, like a person looking at the form (random
    start offsets too, so the clients do not march in step); seeded per client, reproducible.
    """
    lat: dict[str, list[float]] = {"next": [], "submit": []}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    start_gate = threading.Barrier(len(tokens) + 1)

    def client(token: str, seed: int) -> None:
        import random

        rng = random.Random(seed)
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        mine: dict[str, list[float]] = {"next": [], "submit": []}
        start_gate.wait()
        if think:
            time.sleep(rng.uniform(0, think[1]))
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            r = s.post(f"{base}/api/annotate/campaigns/{campaign}/next")
            mine["next"].append(time.perf_counter() - t0)
            if r.status_code == 204:
                break
            if r.status_code != 200:
                with lock:
                    errors.append(f"next {r.status_code}")
                break
            aid = r.json()["id"]
            t0 = time.perf_counter()
            r = s.post(f"{base}/api/annotate/assignments/{aid}/submit", json=ANSWER)
            mine["submit"].append(time.perf_counter() - t0)
            if r.status_code != 201:
                with lock:
                    errors.append(f"submit {r.status_code}")
            if think:
                time.sleep(rng.uniform(*think))
        with lock:
            for k in lat:
                lat[k].extend(mine[k])

    threads = [threading.Thread(target=client, args=(t, i)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    start_gate.wait()
    t_start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    n = len(lat["next"]) + len(lat["submit"])
    return {"lat": lat, "elapsed": elapsed, "requests": n, "errors": errors}


def _baseline(base: str, n_clients: int, seconds: float) -> list[float]:
    lat: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        s = requests.Session()
        mine = []
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            s.get(f"{base}/healthz")
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def _form_render(base: str, session_key: str, token: str, campaign: int, n: int) -> list[float]:
    """Median time of GET on the form page, one client (the page an annotator waits for)."""
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    aid = api.post(f"{base}/api/annotate/campaigns/{campaign}/next").json()["id"]
    s = requests.Session()
    s.cookies.set("sessionid", session_key, domain="127.0.0.1")
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(f"{base}/annotate/a/{aid}/")
        lat.append(time.perf_counter() - t0)
        if r.status_code != 200 or "answer-form" not in r.text:
            raise SystemExit(f"form page answered {r.status_code}: {r.text[:300]}")
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--overlap", type=float, default=0.1)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    ap.add_argument(
        "--think-seconds",
        type=float,
        default=30.0,
        help="length of the second phase, clients with think time (0: skip it)",
    )
    ap.add_argument("--think-min", type=float, default=1.0, help="shortest pause before an item, seconds")
    ap.add_argument("--think-max", type=float, default=5.0, help="longest pause before an item, seconds")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fov_ann_bench"),
    )
    ap.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/9"))
    args = ap.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "VAR_DIR": str(REPO / "var" / "bench"),
    }
    # Like production: after-submit work (review's consistency checks) is queued on Redis for
    # the workers instead of running inside the request. No worker consumes it here (it would
    # compete for the same 2 cores); the queue is purged at the end.
    env["CELERY_BROKER_URL"] = args.broker_url
    _recreate_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DATABASE_URL",
                "DJANGO_SETTINGS_MODULE",
                "SECRET_KEY",
                "DEBUG",
                "ALLOWED_HOSTS",
                "VAR_DIR",
                "CELERY_BROKER_URL",
            )
        }
    )
    data = _setup_data(args.images, args.clients, args.overlap, args.copies)
    # A database in service has planner statistics; one created a second ago has none, and the
    # planner would then pick plans for empty tables (scans that grow with the run).
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")

    load_before = os.getloadavg()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            str(args.threads),
            "-k",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    try:
        for _ in range(150):  # the workers import Django (and DRF, spaCy-free) first
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        _baseline(base, args.clients, 1.0)  # warm-up: connections, imports, caches
        meter = _CpuMeter(server.pid, args.database_url)
        base_lat = _baseline(base, args.clients, min(5.0, args.seconds / 2))
        base_cpu = meter.stop(len(base_lat))
        meter = _CpuMeter(server.pid, args.database_url)
        run = _drive(base, data["tokens"], data["campaign"], args.seconds)
        run_cpu = meter.stop(run["requests"])
        form = _form_render(base, data["session"], data["form_token"], data["campaign"], 60)
        paced = (
            _drive(base, data["tokens"], data["campaign"], args.think_seconds, (args.think_min, args.think_max))
            if args.think_seconds > 0
            else None
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        import redis

        redis.Redis.from_url(args.broker_url).flushdb()

    ms = 1000.0
    nxt, sub = run["lat"]["next"], run["lat"]["submit"]
    result = {
        "benchmark": "annotation_load",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "server": f"gunicorn gthread {args.workers}x{args.threads}, PostgreSQL",
            # The machine is shared: a high load average explains slow figures.
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "clients": args.clients,
        "seconds": round(run["elapsed"], 2),
        "campaign_planned_annotations": data["planned"],
        "submitted": len(sub),
        "errors": run["errors"][:10],
        "figures": {
            "requests_per_s": {"value": round(run["requests"] / run["elapsed"], 1), "unit": "req/s"},
            "next_p50": {"value": round(_pct(nxt, 50) * ms, 1), "unit": "ms"},
            "next_p99": {"value": round(_pct(nxt, 99) * ms, 1), "unit": "ms", "goal": 50},
            "submit_p50": {"value": round(_pct(sub, 50) * ms, 1), "unit": "ms"},
            "submit_p99": {"value": round(_pct(sub, 99) * ms, 1), "unit": "ms", "goal": 50},
            "form_render_median": {"value": round(statistics.median(form) * ms, 1), "unit": "ms", "goal": 30},
            # Mean over next and submit requests of the closed loop.
            "server_cpu_per_request": run_cpu,
        },
        "baseline": {
            "what": "GET /healthz (SELECT 1 through the same server) with the same number of clients",
            "p50_ms": round(_pct(base_lat, 50) * ms, 1),
            "p99_ms": round(_pct(base_lat, 99) * ms, 1),
            "requests_per_s": round(len(base_lat) / min(5.0, args.seconds / 2), 1),
            "server_cpu_per_request": base_cpu,
        },
    }
    b50 = result["baseline"]["p50_ms"] or 1.0
    b99 = result["baseline"]["p99_ms"] or 1.0
    f = result["figures"]
    result["ratio"] = {
        "next_p50_to_baseline_p50": round(f["next_p50"]["value"] / b50, 2),
        "next_p99_to_baseline_p99": round(f["next_p99"]["value"] / b99, 2),
        "submit_p99_to_baseline_p99": round(f["submit_p99"]["value"] / b99, 2),
        "next_p99_to_goal": round(f["next_p99"]["value"] / 50, 2),
        "submit_p99_to_goal": round(f["submit_p99"]["value"] / 50, 2),
        "form_render_median_to_goal": round(f["form_render_median"]["value"] / 30, 2),
        "requests_per_s_to_baseline": round(
            f["requests_per_s"]["value"] / (result["baseline"]["requests_per_s"] or 1), 3
        ),
        "server_cpu_per_request_to_baseline": {
            k: round(run_cpu[k] / (base_cpu[k] or 1e-9), 1) for k in ("gunicorn", "postgresql")
        },
    }
    if paced is not None:
        pn, ps = paced["lat"]["next"], paced["lat"]["submit"]
        # Reported beside the closed-loop figures, never instead of them: the goal is
        # stated for 20 clients, and 20 people each pausing a few seconds per image is the
        # load the service really meets; the closed loop above is the saturation test.
        result["with_think_time"] = {
            "mode": (
                f"{args.clients} clients, each pausing uniform {args.think_min}-{args.think_max} s before "
                "every item (a person reading the form), then next + submit; NOT the closed-loop figures above"
            ),
            "seconds": round(paced["elapsed"], 2),
            "submitted": len(ps),
            "errors": paced["errors"][:10],
            "figures": {
                "requests_per_s": {"value": round(paced["requests"] / paced["elapsed"], 1), "unit": "req/s"},
                "next_p50": {"value": round(_pct(pn, 50) * ms, 1), "unit": "ms"},
                "next_p99": {"value": round(_pct(pn, 99) * ms, 1), "unit": "ms", "goal": 50},
                "submit_p50": {"value": round(_pct(ps, 50) * ms, 1), "unit": "ms"},
                "submit_p99": {"value": round(_pct(ps, 99) * ms, 1), "unit": "ms", "goal": 50},
            },
            "samples": {"next": len(pn), "submit": len(ps)},
            "ratio": {
                "next_p99_to_goal": round(_pct(pn, 99) * ms / 50, 2),
                "submit_p99_to_goal": round(_pct(ps, 99) * ms / 50, 2),
            },
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
