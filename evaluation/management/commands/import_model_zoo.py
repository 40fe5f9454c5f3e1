"""Import the paper's model zoo (the toolkit's published accuracies_per_factor.csv tables, shipped
in evaluation/reference/). Idempotent."""

from django.core.management.base import BaseCommand

from evaluation import services


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **o):
        n = services.zoo_import()
        self.stdout.write(f"model zoo: {n} rows added" if n else "model zoo: already imported, nothing added")
