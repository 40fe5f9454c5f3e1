"""The full pipeline rehearsed at 3,000 images with faults injected (bench/rehearsal.py).

The same script as the 60,000-image benchmark, on the test database: generated JPEGs ingested,
prototypes from a predictions file, a campaign with 10 % triple overlap, a share of it answered
live over HTTP while Redis restarts, gunicorn and Celery workers are SIGKILLed and the web's
database connections are ended; then review, adjudication, curation on Celery workers and a
published release. It must end with nothing lost and no duplicate from a retried submit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import REPO

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_rehearsal_at_3000_images_with_faults_loses_nothing(transactional_db, tmp_path):
    from django.db import connection

    if not settings.IS_POSTGRES:
        pytest.skip("the rehearsal runs real servers on PostgreSQL")
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    out = tmp_path / "rehearsal.json"
    env = {**os.environ, "TESTING": "1"}
    env.pop("CELERY_BROKER_URL", None)  # the rehearsal runs its own Redis (it restarts it)
    log = open(tmp_path / "rehearsal.log", "w")  # a file, not a pipe: nothing can hold it open
    proc = subprocess.run(
        [
            sys.executable,
            "bench/rehearsal.py",
            "--images",
            "3000",
            "--live-fraction",
            "0.08",
            "--annotators",
            "6",
            "--concurrency",
            "6",
            "--web-threads",
            "2",
            "--timeout",
            "900",
            "--reuse-database",
            "--database-url",
            url,
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        timeout=1500,
    )
    log.close()
    stderr = (tmp_path / "rehearsal.log").read_text()
    assert out.exists(), stderr[-4000:]
    result = json.loads(out.read_text())
    checks = result["checks"]
    assert checks["nothing_lost"], json.dumps(checks, indent=1)
    assert proc.returncode == 0, stderr[-4000:]
    # Every fault of the plan was injected while people were answering.
    injected = {f["fault"] for f in result["faults_injected"]}
    assert {
        "redis_restart",
        "gunicorn_worker_sigkill",
        "pg_terminate_backend_web",
        "celery_worker_sigkill",
    } <= injected, result["faults_injected"]
    assert checks["images"] == 3000
    assert checks["images_in_campaign"] + checks["images_left_out_as_prototypes"] == 3000
    assert checks["images_in_campaign"] == checks["images_with_a_final_answer"] == checks["release_multi_factor_rows"]
    assert checks["retried_submit_made_another_annotation"] == 0
    assert checks["client_accepted_annotations"] > 0
    assert result["release"]["status"] == "published"
    # The researcher's stage: the predictions file evaluated against that release by a worker.
    assert result["evaluation"]["status"] == "done", result["evaluation"]
    assert result["evaluation"]["coverage"]["matched"] > 0
    assert 0 < result["evaluation"]["overall_accuracy"] < 1
