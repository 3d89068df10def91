"""A stored model's feature recipe, read back sha256-checked: what /predict and the drift checks rebuild the
model's features from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from modelforge.errors import ArtifactIntegrityError
from modelforge.registry import ModelVersion

if TYPE_CHECKING:
    from modelforge.domain.recipe import FeatureRecipe


class Artifacts(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


def load_recipe(version: ModelVersion, artifacts: Artifacts) -> FeatureRecipe | None:
    """The version's recipe document; None for versions stored before it existed (their feature names are
    their recipe). Raises ArtifactIntegrityError when the document is altered or unreadable."""
    ref = version.recipe_artifact()
    if ref is None:
        return None
    from modelforge.domain.recipe import FeatureRecipe  # pandas/NumPy: only once a model is loaded

    try:
        return FeatureRecipe.from_json(artifacts.get_verified(*ref))
    except ValueError as error:
        raise ArtifactIntegrityError(f"the feature recipe of {version.model_name.label} {version.version} "
                                     f"cannot be read: {error}") from error
