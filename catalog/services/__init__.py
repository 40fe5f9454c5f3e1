"""Writes of the catalogue, one module per job (re-exported here: `from catalog import services`):

- annotations: the one writer of annotations' versions (annotation_version_append)
- release: importing the public ImageNet-X release
- ingest: registering a folder of images
- demo: the demo photographs; users: the demo accounts

Functions are named `<entity>_<verb>`, keyword-only, typed and transactional.
"""

from catalog.services.annotations import (
    annotation_create_statement,
    annotation_version_append,
    annotation_versions_import,
)
from catalog.services.demo import DEMO_SLUG, DemoBuildResult, demo_dataset_build
from catalog.services.ingest import IngestError, IngestResult, images_ingest
from catalog.services.release import BULK_BATCH, IMAGENET_X_SLUG, ImportResult, ReleaseImportError, imagenet_x_import
from catalog.services.users import DEMO_USERS, DemoAccount, demo_users_ensure

__all__ = [
    "BULK_BATCH",
    "DEMO_SLUG",
    "DEMO_USERS",
    "DemoAccount",
    "DemoBuildResult",
    "IMAGENET_X_SLUG",
    "ImportResult",
    "IngestError",
    "IngestResult",
    "ReleaseImportError",
    "annotation_create_statement",
    "annotation_version_append",
    "annotation_versions_import",
    "demo_dataset_build",
    "demo_users_ensure",
    "images_ingest",
    "imagenet_x_import",
]
