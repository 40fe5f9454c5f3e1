import subprocess
import sys

import pytest


def _run_settings(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup()",
        ],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.embedded
def test_refuses_development_key_when_debug_is_off(tmp_path):
    r = _run_settings({"VAR_DIR": str(tmp_path)})
    assert r.returncode != 0 and "SECRET_KEY is unset while DEBUG is off" in r.stderr


@pytest.mark.embedded
def test_bad_boolean_fails_loudly(tmp_path):
    r = _run_settings({"VAR_DIR": str(tmp_path), "DEBUG": "maybe"})
    assert r.returncode != 0 and "DEBUG='maybe' is not a boolean" in r.stderr


@pytest.mark.embedded
def test_embedded_default_needs_no_configuration(tmp_path):
    r = _run_settings({"VAR_DIR": str(tmp_path), "DEBUG": "1"})
    assert r.returncode == 0, r.stderr
