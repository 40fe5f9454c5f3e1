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

from bench._shared import free_port, recreate_database  # noqa: E402


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
                # client backends only: an autovacuum worker on the bench database is not a request's cost
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()",
                [name],
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


def _fill(campaign_id: int, fraction: float, copies: int) -> dict:
    """Mark the first `fraction` of the campaign's queue as fully annotated, as a campaign that
    has run for a while looks: one submitted work lease, one Annotation (v1) and its version
    per planned slot, by `copies` filler annotators, and n_done = planned on those items.

    Written with INSERT ... SELECT: 30,000 images x 1.2 answers in seconds (the ORM would take
    minutes), and the rows are what the services would have written.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotator.models import Assignment, CampaignItem
    from catalog.factors import FACTOR_KEYS
    from catalog.models import Annotation, AnnotationVersion

    if fraction <= 0:
        return {"fraction": 0.0, "items": 0, "annotations": 0}
    User = get_user_model()
    fillers = [User.objects.create(username=f"filler{k}") for k in range(copies)]
    item_t, asg_t = CampaignItem._meta.db_table, Assignment._meta.db_table
    ann_t, ver_t = Annotation._meta.db_table, AnnotationVersion._meta.db_table
    n_items = CampaignItem.objects.filter(campaign_id=campaign_id).count()
    cut = int(round(fraction * n_items))
    flags = ", ".join(FACTOR_KEYS)
    flag_values = ", ".join("true" if k in ANSWER["factors"] else "false" for k in FACTOR_KEYS)
    snapshot = json.dumps({**ANSWER, "status": "submitted"})
    with transaction.atomic(), connection.cursor() as cur:
        for k, filler in enumerate(fillers):
            sel = f"FROM {item_t} ci WHERE ci.campaign_id = %s AND ci.position < %s AND ci.planned > %s"
            cur.execute(
                f"INSERT INTO {ann_t} (image_id, source, annotator_id, source_release, nothing_differs,"
                f" justification, one_word, main_factor, status, version, time_on_task_ms, reference_top_factor,"
                f" created_at, updated_at, {flags})"
                f" SELECT ci.image_id, 'user', %s, '', false, %s, %s, %s, 'submitted', 1, 20000, '', now(), now(),"
                f" {flag_values} {sel}",
                [
                    filler.pk,
                    ANSWER["justification"],
                    ANSWER["one_word"],
                    ANSWER.get("main_factor", ""),
                    campaign_id,
                    cut,
                    k,
                ],
            )
            cur.execute(
                f"INSERT INTO {ver_t} (annotation_id, version, data, author_id, reason, created_at)"
                f" SELECT a.id, 1, %s::jsonb, a.annotator_id, 'create', now() FROM {ann_t} a"
                " WHERE a.annotator_id = %s",
                [snapshot, filler.pk],
            )
            cur.execute(
                f"INSERT INTO {asg_t} (campaign_id, annotator_id, kind, item_id, image_id, status, started_at,"
                " expires_at, submitted_at, skip_reason, prototype_image_ids, annotation_id)"
                f" SELECT %s, %s, 'work', ci.id, ci.image_id, 'submitted', now(), now(), now(), '', '[]'::jsonb, a.id"
                f" {sel.replace('FROM ' + item_t + ' ci', 'FROM ' + item_t + ' ci JOIN ' + ann_t + ' a ON a.image_id = ci.image_id AND a.annotator_id = %s')}",
                [campaign_id, filler.pk, filler.pk, campaign_id, cut, k],
            )
        cur.execute(
            f"UPDATE {item_t} SET n_done = planned WHERE campaign_id = %s AND position < %s", [campaign_id, cut]
        )
        cur.execute(f"SELECT COUNT(*) FROM {ann_t} WHERE annotator_id = ANY(%s)", [[f.pk for f in fillers]])
        n_ann = cur.fetchone()[0]
    _after_fill(campaign_id)
    return {"fraction": fraction, "items": cut, "annotations": n_ann}


def _after_fill(campaign_id: int) -> None:
    """Hook for stored counters that a fill written in SQL must bring up to date (none yet)."""
    try:
        from annotator.services import campaign_counters_recount  # type: ignore[attr-defined]
    except ImportError:
        return
    campaign_counters_recount(campaign_id=campaign_id)


def _setup_data(
    n_images: int, n_clients: int, overlap: float, copies: int, fill: float = 0.0, extra_users: int = 0
) -> dict:
    """Runs in this process with DATABASE_URL pointing at the bench database."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
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
    filled = _fill(campaign.pk, fill, copies)
    group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    User = get_user_model()
    tokens = []
    for i in range(n_clients + 1):
        u = User.objects.create(username=f"bench{i}")
        u.groups.add(group)
        tokens.append(Token.objects.create(user=u).key)
    # The capacity ramp's simulated people: one account and token each, created in bulk.
    crowd = User.objects.bulk_create([User(username=f"crowd{i}") for i in range(extra_users)], batch_size=2000)
    if crowd:
        crowd = list(User.objects.filter(username__startswith="crowd").order_by("id"))
        User.groups.through.objects.bulk_create(
            [User.groups.through(user_id=u.pk, group_id=group.pk) for u in crowd], batch_size=2000
        )
        crowd_tokens = Token.objects.bulk_create(
            [Token(user=u, key=Token.generate_key()) for u in crowd], batch_size=2000
        )
    else:
        crowd_tokens = []
    # The form client signs in with a session cookie (pages do not take tokens); the pages phase
    # signs in as a maintainer (who reviews too): campaign pages, review queue, quality dashboard.
    # Client.force_login writes the session as a sign-in would (backend, auth hash).
    form_user = User.objects.get(username=f"bench{n_clients}")
    staff = User.objects.create(username="bench-maintainer")
    staff.groups.add(Group.objects.get_or_create(name=Role.MAINTAINER)[0])
    sessions = {}
    for key, user in (("session", form_user), ("staff_session", staff)):
        client = Client()
        client.force_login(user)
        sessions[key] = client.cookies["sessionid"].value
    return {
        "campaign": campaign.pk,
        "tokens": tokens[:n_clients],
        "form_token": tokens[n_clients],
        **sessions,
        "planned": sum(campaign.items.values_list("planned", flat=True)),
        "filled": filled,
        "crowd_tokens": [t.key for t in crowd_tokens],
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


async def _ramp_async(
    base: str,
    tokens: list[str],
    campaign: int,
    steps: list[int],
    step_seconds: float,
    think: tuple[float, float],
    limit_ms: float,
    meter_factory,
    warmup_seconds: float = 0.0,
) -> dict:
    """People at their own pace: simulated annotators join step by step and each one loops
    next -> think (uniform think seconds, the time a person looks at the form) -> submit.

    One asyncio loop with aiohttp drives them all, so the load generator costs a fraction of what
    one thread per person would (its own CPU is reported; httpx's async client cost 5-12 ms of
    CPU per request here, about what the server spends, and took the server's cores). A request's latency counts in the
    step during which it started; the ramp stops after the first step whose p99 of next or of
    submit passes `limit_ms`, and the capacity is the last step under it.
    """
    import asyncio
    import random

    import aiohttp

    lat: list[tuple[int, str, float]] = []
    errors: list[str] = []
    state = {"step": 0, "stop": False}
    connector = aiohttp.TCPConnector(limit=128)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout) as client:

        async def post(path: str, headers: dict, body: dict | None = None) -> tuple[int, dict | None]:
            async with client.post(path, json=body, headers=headers) as r:
                return r.status, (await r.json() if r.status == 200 else None)

        async def person(token: str, seed: int) -> None:
            rng = random.Random(seed)
            headers = {"Authorization": f"Token {token}"}
            await asyncio.sleep(rng.uniform(0, think[1]))  # people do not arrive in step
            while not state["stop"]:
                step, t0 = state["step"], time.perf_counter()
                try:
                    code, body = await post(f"/api/annotate/campaigns/{campaign}/next", headers)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(f"next {type(exc).__name__}")
                    return
                lat.append((step, "next", time.perf_counter() - t0))
                if code != 200:
                    if code != 204:
                        errors.append(f"next {code}")
                    return
                aid = body["id"]
                await asyncio.sleep(rng.uniform(*think))
                if state["stop"]:
                    return
                step, t0 = state["step"], time.perf_counter()
                try:
                    code, _ = await post(f"/api/annotate/assignments/{aid}/submit", headers, ANSWER)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(f"submit {type(exc).__name__}")
                    return
                lat.append((step, "submit", time.perf_counter() - t0))
                if code != 201:
                    errors.append(f"submit {code}")

        tasks: list = []
        report = []
        if warmup_seconds > 0 and steps:
            # The first step's people work unmeasured for a while first: each server thread's
            # first requests prepare its statements (infra.sql) and would count in that step's p99.
            state["step"] = -1
            tasks += [asyncio.create_task(person(tokens[j], j)) for j in range(min(steps[0], len(tokens)))]
            await asyncio.sleep(warmup_seconds)
        for i, n in enumerate(steps):
            if n > len(tokens):
                break
            state["step"] = i
            tasks += [asyncio.create_task(person(tokens[j], j)) for j in range(len(tasks), n)]
            meter = meter_factory()
            cpu0, n0 = time.process_time(), len(lat)
            await asyncio.sleep(step_seconds)
            n_req = len(lat) - n0
            mine = [x for x in lat if x[0] == i]
            nxt = [x[2] for x in mine if x[1] == "next"]
            sub = [x[2] for x in mine if x[1] == "submit"]
            row = {
                "annotators": n,
                "requests": n_req,
                "requests_per_s": round(n_req / step_seconds, 1),
                "next_p50_ms": round(_pct(nxt, 50) * 1000, 1),
                "next_p99_ms": round(_pct(nxt, 99) * 1000, 1),
                "submit_p50_ms": round(_pct(sub, 50) * 1000, 1),
                "submit_p99_ms": round(_pct(sub, 99) * 1000, 1),
                "samples": {"next": len(nxt), "submit": len(sub)},
                "server_cpu_per_request": meter.stop(n_req),
                "load_generator_cpu_ms_per_request": round((time.process_time() - cpu0) * 1000 / max(1, n_req), 2),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
            row["under_limit"] = bool(row["next_p99_ms"] < limit_ms and row["submit_p99_ms"] < limit_ms)
            report.append(row)
            print(json.dumps({"ramp_step": row}), file=sys.stderr, flush=True)
            if not row["under_limit"]:
                break
        state["stop"] = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    served = max([r["annotators"] for r in report if r["under_limit"]], default=0)
    return {"steps": report, "annotators_served": served, "errors": sorted(set(errors))[:10]}


def _profile(base_url: str, tokens: list[str], campaign: int, n: int) -> dict:
    """Where a next + submit pair spends its CPU: cProfile of `n` pairs run in this process
    (the same Django settings as the server, Django's test client instead of the socket),
    beside `n` GET /healthz; SQL time measured with a connection execute wrapper.

    Reported as CPU per request by package (our apps, DRF, Django's ORM, psycopg, ...) and
    the functions with the most own time: the note's profile.
    """
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client

    sql = {"n": 0, "s": 0.0}

    def wrapper(execute, sql_text, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            sql["n"] += 1
            sql["s"] += time.perf_counter() - t0

    def buckets(stats: pstats.Stats, requests: int) -> dict:
        out: dict[str, float] = {}
        for (file, _line, _fn), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
            f = file.replace(str(REPO) + "/", "")
            if "site-packages/" in f:
                key = f.split("site-packages/")[1].split("/")[0]
                if key == "django":
                    key = "django." + f.split("site-packages/django/")[1].split("/")[0]
            elif f.startswith(("annotator", "catalog", "review", "prototypes", "infra", "config")):
                key = "ours:" + f.split("/")[0]
            elif f.startswith("~") or f.startswith("<"):
                key = "builtins"
            else:
                key = "stdlib"
            out[key] = out.get(key, 0.0) + tt
        return {k: round(v * 1000 / requests, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1])[:14]}

    def top(stats: pstats.Stats, requests: int, by: int = 2, n: int = 20) -> list:
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][by])[:n]
        return [
            {
                "function": f"{file.replace(str(REPO) + '/', '').split('site-packages/')[-1]}:{line}({fn})",
                "own_ms_per_request": round(tt * 1000 / requests, 3),
                "cum_ms_per_request": round(ct * 1000 / requests, 3),
            }
            for (file, line, fn), (_cc, _nc, tt, ct, _callers) in rows
        ]

    client = Client(HTTP_HOST="127.0.0.1")
    # Warm-up outside the profile: URL resolver, imports, the connection.
    client.get("/healthz")
    headers = {"HTTP_AUTHORIZATION": f"Token {tokens[0]}"}
    for _ in range(3):  # a whole pair: submit imports what it needs lazily (review's after-submit hook)
        r = client.post(f"/api/annotate/campaigns/{campaign}/next", **headers)
        if r.status_code == 200:
            client.post(
                f"/api/annotate/assignments/{r.json()['id']}/submit",
                data=json.dumps(ANSWER),
                content_type="application/json",
                **headers,
            )
    out = {}
    for what in ("healthz", "next_submit"):
        # CPU time, not wall time: waiting on PostgreSQL is the database's cost, measured apart.
        prof = cProfile.Profile(time.process_time)
        sql.update(n=0, s=0.0)
        cpu0 = time.process_time()
        requests_done = 0
        with connection.execute_wrapper(wrapper):
            prof.enable()
            for i in range(n):
                if what == "healthz":
                    client.get("/healthz")
                    requests_done += 1
                    continue
                h = {"HTTP_AUTHORIZATION": f"Token {tokens[i % len(tokens)]}"}
                r = client.post(f"/api/annotate/campaigns/{campaign}/next", **h)
                requests_done += 1
                if r.status_code != 200:
                    break
                client.post(
                    f"/api/annotate/assignments/{r.json()['id']}/submit",
                    data=json.dumps(ANSWER),
                    content_type="application/json",
                    **h,
                )
                requests_done += 1
            prof.disable()
        cpu = time.process_time() - cpu0
        stats = pstats.Stats(prof)
        out[what] = {
            "requests": requests_done,
            "python_cpu_ms_per_request_profiled": round(cpu * 1000 / max(1, requests_done), 3),
            "sql_statements_per_request": round(sql["n"] / max(1, requests_done), 2),
            "sql_wall_ms_per_request": round(sql["s"] * 1000 / max(1, requests_done), 3),
            "own_time_by_package_ms_per_request": buckets(stats, max(1, requests_done)),
            "top_functions_by_own_time": top(stats, max(1, requests_done)),
            # what each layer costs with what it calls (the request's handler, DRF, the services)
            "top_functions_by_cumulative_time": top(stats, max(1, requests_done), by=3, n=60),
        }
    out["note"] = (
        "cProfile inflates Python time (about 2x); compare the shares, not the absolute numbers, "
        "with the server CPU figures measured without a profiler"
    )
    return out


def _signed_in(session_key: str) -> requests.Session:
    """An HTTP client carrying a session cookie made by _setup_data."""
    s = requests.Session()
    s.cookies.set("sessionid", session_key, domain="127.0.0.1")
    return s


def _form_render(base: str, session_key: str, token: str, campaign: int, n: int) -> tuple[list[float], dict]:
    """Times of GET on the form page, one client (the page an annotator waits for), and the
    lease's payload (its image URLs are the thumbnails the pages phase opens)."""
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    r = api.post(f"{base}/api/annotate/campaigns/{campaign}/next")
    if r.status_code != 200:  # the run emptied the queue (a small campaign, a long run)
        print(f"form page not measured: next answered {r.status_code}", file=sys.stderr)
        return [], {}
    r_next = r.json()
    aid = r_next["id"]
    s = _signed_in(session_key)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(f"{base}/annotate/a/{aid}/")
        lat.append(time.perf_counter() - t0)
        if r.status_code != 200 or "answer-form" not in r.text:
            # Reported, not fatal: the load figures of the run stand without the form's.
            print(f"form page answered {r.status_code} without the form: {r.url}", file=sys.stderr)
            return [], {}
    return lat, r_next


PAGES = {
    # name: (path ({c}: the campaign), text the page must contain, who opens it)
    "annotator_home": ("/annotate/", "bench", "annotator"),
    "campaign_list": ("/annotate/campaigns/", "bench", "maintainer"),
    "campaign_page": ("/annotate/campaigns/{c}/", "bench", "maintainer"),
    "review_queue": ("/review/", "", "maintainer"),
    "quality_dashboard": ("/review/quality/", "", "maintainer"),
}


def _pages(base: str, sessions: dict[str, str], campaign: int, n: int, meter_factory, lease: dict) -> dict:
    """Server CPU and median latency of GET on the pages people open besides the form (an
    annotator's home, a maintainer's campaign pages, review queue and quality dashboard), one
    client, `n` times each after one untimed request; and the form's thumbnails (the sample
    and its prototypes as the form user's lease lists them). The bench's images are rows
    without files, so a thumbnail answers the "file missing" picture: what it measures is the
    lookup and the annotator's permission check, the part that could grow with a campaign
    (a thumbnail itself is a cached file, the same at any size)."""
    clients = {who: _signed_in(key) for who, key in sessions.items()}
    out = {}
    # The thumbnails first: the dashboard's first view asks a worker for a new report, and that
    # computation's PostgreSQL time (a client backend too) would land on the pages after it.
    pages = {}
    for k, ref in enumerate([lease["image"], *lease["prototypes"]] if lease else []):
        pages[f"thumbnail_{'sample' if k == 0 else f'prototype{k}'}"] = (ref["thumb_url"], "", "annotator")
    pages.update(PAGES)
    for name, (path, must, who) in pages.items():
        s, url = clients[who], base + path.format(c=campaign)
        r = s.get(url)
        if r.status_code != 200 or (must and must not in r.text):
            out[name] = {"error": f"{r.status_code} at {r.url}"}
            continue
        meter, lat = meter_factory(), []
        for _ in range(n):
            t0 = time.perf_counter()
            s.get(url)
            lat.append(time.perf_counter() - t0)
        cpu = meter.stop(n)
        out[name] = {
            "path": path,
            "median_ms": round(statistics.median(lat) * 1000, 1),
            "server_cpu_ms_per_request": round(cpu["gunicorn"] + cpu["postgresql"], 2),
            "server_cpu_per_request": cpu,
            "bytes": len(r.content),
        }
    return out


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
    ap.add_argument("--fill", type=float, default=0.0, help="fraction of the queue already annotated (0-1)")
    ap.add_argument("--pages", type=int, default=10, help="GET each page of PAGES this many times (0: no)")
    ap.add_argument("--profile", type=int, default=0, help="profile this many next+submit pairs in-process (0: no)")
    ap.add_argument(
        "--ramp",
        default="",
        help="capacity phase: comma-separated numbers of simulated annotators, e.g. 100,250,500,1000,1500",
    )
    ap.add_argument("--ramp-step-seconds", type=float, default=60.0)
    ap.add_argument(
        "--ramp-warmup-seconds", type=float, default=20.0, help="the first step's people work unmeasured first"
    )
    ap.add_argument("--ramp-think-min", type=float, default=10.0, help="seconds per item, the dashboard's 10-30 s")
    ap.add_argument("--ramp-think-max", type=float, default=30.0)
    ap.add_argument("--ramp-limit-ms", type=float, default=100.0, help="p99 of next or submit that ends the ramp")
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
    recreate_database(args.database_url)
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
    ramp_steps = [int(x) for x in args.ramp.split(",") if x.strip()]
    t_setup = time.perf_counter()
    data = _setup_data(args.images, args.clients, args.overlap, args.copies, args.fill, max(ramp_steps, default=0))
    setup_seconds = time.perf_counter() - t_setup
    # A database in service has planner statistics; one created a second ago has none, and the
    # planner would then pick plans for empty tables (scans that grow with the run). VACUUM
    # too: otherwise autovacuum visits the freshly filled tables during the measured phases.
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")

    load_before = os.getloadavg()
    port = free_port()
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
            "--graceful-timeout",
            "5",
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
        form, form_lease = _form_render(base, data["session"], data["form_token"], data["campaign"], 60)
        pages = (
            _pages(
                base,
                {"annotator": data["session"], "maintainer": data["staff_session"]},
                data["campaign"],
                args.pages,
                lambda: _CpuMeter(server.pid, args.database_url),
                form_lease,
            )
            if args.pages
            else None
        )
        paced = (
            _drive(base, data["tokens"], data["campaign"], args.think_seconds, (args.think_min, args.think_max))
            if args.think_seconds > 0
            else None
        )
        ramp = None
        if ramp_steps:
            import asyncio

            ramp = asyncio.run(
                _ramp_async(
                    base,
                    data["crowd_tokens"],
                    data["campaign"],
                    ramp_steps,
                    args.ramp_step_seconds,
                    (args.ramp_think_min, args.ramp_think_max),
                    args.ramp_limit_ms,
                    lambda: _CpuMeter(server.pid, args.database_url),
                    args.ramp_warmup_seconds,
                )
            )
        profile = _profile(base, data["tokens"], data["campaign"], args.profile) if args.profile else None
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:  # keep-alive connections can hold a gthread worker
            server.kill()
            server.wait(timeout=15)
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
        "images": args.images,
        "campaign_planned_annotations": data["planned"],
        "filled_before_load": data["filled"],
        "setup_seconds": round(setup_seconds, 1),
        "submitted": len(sub),
        "errors": run["errors"][:10],
        "figures": {
            "requests_per_s": {"value": round(run["requests"] / run["elapsed"], 1), "unit": "req/s"},
            "next_p50": {"value": round(_pct(nxt, 50) * ms, 1), "unit": "ms"},
            "next_p99": {"value": round(_pct(nxt, 99) * ms, 1), "unit": "ms", "goal": 50},
            "submit_p50": {"value": round(_pct(sub, 50) * ms, 1), "unit": "ms"},
            "submit_p99": {"value": round(_pct(sub, 99) * ms, 1), "unit": "ms", "goal": 50},
            "form_render_median": {
                "value": round(statistics.median(form) * ms, 1) if form else None,
                "unit": "ms",
                "goal": 30,
            },
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
        "form_render_median_to_goal": (
            round(f["form_render_median"]["value"] / 30, 2) if f["form_render_median"]["value"] else None
        ),
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
    cpu = run_cpu["gunicorn"] + run_cpu["postgresql"]
    bcpu = base_cpu["gunicorn"] + base_cpu["postgresql"]
    # Issue 14's goal 2: next + submit at most 3x GET /healthz, server CPU (gunicorn + PostgreSQL).
    result["ratio"]["server_cpu_total_to_baseline"] = round(cpu / (bcpu or 1e-9), 2)
    result["figures"]["server_cpu_total_ms_per_request"] = round(cpu, 2)
    if pages is not None:
        result["pages"] = pages
    if ramp is not None:
        result["capacity"] = {
            "mode": (
                f"simulated annotators added step by step ({args.ramp_step_seconds:.0f} s each), each looping "
                f"next -> {args.ramp_think_min:.0f}-{args.ramp_think_max:.0f} s think -> submit; one asyncio "
                "loop with aiohttp; stops after the first step whose p99 of next or submit passes the limit"
            ),
            "limit_p99_ms": args.ramp_limit_ms,
            **ramp,
        }
    if profile is not None:
        result["profile"] = profile
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
