"""manage.py demo_setup: everything `make demo` needs after migrate (idempotent).

Demo accounts, the demo photographs, the ImageNet-X release, then each app's own demo data
through its optional `<app>.demo.setup(*, stdout)` hook (cross-app contract).
"""

from __future__ import annotations

import importlib
import importlib.util

from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.services import demo_users_ensure

# Order follows the data flow: each app's demo data may read what the apps before it made.
DEMO_HOOK_APPS = ("prototypes", "annotator", "review", "curation", "exports", "evaluation")


class Command(BaseCommand):
    help = "Create demo accounts, build the demo set, import ImageNet-X and run every app's demo hook."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--skip-imagenet-x", action="store_true", help="Do not import the ImageNet-X release.")

    def handle(self, *args, skip_imagenet_x: bool = False, **options) -> None:
        out = self.stdout
        out.write(self.style.MIGRATE_HEADING("Demo accounts"))
        accounts = demo_users_ensure()
        out.write(self.style.MIGRATE_HEADING("Demo photographs"))
        call_command("build_demo_set", stdout=out)
        if not skip_imagenet_x:
            out.write(self.style.MIGRATE_HEADING("ImageNet-X release"))
            call_command("import_imagenet_x", stdout=out)
        for app in DEMO_HOOK_APPS:
            module_name = f"{app}.demo"
            try:
                found = importlib.util.find_spec(module_name) is not None
            except ModuleNotFoundError:  # the app itself is absent
                found = False
            if not found:
                continue
            out.write(self.style.MIGRATE_HEADING(f"Demo data of {app}"))
            importlib.import_module(module_name).setup(stdout=out)
        out.write(self.style.MIGRATE_HEADING("Sign in with (user / password: roles)"))
        for a in accounts:
            note = "" if a.created else " (already existed)"
            out.write(f"  {a.username:<11} / {a.password:<18} {', '.join(a.roles)}{note}")
