"""manage.py review_tally_check [--repair]: compare the per-image answer tallies with a recount."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from review.services.tally import review_tally_rebuild


class Command(BaseCommand):
    help = "Compare every image's stored answer tally (what the audit queue reads) with a recount; --repair fixes them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repair", action="store_true", help="Write the recount where it differs.")

    def handle(self, *args, repair: bool = False, **options) -> None:
        r = review_tally_rebuild(repair=repair)
        if not r.n_wrong:
            self.stdout.write(self.style.SUCCESS(f"{r.images} images counted: every tally matches."))
            return
        head = ", ".join(map(str, r.wrong[:10]))
        msg = f"{r.n_wrong} of {r.images} tallies differ from the recount (images {head}{', ...' if r.n_wrong > 10 else ''})"
        if repair:
            self.stdout.write(self.style.WARNING(msg + ": repaired."))
            return
        raise CommandError(msg + ". Run with --repair to fix them.")
