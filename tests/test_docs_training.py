"""docs/training.md carries the configuration reference generated from TrainConfig."""

from conftest import REPO

from ophsd.config import config_reference


def test_configuration_reference_is_current() -> None:
    text = (REPO / "docs/training.md").read_text(encoding="utf-8")
    assert config_reference() in text, "regenerate the table with ophsd.config.config_reference()"
