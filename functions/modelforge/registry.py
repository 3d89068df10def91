"""What the model registry holds, typed: a model's name, its versions, its champion pointer and the promotion
history, with the rules that read them (the decision threshold, which machines trained a model).

The field names are the models table's attribute names: ``adapters.model_registry`` maps items to these and
back without renaming anything, so items written before these types existed read back unchanged. Pydantic
only (no numpy, no boto3): the API's zip function imports this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, PlainSerializer
from pydantic_core import CoreSchema, core_schema

from modelforge.errors import MissingArtifactError
from modelforge.jobs import FailureEventSource, Indicator, TrainingOptions
from modelforge.lazy_model import LazyModel

CHAMPION_PREFIX = "champion#"
HISTORY_PREFIX = "history#"

# Stored as ``datetime.isoformat()`` strings ("+00:00", not pydantic's "Z"), so a version read back and
# written again keeps the very strings it had.
IsoDatetime = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


@dataclass(frozen=True)
class ModelName:
    """A model's identity, ``(machine_name, indicator)``, and the table keys derived from it. ``machine_name``
    is a machine's name or a fleet's; neither can contain ``#`` (see schemas.MACHINE_NAME_PATTERN), which is
    what makes ``"<machine>#<indicator>"`` parse back."""

    machine_name: str
    indicator: Indicator

    def __post_init__(self) -> None:
        object.__setattr__(self, "indicator", Indicator(self.indicator))  # "status" is accepted too
        if not self.machine_name or "#" in self.machine_name:
            raise ValueError(f"not a machine or fleet name: {self.machine_name!r}")

    @classmethod
    def parse(cls, key: str) -> ModelName:
        """``"M-1#status"`` -> ``ModelName("M-1", Indicator.STATUS)``; ValueError for anything else."""
        machine_name, _, indicator = key.rpartition("#")
        try:
            return cls(machine_name, Indicator(indicator))
        except ValueError as error:
            raise ValueError(f"not a model name (<machine>#<indicator>): {key!r}") from error

    @classmethod
    def from_pointer_key(cls, key: str) -> ModelName:
        """``"champion#M-1#status"`` -> ``ModelName("M-1", Indicator.STATUS)``."""
        if not key.startswith(CHAMPION_PREFIX):
            raise ValueError(f"not a champion pointer key: {key!r}")
        return cls.parse(key.removeprefix(CHAMPION_PREFIX))

    @property
    def key(self) -> str:
        """The versions' partition key, ``"<machine>#<indicator>"``."""
        return f"{self.machine_name}#{self.indicator.value}"

    @property
    def pointer_key(self) -> str:
        """The partition key of the champion pointer item."""
        return f"{CHAMPION_PREFIX}{self.key}"

    @property
    def history_key(self) -> str:
        """The partition key of the promotion history items."""
        return f"{HISTORY_PREFIX}{self.key}"

    @property
    def label(self) -> str:
        """How error messages and the API's routes name the model: ``"<machine>/<indicator>"``."""
        return f"{self.machine_name}/{self.indicator.value}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """In a pydantic model: read from the key string (or a ModelName), written as the key string."""
        return core_schema.no_info_plain_validator_function(
            cls._coerce, json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda name: name.key))

    @classmethod
    def _coerce(cls, value: Any) -> ModelName:
        if isinstance(value, ModelName):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise ValueError(f"not a model name: {value!r}")


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"  # registered by training, not yet judged by the gate
    CHAMPION = "champion"  # the one version predictions come from
    ARCHIVED = "archived"  # a former champion (a rollback can bring it back)
    REJECTED = "rejected"  # the gate (or a person) turned it down


class ArtifactRef(NamedTuple):
    """An object in the models bucket, the sha256 it must have when read back, and the S3 object version that
    was hashed. Reading that version (not whatever the key holds now) is what ties the bytes to the write
    training made: a later write under the same key is another version, never the one served. ``version_id``
    is None for versions registered before it was recorded (they are read by key, as they always were)."""

    uri: str
    sha256: str
    version_id: str | None = None


class ObjectVersion(NamedTuple):
    """One version of an object in the models bucket, or a delete marker, as ListObjectVersions shows it."""

    uri: str
    version_id: str
    delete_marker: bool = False


class ModelVersion(LazyModel):
    """One trained version of a model, as its registry item holds it.

    Training writes the fields down to ``holdout_version_id``; the registry adds the decision fields (``status``
    and who changed it, when and why) and the latest drift check. Every field but the key and the artifact
    is optional so that versions registered before a field existed still read. Unknown attributes are kept
    (``extra="allow"``) and written back as they were.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    model_name: ModelName
    version: str
    machine_name: str  # the model's name: a machine's, or a fleet's
    indicator: Indicator
    artifact_uri: str
    artifact_sha256: str
    machine_names: list[str] | None = None  # the machines whose data trained it (see ``machines``)
    failure_events: FailureEventSource = FailureEventSource.RPM_DROP
    options: dict[str, Any] | None = None  # the job's TrainingOptions, as given (see ``training_options``)
    process_id: str | None = None
    model_format: str | None = None
    report_uri: str | None = None
    report_sha256: str | None = None
    profile_uri: str | None = None
    profile_sha256: str | None = None
    holdout_uri: str | None = None
    holdout_sha256: str | None = None
    # The S3 VersionId of each artifact as training wrote it (see ArtifactRef); absent from older items.
    artifact_version_id: str | None = None
    report_version_id: str | None = None
    profile_version_id: str | None = None
    holdout_version_id: str | None = None
    # The feature recipe document (domain.recipe); absent from versions stored before it existed, whose
    # recipe is their feature names.
    recipe_uri: str | None = None
    recipe_sha256: str | None = None
    recipe_version_id: str | None = None
    feature_names: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] | None = None
    baseline_metrics: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    lineage: dict[str, Any] | None = None
    feature_importance: dict[str, float] | None = None
    device: str | None = None
    code_version: str | None = None
    library_versions: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    trained_at: IsoDatetime | None = None
    status: VersionStatus = VersionStatus.CANDIDATE
    status_reason: str | None = None
    decided_by: str | None = None
    decided_at: IsoDatetime | None = None
    # Set when a person promoted it over the gate (a rejected or undecided version), with the status overridden;
    # decided_by and status_reason then say who and why. The next promotion of it without override clears them.
    override: bool | None = None
    overridden_status: VersionStatus | None = None
    archived_at: IsoDatetime | None = None
    last_drift_check: dict[str, Any] | None = None  # a logic.drift.DriftCheckResult, as JSON

    @property
    def decision_threshold(self) -> float | None:
        """The score at or above which a status model says "pre-failure", chosen on validation data at
        training: the params' threshold, else the metrics' one, else None (callers then use 0.5). A threshold
        of 0.0 is a threshold, not a missing one."""
        for source in (self.params or {}, self.metrics or {}):
            if source.get("threshold") is not None:
                return float(source["threshold"])
        return None

    @property
    def machines(self) -> list[str]:
        """The machines whose data trained this model: a fleet's machines, else the one machine it is named
        after. Drift checks read these machines' recent data, and a retraining trains on them again."""
        return list(self.machine_names or [self.machine_name])

    @property
    def is_fleet(self) -> bool:
        """Trained on more than one machine's pooled data (a single machine's item lists just itself)."""
        return len(self.machines) > 1

    @property
    def training_options(self) -> TrainingOptions | None:
        return TrainingOptions.model_validate(self.options) if self.options else None

    @property
    def artifact(self) -> ArtifactRef:
        return ArtifactRef(self.artifact_uri, self.artifact_sha256, self.artifact_version_id)

    def report_artifact(self) -> ArtifactRef:
        """The HTML report."""
        return self._stored("report", self.report_uri, self.report_sha256, self.report_version_id)

    def profile_artifact(self) -> ArtifactRef:
        """The training profile drift checks compare recent data with."""
        return self._stored("profile", self.profile_uri, self.profile_sha256, self.profile_version_id)

    def holdout_artifact(self) -> ArtifactRef:
        """The held-out rows the gate scores this version (and the champion) on."""
        return self._stored("holdout", self.holdout_uri, self.holdout_sha256, self.holdout_version_id)

    def recipe_artifact(self) -> ArtifactRef | None:
        """The feature recipe /predict and the drift checks rebuild features from (None: older versions)."""
        if self.recipe_uri is None or self.recipe_sha256 is None:
            return None
        return ArtifactRef(self.recipe_uri, self.recipe_sha256, self.recipe_version_id)

    def stored_artifacts(self) -> list[ArtifactRef]:
        """Every artifact this item references (the model first): what a sweep of leftovers must keep."""
        refs = [self.artifact]
        for stored in (self.report_artifact, self.profile_artifact, self.holdout_artifact):
            try:
                refs.append(stored())
            except MissingArtifactError:
                continue
        if (recipe := self.recipe_artifact()) is not None:
            refs.append(recipe)
        return refs

    def _stored(self, kind: str, uri: str | None, sha256: str | None, version_id: str | None) -> ArtifactRef:
        if uri is None or sha256 is None:
            raise MissingArtifactError(f"{self.model_name.label} {self.version} has no stored {kind}")
        return ArtifactRef(uri, sha256, version_id)


class ChampionPointer(LazyModel):
    """Which version is a model's champion. ``revision`` counts the changes; a promotion is conditioned on
    the revision it read, so two racing promotions cannot both win."""

    model_config = ConfigDict(frozen=True)

    name: ModelName
    champion_version: str
    revision: int
    updated_at: IsoDatetime | None = None
    promoted_by: str | None = None
    reason: str | None = None


class PromotionEvent(LazyModel):
    """One change of champion, as the history keeps it: the pointer revision it produced, from which version
    (None: the model's first champion) to which, by whom and why. ``override``: a person promoted a version
    the gate had rejected or never decided on, whose status then was ``overridden_status``; the history is
    where that stays on record after the version's own item moves on."""

    model_config = ConfigDict(frozen=True)

    revision: int
    from_version: str | None = None
    to_version: str
    reason: str
    promoted_by: str
    at: IsoDatetime
    override: bool = False
    overridden_status: VersionStatus | None = None


class PromotionResult(LazyModel):
    """What ``ModelRegistry.promote`` returns. ``previous_version`` is None for a model's first champion and
    when the version already was the champion (nothing changed)."""

    model_config = ConfigDict(frozen=True)

    champion_version: str
    previous_version: str | None = None
    revision: int
