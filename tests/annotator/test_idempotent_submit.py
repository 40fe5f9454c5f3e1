"""Submit is idempotent for a retried request: the lease is the natural key.

A client that lost our reply (a killed worker, a dropped connection, a proxy timeout) sends the
same answer again; it gets the stored result back, and nothing is counted or written twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from annotator.models import Assignment, AssignmentStatus, CampaignItem, GoldKind, GoldResponse
from annotator.services import annotation_revise, annotation_submit, assignment_next
from catalog.models import Annotation, AnnotationVersion, Image
from infra.errors import Conflict
from tests.annotator.conftest import answer
from tests.conftest import REPO

BODY = {"factors": ["pose"], "nothing_differs": False, "justification": "turned sideways", "one_word": "pose"}


def _counts(campaign) -> tuple[int, int, int]:
    return (
        Annotation.objects.count(),
        AnnotationVersion.objects.count(),
        sum(CampaignItem.objects.filter(campaign=campaign).values_list("n_done", flat=True)),
    )


@pytest.mark.embedded
def test_the_same_answer_again_returns_the_stored_annotation_and_writes_nothing(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    first = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    before = _counts(campaign)
    again = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    assert again.replayed and not first.replayed
    assert again.annotation.pk == first.annotation.pk
    assert _counts(campaign) == before == (1, 1, 1)


@pytest.mark.embedded
def test_a_retry_after_a_revision_still_replays_and_keeps_the_revision(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer(factors=["color"], justification="red"))
    again = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    assert again.replayed and again.annotation.pk == ann.pk
    ann.refresh_from_db()
    assert ann.version == 2 and ann.selected_factors == ["color"]


@pytest.mark.embedded
def test_a_different_answer_for_a_submitted_lease_is_still_refused(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    with pytest.raises(Conflict):
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(justification="something else"))
    assert _counts(campaign) == (1, 1, 1)


@pytest.mark.embedded
def test_a_retried_gold_answer_is_scored_once(qualified_campaign, annotator):
    a = assignment_next(campaign_id=qualified_campaign.id, user=annotator)
    assert a.kind == GoldKind.QUALIFICATION
    first = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    again = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    assert again.replayed and again.gold_response.pk == first.gold_response.pk
    assert GoldResponse.objects.count() == 1


@pytest.mark.embedded
def test_api_answers_201_then_200_with_the_same_annotation(campaign, annotator, api):
    api.force_authenticate(annotator)
    aid = api.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    r1 = api.post(f"/api/annotate/assignments/{aid}/submit", BODY, format="json")
    r2 = api.post(f"/api/annotate/assignments/{aid}/submit", BODY, format="json")
    assert r1.status_code == 201 and r2.status_code == 200
    assert r1.json()["annotation"] == r2.json()["annotation"]
    assert (r1.json()["replayed"], r2.json()["replayed"]) == (False, True)
    assert _counts(campaign) == (1, 1, 1)


# --- under a killed worker ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(stat))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return out


@pytest.fixture
def web_server(transactional_db):
    """gunicorn (one sync worker) on 127.0.0.1 against the test database; yields (base, master)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the server is another process")
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "TESTING": "1", "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"}
    env.pop("CELERY_BROKER_URL", None)  # after-submit work runs eagerly in the server: no broker needed
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--log-level", "error"],
        cwd=REPO,
        env=env,
    )
    import requests

    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("gunicorn did not start")
    yield base, proc.pid
    proc.terminate()
    proc.wait(timeout=30)


def test_a_submit_whose_worker_is_killed_and_retried_is_stored_exactly_once(web_server, campaign, annotator):
    """SIGKILL the worker while the submit is in flight (before or after its commit: both must
    end the same), then retry as a client does: one annotation per lease, counters agree."""
    import requests

    base, master = web_server
    token = Token.objects.create(user=annotator).key
    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    rng = random.Random(4)
    done = []
    for _ in range(4):
        aid = s.post(f"{base}/api/annotate/campaigns/{campaign.id}/next").json()["id"]
        victim = _children(master)[0]
        # Send the request by hand, kill the worker a moment later, never read the answer.
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as raw:
            body = json.dumps(BODY).encode()
            raw.sendall(
                (
                    f"POST /api/annotate/assignments/{aid}/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                + body
            )
            time.sleep(rng.uniform(0.0, 0.08))
            os.kill(victim, signal.SIGKILL)
        for _ in range(100):  # the master forks a new worker; retry until it answers
            try:
                r = s.post(f"{base}/api/annotate/assignments/{aid}/submit", json=BODY, timeout=10)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if r.status_code < 500:
                break
        assert r.status_code in (200, 201), r.text
        done.append((aid, r.json()["annotation"]))
    for aid, ann_id in done:
        a = Assignment.objects.get(pk=aid)
        assert a.status == AssignmentStatus.SUBMITTED and a.annotation_id == ann_id
        assert Annotation.objects.filter(image=Image.objects.get(pk=a.image_id), annotator=annotator).count() == 1
    assert _counts(campaign) == (len(done), len(done), len(done))
    assert len({ann for _, ann in done}) == len(done)


@pytest.mark.embedded
def test_a_lost_database_connection_answers_503_with_retry_after_not_500():
    from django.db import OperationalError

    from infra.errors import api_exception_handler

    r = api_exception_handler(OperationalError("terminating connection due to administrator command"), {})
    assert r.status_code == 503 and r["Retry-After"] == "1"
    assert r.data["error"]["code"] == "unavailable"
