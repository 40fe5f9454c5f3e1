"""A stand-in app demo hook: demo_setup must call `setup(stdout=...)` of every app that has one."""

from catalog.models import Dataset


def setup(*, stdout) -> None:
    _, created = Dataset.objects.get_or_create(slug="hooked", defaults={"name": "made by a demo hook"})
    stdout.write("hook ran" + (" (created)" if created else ""))
