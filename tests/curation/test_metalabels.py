"""Meta-labels from WordNet hypernym paths (logic tested on a hand-made map) and maintainer corrections."""

import pytest

from catalog.models import ImageClass
from curation import services
from curation.metalabels import derive_from_hypernyms, derive_meta_labels, wordnet_hypernym_paths
from infra.errors import DomainError

from .conftest import make_dataset, tiny_dataset  # noqa: F401

HYPERNYMS = {
    "n02110341": [["dalmatian.n.02", "dog.n.01", "canine.n.02", "carnivore.n.01", "animal.n.01", "entity.n.01"]],
    "n02814533": [
        [
            "beach_wagon.n.01",
            "car.n.01",
            "motor_vehicle.n.01",
            "self-propelled_vehicle.n.01",
            "wheeled_vehicle.n.01",
            "vehicle.n.01",
            "conveyance.n.03",
            "entity.n.01",
        ]
    ],
    "n09999999": [["thing.n.12", "entity.n.01"]],
    # Two paths: the nearer meta-label (covering at depth 1) beats device at depth 2.
    "n03000000": [["mask.n.04", "covering.n.02", "artifact.n.01"], ["mask.n.04", "disguise.n.02", "device.n.01"]],
}

pytestmark = pytest.mark.embedded


def test_nearest_meta_label_on_the_hypernym_paths_wins():
    assert derive_from_hypernyms(HYPERNYMS["n02110341"]) == "dog"
    assert derive_from_hypernyms(HYPERNYMS["n02814533"]) == "wheeled_vehicle"  # not the farther "vehicle"
    assert derive_from_hypernyms(HYPERNYMS["n03000000"]) == "covering"


def test_class_without_any_meta_label_ancestor_is_other():
    assert derive_from_hypernyms(HYPERNYMS["n09999999"]) == "other"
    assert derive_from_hypernyms([]) == "other"


def test_derivation_maps_every_wnid_and_skips_cleanly_without_wordnet():
    assert derive_meta_labels(list(HYPERNYMS), paths_of=HYPERNYMS.get) == {
        "n02110341": "dog",
        "n02814533": "wheeled_vehicle",
        "n09999999": "other",
        "n03000000": "covering",
    }
    assert derive_meta_labels(["n02110341"], paths_of=lambda wnid: None) is None


def test_wordnet_lookup_returns_none_or_paths_never_raises():
    paths = wordnet_hypernym_paths("n02110341")
    if paths is None:  # this machine: NLTK's WordNet data is not installable from the registries
        return
    assert derive_from_hypernyms(paths) == "dog"


@pytest.mark.django_db
def test_maintainer_corrects_a_class_meta_label(tiny_dataset):  # noqa: F811
    cls = ImageClass.objects.get(dataset=tiny_dataset, index=2)
    services.image_class_meta_label_set(image_class_id=cls.id, meta_label="natural_object")
    cls.refresh_from_db()
    assert (cls.meta_label, cls.meta_label_source) == ("natural_object", "maintainer")


@pytest.mark.django_db
def test_unknown_meta_label_is_refused_and_nothing_changes(tiny_dataset):  # noqa: F811
    cls = ImageClass.objects.get(dataset=tiny_dataset, index=2)
    with pytest.raises(DomainError, match="meta_label must be one of"):
        services.image_class_meta_label_set(image_class_id=cls.id, meta_label="spaceship")
    cls.refresh_from_db()
    assert (cls.meta_label, cls.meta_label_source) == ("bird", "release")


@pytest.mark.django_db
def test_wordnet_derivation_without_wordnet_data_changes_nothing(tiny_dataset):  # noqa: F811
    if wordnet_hypernym_paths("n02110341") is not None:
        pytest.skip("WordNet data is installed here")
    before = list(ImageClass.objects.values_list("id", "meta_label", "meta_label_source"))
    assert services.image_classes_meta_labels_derive(dataset_slug=tiny_dataset.slug) is None
    assert list(ImageClass.objects.values_list("id", "meta_label", "meta_label_source")) == before
