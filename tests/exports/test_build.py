"""Building a release: ImageNet-X-compatible files, reproducibility, manifest, croissant."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pandas as pd
import pytest

from catalog.factors import META_LABELS
from exports import services
from exports.models import ReleaseStatus
from tests.exports.factories import package_dir, package_lines


def _dir(release):
    return services.release_dir(release)


def test_exporting_the_imported_release_unchanged_reproduces_the_public_files(done_run, build):
    release = build(done_run)
    assert release.status == ReleaseStatus.BUILT
    for split, n in (("val", 40), ("train", 20)):
        for kind in ("multi", "top"):
            ours = (_dir(release) / f"imagenet_x_{split}_{kind}_factor.jsonl").read_bytes()
            assert ours == b"".join(package_lines(split, kind, n)), (split, kind)


def test_prototypes_file_reproduces_the_published_prototypes(db, build):
    from tests.exports.factories import curation_run_from_final, load_imagenet_x

    release = build(curation_run_from_final(load_imagenet_x(n_val=5, n_train=5, all_prototypes=True)))
    published = (package_dir() / "prototypical_paths.csv").read_bytes()
    assert (_dir(release) / "prototypical_paths.csv").read_bytes() == published


def test_classes_file_lists_every_class_with_its_meta_label(done_run, build):
    release = build(done_run)
    rows = (_dir(release) / "classes.csv").read_text().splitlines()
    assert rows[0] == "class,wnid,name,meta_label"
    assert len(rows) == 1001 and rows[1].startswith("0,n01440764,tench,")
    assert rows[1].rsplit(",", 1)[1] in META_LABELS


def test_exported_jsonl_loads_with_the_imagenet_x_package(done_run, build, monkeypatch, tmp_path):
    import imagenet_x.utils as ix

    release = build(done_run)
    folder = tmp_path / "annotations"
    folder.mkdir()
    for f in _dir(release).iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "imagenet_1k_classes_to_100_metaclasses.csv").symlink_to(
        package_dir() / "imagenet_1k_classes_to_100_metaclasses.csv"
    )
    monkeypatch.setattr(ix, "get_annotation_path", lambda: folder)
    protos = set(pd.read_csv(folder / "prototypical_paths.csv").file_name)
    for split, n in (("val", 40), ("train", 20)):
        names = [json.loads(line)["file_name"] for line in package_lines(split, "multi", n)]
        for which in ("top", "multi"):
            df = ix.load_annotations(which_factor=which, partition=split, filter_prototypes=True)
            assert len(df) == len([x for x in names if x not in protos])
            assert set(ix.FACTORS) <= set(df.columns)
        assert len(ix.load_annotations(which_factor="top", partition=split, filter_prototypes=False)) == n


def test_rebuilding_a_release_gives_a_byte_identical_archive(done_run, build):
    first = build(done_run)
    archive = services.releases_root() / first.archive_path
    first_bytes = archive.read_bytes()
    second = build(done_run, release=first)
    assert second.archive_sha256 == first.archive_sha256
    assert archive.read_bytes() == first_bytes
    assert hashlib.sha256(first_bytes).hexdigest() == first.archive_sha256


def test_archive_members_are_sorted_with_fixed_metadata(done_run, build):
    release = build(done_run)
    with tarfile.open(services.releases_root() / release.archive_path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == release.base_name
    assert names[1:] == sorted(names[1:])
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(315532800, 0, 0, "root")}
    assert {n.split("/", 1)[1] for n in names[1:]} == set(release.files.values_list("name", flat=True))


def test_manifest_lists_the_sha256_of_every_other_file(done_run, build):
    release = build(done_run)
    lines = (_dir(release) / "MANIFEST").read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    others = {f.name: f.sha256 for f in release.files.exclude(name="MANIFEST")}
    assert listed == others
    for name, sha in listed.items():
        assert hashlib.sha256((_dir(release) / name).read_bytes()).hexdigest() == sha


def test_croissant_metadata_describes_every_file_with_its_checksum(done_run, build):
    release = build(done_run)
    meta = json.loads((_dir(release) / "croissant.json").read_text())
    assert meta["@type"] == "sc:Dataset" and meta["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert meta["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert meta["version"] == "1.0.0"
    shas = {f.name: f.sha256 for f in release.files.all()}
    for obj in meta["distribution"]:
        assert obj["@type"] == "cr:FileObject" and obj["sha256"] == shas[obj["name"]]
    rs = {r["name"]: r for r in meta["recordSet"]}
    assert set(rs) == {"val_multi_factor", "val_top_factor", "train_multi_factor", "train_top_factor"}
    fields = [f["name"] for f in rs["val_top_factor"]["field"]]
    first = json.loads(package_lines("val", "top", 1)[0])
    assert fields == list(first.keys())


def test_datasheet_has_gebru_sections_and_figures_from_the_data(done_run, build):
    release = build(done_run, notes="First release.")
    sheet = json.loads((_dir(release) / "datasheet.json").read_text())
    for section in (
        "motivation",
        "composition",
        "collection_process",
        "preprocessing_cleaning_labeling",
        "uses",
        "distribution",
        "maintenance",
    ):
        assert sheet[section]
    assert sheet["composition"]["Images per split"] == {"train": 20, "val": 40}
    assert sheet["collection_process"]["Annotators"]["imported_records"] == 60
    assert sheet["collection_process"]["Multi-review"]["agreement_per_factor"] is None
    assert sheet["preprocessing_cleaning_labeling"]["Curation parameters"] == done_run.params
    val = [json.loads(x) for x in package_lines("val", "multi", 40)]
    assert sheet["composition"]["Images per factor (multi-factor files)"]["val"]["pose"] == sum(r["pose"] for r in val)
    md = (_dir(release) / "DATASHEET.md").read_text()
    assert "## Composition" in md and "First release." in md and "| val | 40 |" in md


@pytest.mark.embedded
def test_build_works_on_the_embedded_default(done_run, build):
    release = build(done_run)
    assert release.status == ReleaseStatus.BUILT
    assert release.files.count() == 10


def test_croissant_metadata_loads_with_mlcroissant_and_yields_the_records(done_run, build):
    mlc = pytest.importorskip("mlcroissant")
    release = build(done_run)
    ds = mlc.Dataset(jsonld=str(_dir(release) / "croissant.json"))
    issues = ds.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    records = list(ds.records("val_multi_factor"))
    first = json.loads(package_lines("val", "multi", 1)[0])
    assert len(records) == 40
    assert records[0]["val_multi_factor/file_name"].decode() == first["file_name"]
    assert records[0]["val_multi_factor/pose"] == first["pose"]
