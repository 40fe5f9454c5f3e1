"""The Django-free writers against the public ImageNet-X files, line by line (all 60,101 records)."""

from __future__ import annotations

import gzip
import json

import pytest

from catalog.factors import RELEASE_FACTOR_ORDER
from exports import writers
from tests.exports.factories import package_lines


@pytest.mark.embedded
@pytest.mark.parametrize("split", ["val", "train"])
def test_writer_reproduces_every_line_of_the_public_files(tmp_path, split):
    multi, top = package_lines(split, "multi"), package_lines(split, "top")
    w = writers.ImageNetXSplitWriter(tmp_path, split)
    for m_line, t_line in zip(multi, top, strict=True):
        m, t = json.loads(m_line), json.loads(t_line)
        tops = [k for k in RELEASE_FACTOR_ORDER if t[k]]
        w.write(
            m["file_name"],
            m["class"],
            [m[k] for k in RELEASE_FACTOR_ORDER],
            m["justification"] or "",
            m["one_word"] or "",
            tops[0] if tops else "",
        )
    w.close()
    assert (tmp_path / w.multi_name).read_bytes() == b"".join(multi)
    assert (tmp_path / w.top_name).read_bytes() == b"".join(top)
    assert w.count == len(multi) and w.no_top_factor == {"val": 2, "train": 6}[split]


@pytest.mark.embedded
def test_archive_bytes_do_not_depend_on_file_times_or_listing_order(tmp_path):
    import os

    src = tmp_path / "src"
    src.mkdir()
    for name in ("b.txt", "a.txt"):
        (src / name).write_text(name)
    writers.write_deterministic_targz(tmp_path / "one.tar.gz", src, ["b.txt", "a.txt"], "x-1.0.0")
    os.utime(src / "a.txt", (1, 1))
    writers.write_deterministic_targz(tmp_path / "two.tar.gz", src, ["a.txt", "b.txt"], "x-1.0.0")
    one = (tmp_path / "one.tar.gz").read_bytes()
    assert one == (tmp_path / "two.tar.gz").read_bytes()
    assert one[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    assert gzip.decompress(one)  # a valid gzip stream
