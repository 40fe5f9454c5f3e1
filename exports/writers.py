"""Release file writers. No Django imports: plain Python over records, paths and dicts.

Everything here is deterministic: the same input gives byte-identical files (no clocks, no
dict-order or filesystem-order dependence), which is what makes a rebuilt release archive
byte-identical to the first build.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import tarfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, BinaryIO

from catalog.factors import RELEASE_FACTOR_ORDER, RELEASE_KEY_ORDER

# Fixed archive member time: 1980-01-01T00:00:00Z (the ZIP epoch reproducible builds use;
# 0 makes GNU tar warn about an "implausibly old time stamp").
ARCHIVE_MTIME = 315532800
HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --- ImageNet-X JSONL ---------------------------------------------------------------------
def _json_str(value: str | None) -> str:
    # A missing text is null (our database stores it as ""; the public files never hold "").
    # The public files were written by pandas' to_json (ujson): ASCII with \\uXXXX escapes and
    # "/" escaped as "\\/"; encode_basestring_ascii is json.dumps' own C encoder for strings.
    return encode_basestring_ascii(value).replace("/", "\\/") if value else "null"


@lru_cache(maxsize=1 << 16)
def _flags_json(flags: tuple[bool, ...]) -> str:
    # At most 2**16 combinations and far fewer in practice: each is formatted once.
    return "".join(f',"{key}":{1 if value else 0}' for key, value in zip(RELEASE_FACTOR_ORDER, flags, strict=True))


def _head(file_name: str, class_index: int) -> str:
    return '{"file_name":' + _json_str(file_name) + ',"class":' + str(int(class_index))


def _tail(justification: str | None, one_word: str | None) -> str:
    return ',"justification":' + _json_str(justification) + ',"one_word":' + _json_str(one_word) + "}\n"


def imagenet_x_line(
    file_name: str, class_index: int, flags: Sequence[int | bool], justification: str | None, one_word: str | None
) -> bytes:
    """One line of an ImageNet-X annotation file, byte-for-byte in the public files' format.

    `flags` are in RELEASE_FACTOR_ORDER. Keys in RELEASE_KEY_ORDER, compact separators, factors
    as 0/1 integers, one object per line ending in "\\n".
    """
    flag_part = _flags_json(tuple(bool(v) for v in flags))
    return (_head(file_name, class_index) + flag_part + _tail(justification, one_word)).encode("ascii")


assert tuple(json.loads(imagenet_x_line("a/b", 0, [0] * 16, "", "é")).keys()) == RELEASE_KEY_ORDER
assert (
    imagenet_x_line("a/b", 1, [1] + [0] * 15, "x/ä", None)
    == json.dumps(
        {
            "file_name": "a/b",
            "class": 1,
            **{k: int(k == "multiple_objects") for k in RELEASE_FACTOR_ORDER},
            "justification": "x/ä",
            "one_word": None,
        },
        separators=(",", ":"),
    )
    .replace("/", "\\/")
    .encode()
    + b"\n"
)


_TOP_FLAGS: dict[str, str] = {
    key: _flags_json(tuple(k == key for k in RELEASE_FACTOR_ORDER)) for key in ("", *RELEASE_FACTOR_ORDER)
}


class ImageNetXSplitWriter:
    """Writes `imagenet_x_{split}_multi_factor.jsonl` and `..._top_factor.jsonl` in one pass.

    The multi-factor file has every selected factor; the top-factor file has only the top
    factor set (all zeros when an image has none, as in the public files).
    """

    def __init__(self, directory: Path, split: str) -> None:
        self.split = split
        self.multi_name = f"imagenet_x_{split}_multi_factor.jsonl"
        self.top_name = f"imagenet_x_{split}_top_factor.jsonl"
        self._multi: BinaryIO = open(directory / self.multi_name, "wb")  # noqa: SIM115 closed in close()
        self._top: BinaryIO = open(directory / self.top_name, "wb")  # noqa: SIM115
        self.count = 0
        self.multi_counts = dict.fromkeys(RELEASE_FACTOR_ORDER, 0)
        self.top_counts = dict.fromkeys(RELEASE_FACTOR_ORDER, 0)
        self.no_top_factor = 0

    def write(
        self,
        file_name: str,
        class_index: int,
        flags: Sequence[int | bool],
        justification: str | None,
        one_word: str | None,
        top_factor: str,
    ) -> None:
        # Both lines share everything but the flags: encode the name and the texts once.
        head = _head(file_name, class_index)
        tail = _tail(justification, one_word)
        flags = tuple(bool(v) for v in flags)
        self._multi.write((head + _flags_json(flags) + tail).encode("ascii"))
        self._top.write((head + _TOP_FLAGS[top_factor] + tail).encode("ascii"))
        self.count += 1
        for key, value in zip(RELEASE_FACTOR_ORDER, flags, strict=True):
            if value:
                self.multi_counts[key] += 1
        if top_factor:
            self.top_counts[top_factor] += 1
        else:
            self.no_top_factor += 1

    def close(self) -> None:
        self._multi.close()
        self._top.close()


# --- CSV files ----------------------------------------------------------------------------
def write_prototypes_csv(path: Path, file_names: Iterable[str]) -> int:
    """`prototypical_paths.csv` as published: a `file_name` header, one name per line, LF endings."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("file_name\n")
        for name in file_names:
            fh.write(f"{name}\n")
            n += 1
    return n


CLASSES_HEADER = ("class", "wnid", "name", "meta_label")


def write_classes_csv(path: Path, rows: Iterable[tuple[int, str, str, str]]) -> int:
    """`classes.csv`: class index (the JSONL `class`), WordNet id, name and the meta-label."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CLASSES_HEADER)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


# --- JSON documents -----------------------------------------------------------------------
def write_json(path: Path, data: Any) -> None:
    # sort_keys=False: the documents' key order is part of their readability; every input dict
    # is built in a fixed order, so the output stays deterministic.
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


GEBRU_SECTIONS: tuple[tuple[str, str], ...] = (
    ("motivation", "Motivation"),
    ("composition", "Composition"),
    ("collection_process", "Collection process"),
    ("preprocessing_cleaning_labeling", "Preprocessing, cleaning and labelling"),
    ("uses", "Uses"),
    ("distribution", "Distribution"),
    ("maintenance", "Maintenance"),
)


def datasheet_markdown(sheet: dict[str, Any]) -> str:
    """DATASHEET.md: the same content as datasheet.json, for people (Gebru et al.'s sections)."""
    out = [f"# Datasheet: {sheet['title']}", ""]
    out.append(f"Version **{sheet['version']}** of `{sheet['dataset']}`. {sheet['reference']}")
    out.append("")
    for key, title in GEBRU_SECTIONS:
        out.append(f"## {title}")
        out.append("")
        for question, answer in sheet[key].items():
            out.append(f"### {question}")
            out.append("")
            out.extend(_markdown_value(answer))
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _is_flat(d: Any) -> bool:
    return (
        isinstance(d, dict)
        and bool(d)
        and all(isinstance(v, int | float | str | bool) or v is None for v in d.values())
    )


def _markdown_value(value: Any) -> list[str]:
    if isinstance(value, dict) and value and all(_is_flat(v) for v in value.values()):
        # e.g. {split: {factor: count}}: one table, a column per outer key.
        cols = list(value)
        rows = list(dict.fromkeys(k for v in value.values() for k in v))
        lines = ["| | " + " | ".join(_md_cell(c) for c in cols) + " |", "|---|" + "---|" * len(cols)]
        lines += ["| " + _md_cell(r) + " | " + " | ".join(_md_cell(value[c].get(r)) for c in cols) + " |" for r in rows]
        return lines
    if isinstance(value, dict):
        if value and all(isinstance(v, int | float | str | bool) or v is None for v in value.values()):
            lines = ["| | |", "|---|---|"]
            lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in value.items()]
            return lines
        lines = []
        for k, v in value.items():
            if isinstance(v, dict | list):
                lines.append(f"- **{k}**:")
                lines += ["  " + line for line in _markdown_value(v)]
            else:
                lines.append(f"- **{k}**: {_md_text(v)}")
        return lines
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            keys = list(value[0].keys())
            lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(_md_cell(v.get(k)) for k in keys) + " |" for v in value]
            return lines
        return [f"- {_md_text(v)}" for v in value] or ["(none)"]
    return [_md_text(value)]


def _md_text(value: Any) -> str:
    if value is None:
        return "not available"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _md_cell(value: Any) -> str:
    return _md_text(value).replace("|", "\\|").replace("\n", " ")


# --- Croissant ----------------------------------------------------------------------------
# MLCommons Croissant 1.0 JSON-LD context, as the specification publishes it.
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

ENCODING = {".jsonl": "application/jsonlines", ".csv": "text/csv", ".json": "application/json", ".md": "text/markdown"}


def croissant_metadata(
    *,
    name: str,
    description: str,
    version: str,
    license_id: str,
    date_published: str,
    cite_as: str,
    url: str,
    files: Sequence[tuple[str, str, int]],
    annotation_files: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD: the dataset, one FileObject per file (with its sha256) and one
    RecordSet per annotation file (`annotation_files`: (file name, record set name)).
    """
    distribution = [
        {
            "@type": "cr:FileObject",
            "@id": fname,
            "name": fname,
            "contentUrl": fname,
            "contentSize": f"{size} B",
            "encodingFormat": ENCODING.get(Path(fname).suffix, "application/octet-stream"),
            "sha256": sha,
        }
        for fname, sha, size in files
    ]

    def field(rs: str, fname: str, column: str, data_type: str, description: str) -> dict[str, Any]:
        return {
            "@type": "cr:Field",
            "@id": f"{rs}/{column}",
            "name": column,
            "description": description,
            "dataType": data_type,
            "source": {"fileObject": {"@id": fname}, "extract": {"column": column}},
        }

    record_sets = []
    for fname, rs in annotation_files:
        fields = [
            field(rs, fname, "file_name", "sc:Text", "Image file name as the source dataset names it."),
            field(rs, fname, "class", "sc:Integer", "Class index (see classes.csv)."),
        ]
        fields += [
            field(rs, fname, key, "sc:Integer", f"1 when the factor '{key}' differs, else 0.")
            for key in RELEASE_FACTOR_ORDER
        ]
        fields += [
            field(rs, fname, "justification", "sc:Text", "The annotator's free-text justification."),
            field(rs, fname, "one_word", "sc:Text", "The annotator's one-word (short) description."),
        ]
        record_sets.append(
            {"@type": "cr:RecordSet", "@id": rs, "name": rs, "key": {"@id": f"{rs}/file_name"}, "field": fields}
        )
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": name,
        "description": description,
        "version": version,
        "license": license_id,
        "url": url,
        "citeAs": cite_as,
        "datePublished": date_published,
        "distribution": distribution,
        "recordSet": record_sets,
    }


# --- MANIFEST and the archive -------------------------------------------------------------
def write_manifest(path: Path, entries: Iterable[tuple[str, str]]) -> None:
    """`MANIFEST` in sha256sum's format ("<hex>  <name>"), sorted by name: `sha256sum -c MANIFEST` checks it."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for name, sha in sorted(entries):
            fh.write(f"{sha}  {name}\n")


def write_deterministic_targz(out_path: Path, src_dir: Path, names: Iterable[str], prefix: str) -> None:
    """Pack `names` (files of src_dir) under `prefix/` into a reproducible .tar.gz.

    Sorted member names, fixed mtime/uid/gid/uname/gname/mode, a fixed gzip header (mtime 0,
    no file name, fixed level) and the ustar format (no pax headers with times): the same
    files always give the same bytes.
    """
    with open(out_path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                tar.addfile(_tarinfo(prefix, tarfile.DIRTYPE, 0, 0o755))
                for name in sorted(names):
                    path = src_dir / name
                    info = _tarinfo(f"{prefix}/{name}", tarfile.REGTYPE, path.stat().st_size, 0o644)
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)


def _tarinfo(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
