"""Thumbnails made once with Pillow and cached on disk (no Django imports: plain file work)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps

# Longest side in pixels per size name; "full" is the original file, untouched.
SIZES: dict[str, int] = {"thumb": 320, "large": 1024}


def thumbnail(source: Path, cache_dir: Path, key: str, size: str) -> Path:
    """Path of the cached JPEG of `source` at `size`, made on first use.

    EXIF orientation is applied (phone photos are stored sideways with a rotate tag). The
    file is written to a temporary name and renamed, so concurrent requests for the same
    thumbnail never read a half-written file; the loser of the race simply overwrites it.
    `key` must change when the source changes (the caller passes id + mtime).
    """
    target = cache_dir / f"{key}-{size}.jpg"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with PILImage.open(source) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        edge = SIZES[size]
        im.thumbnail((edge, edge), PILImage.Resampling.LANCZOS)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                im.save(fh, "JPEG", quality=85, optimize=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


def missing_svg(label: str, detail: str) -> bytes:
    """A visible "file missing" notice in place of a broken-image icon. Text is XML-escaped."""
    from xml.sax.saxutils import escape

    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
        '<rect width="320" height="240" fill="#fbe3e1" stroke="#b3261e" stroke-width="4"/>'
        '<text x="160" y="110" font-family="sans-serif" font-size="22" fill="#b3261e" text-anchor="middle">'
        f"{escape(label)}</text>"
        '<text x="160" y="145" font-family="sans-serif" font-size="13" fill="#5d6876" text-anchor="middle">'
        f"{escape(detail[:48])}</text></svg>"
    ).encode()
