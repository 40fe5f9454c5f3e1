"""The licences a release may carry: SPDX identifiers (spdx.org/licenses) that suit a dataset
of annotations. A release's licence is one of these, checked by the form, the API and the
service alike, so the datasheet and the Croissant file always name a real licence."""

from __future__ import annotations

SPDX_LICENSES: tuple[str, ...] = (
    "CC-BY-NC-4.0",  # ImageNet-X's own licence (the default)
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0",
    "CC0-1.0",
    "ODC-By-1.0",
    "ODbL-1.0",
    "PDDL-1.0",
    "CDLA-Permissive-2.0",
    "CDLA-Sharing-1.0",
    "MIT",
    "Apache-2.0",
    "BSD-3-Clause",
)
DEFAULT_LICENSE = "CC-BY-NC-4.0"
# Release notes are shown on a page and written into the datasheet: a few pages of text at most.
NOTES_MAX = 20_000
