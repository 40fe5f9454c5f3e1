"""Check one image file with Pillow (pure Python: no Django imports).

Decoding the whole image, not just reading its header, is what catches the files that break
a training run later: truncated JPEGs, corrupt scans, files with an image extension that are
something else. Pillow's `Image.open` only parses the header; `load()` decodes every pixel.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
# EXIF orientations 5-8 turn the picture by 90 degrees: width and height swap on display.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True)
class FileCheck:
    readable: bool
    reason: str  # "" when readable
    width: int | None  # as displayed, after the EXIF orientation
    height: int | None
    sha256: str
    format: str = ""
    mode: str = ""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_image(path: Path) -> FileCheck:
    """Decode `path` fully; never raises for a bad image (returns readable=False with the reason)."""
    try:
        digest = sha256_of(path)
    except OSError as exc:
        return FileCheck(False, f"cannot read file: {exc.strerror or exc}", None, None, "")
    if path.stat().st_size == 0:
        return FileCheck(False, "empty file (0 bytes)", None, None, digest)
    try:
        with warnings.catch_warnings():
            # A decompression-bomb *warning* is not a failure; the error above the hard limit is.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, mode = im.format or "", im.mode
                im.load()  # full decode: raises on truncated or corrupt pixel data
                width, height = im.size
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except UnidentifiedImageError:
        return FileCheck(False, "not an image Pillow can identify", None, None, digest)
    except Image.DecompressionBombError as exc:
        return FileCheck(False, f"refused as a decompression bomb: {exc}", None, None, digest)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports corrupt data as OSError ("image file is truncated"), SyntaxError
        # (broken PNG chunks) or ValueError, depending on the codec.
        return FileCheck(False, f"cannot decode: {exc}"[:500], None, None, digest)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return FileCheck(True, "", width, height, digest, fmt, mode)
