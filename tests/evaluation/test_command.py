"""manage.py evaluate_model: the toolkit's option names, --json keyed by factor names; pickles
only from the command line."""

from __future__ import annotations

import gzip
import io
import json
import pickle

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from evaluation.parsing import read_testbed_pickle
from tests.evaluation.helpers import REFERENCE

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def run(*args) -> str:
    out = io.StringIO()
    call_command("evaluate_model", *args, stdout=out)
    return out.getvalue()


def test_json_output_of_the_reference_resnet50(researcher, imagenet_x_dataset):
    out = run("--predictions", str(REFERENCE / "ResNet50.csv.gz"), "--name", "ResNet-50", "--dataset", "imagenet-x",
              "--labels", "toolkit", "--which-factor", "top", "--correctness", "class", "--toolkit-compatible",
              "--no-figures", "--json", "--user", researcher.username)  # fmt: skip
    data = json.loads(out)
    assert data["mode"] == "toolkit" and data["worst_factor"] == "texture"
    assert round(data["factors"]["texture"]["error_ratio"], 2) == 2.39
    assert set(data["factors"]) >= {"pose", "background", "texture", "multiple_objects"}


def test_a_bad_file_is_a_command_error_naming_the_line(researcher, imagenet_x_dataset, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file_name,predicted_class,predicted_probability\nILSVRC2012_val_00000001.JPEG,1,7\n")
    with pytest.raises(CommandError, match="Line 2"):
        run("--predictions", str(bad), "--labels", "toolkit", "--user", researcher.username)


def test_testbed_pickles_are_read_from_local_files(tmp_path):
    names = np.array([f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)])
    logits = np.eye(4, 1000, dtype=np.float32) * 5
    path = tmp_path / "m.pickle"
    path.write_bytes(pickle.dumps({"model": "tiny", "logits": logits}))
    model, preds = read_testbed_pickle(str(path), file_names=names, n_classes=1000)
    assert model == "tiny" and preds.predicted_class.tolist() == [0, 1, 2, 3]
    assert gzip.decompress((REFERENCE / "ViT.csv.gz").read_bytes()).startswith(b"file_name,")
