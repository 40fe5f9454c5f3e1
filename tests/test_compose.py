"""docker-compose.yml cannot be run here (no Docker engine): check that every command, module
and setting it names exists in this code base, so that it does not rot unnoticed."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}


def _argv(service: dict) -> list[str]:
    cmd = service["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if argv[:2] == ["sh", "-c"]:
        return shlex.split(argv[2])
    return argv


def _commands(service: dict) -> list[list[str]]:
    """Each command line of a service (`sh -c "a && b"` counts as two)."""
    cmd = service["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", argv[2]) if part.strip()]
    return [argv]


def _settings_env_names() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "config").glob("*.py"))
    return set(re.findall(r'env_(?:str|bool|int|float|list)\("([A-Z_]+)"', source))


def test_compose_has_the_expected_services():
    assert {"postgres", "redis", "web", "worker", "worker-gpu", "migrate"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:") and SERVICES["redis"]["image"].startswith("redis:")


def test_app_services_build_from_the_dockerfile():
    assert (ROOT / "Dockerfile").is_file()
    requirements = (ROOT / "requirements.txt").read_text()
    assert "requirements.txt" in (ROOT / "Dockerfile").read_text() and "gunicorn" in requirements


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_settings_module_exists(name):
    module = APP_SERVICES[name]["environment"]["DJANGO_SETTINGS_MODULE"]
    spec = importlib.util.find_spec(module)
    assert spec is not None and "INSTALLED_APPS" in Path(spec.origin).read_text()


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_environment_variable_is_read_by_the_settings(name):
    env = set(APP_SERVICES[name]["environment"]) - {"DJANGO_SETTINGS_MODULE", "NVIDIA_VISIBLE_DEVICES"}
    assert env <= _settings_env_names(), env - _settings_env_names()


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_command_names_existing_code(name):
    for argv in _commands(APP_SERVICES[name]):
        program = argv[0]
        if program == "gunicorn":
            module, _, attr = argv[1].partition(":")
            assert hasattr(importlib.import_module(module), attr or "application")
        elif program == "celery":
            app_module = argv[argv.index("-A") + 1]
            mod = importlib.import_module(f"{app_module}.celery")
            assert mod.app.main and argv[argv.index("-A") + 2] == "worker"
        elif program == "python":
            assert argv[1] == "manage.py" and (ROOT / "manage.py").is_file()
            assert argv[2] in get_commands(), f"no management command {argv[2]}"
        else:
            pytest.fail(f"{name}: unexpected program {program!r}")


def test_workers_consume_every_queue_the_tasks_are_routed_to():
    queues: dict[str, set[str]] = {}
    for name, s in APP_SERVICES.items():
        argv = _argv(s)
        if argv[0] == "celery":
            queues[name] = set(argv[argv.index("-Q") + 1].split(","))
    routed = {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert set().union(*queues.values()) == routed == {"default", "curation", "exports", "gpu"}
    assert queues["worker-gpu"] == {"gpu"} and "gpu" not in queues["worker"]


def test_gpu_worker_reserves_a_gpu():
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)


def test_web_serves_the_wsgi_app_after_migrations():
    web = SERVICES["web"]
    assert _argv(web)[:2] == ["gunicorn", "config.wsgi:application"]
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "8000:8000" in web["ports"]


def test_stateful_services_have_healthchecks_and_volumes():
    for name in ["postgres", "redis"]:
        assert SERVICES[name]["healthcheck"]["test"] and SERVICES[name]["volumes"]
    url = APP_SERVICES["web"]["environment"]["DATABASE_URL"]
    pg = SERVICES["postgres"]["environment"]
    assert url == f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
