"""Search spaces: YAML files validated at the door into frozen dataclasses.

A search space names the dataset, the tuner and, for every hyperparameter, its
role: ``scientific`` (what the study compares, such as architecture and depth),
``nuisance`` (tuned afresh in every scientific cell with the same budget, such as
dropout, weight decay and learning rate) or ``fixed``. Anything unknown or out of
range raises :class:`BadInput` naming the file, the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from study.errors import BadInput, check_choice

ROLES = ("scientific", "nuisance", "fixed")
TUNERS = ("random", "quasi_random", "bayesian", "hyperband", "grid")
#: Tuners whose budget is ``trials_per_cell`` (grid runs its full grid, hyperband its schedule).
TRIAL_BUDGET_TUNERS = ("random", "quasi_random", "bayesian")
WEIGHT_DECAY_TYPES = ("l2", "adamw")
STUDY_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")  # used with fullmatch: no trailing newline slips through

#: Documented upper bounds (README, "Search spaces"); they apply to fixed values, listed values and ranges.
MAX_EPOCHS = 10_000
#: Study seeds feed numpy SeedSequence and keras-tuner (which adds 1): kept within a signed 31-bit integer.
MAX_SEED = 2**31 - 2
MAX_BATCH_SIZE = 65_536
MAX_LEARNING_RATE = 10.0
MAX_WEIGHT_DECAY = 1.0
MAX_DEPTH = 64
MAX_WIDTH = 4096
MAX_KERNEL_SIZE = 1024
MAX_TRIALS_PER_CELL = 10_000
MAX_REPEAT_SEEDS = 1000
MAX_CLIPNORM = 1.0e6
MAX_PARAMETER_BUDGET = 10**9


@dataclass(frozen=True)
class HyperparameterKind:
    """What values one hyperparameter may take, and its default when a space omits it."""

    value_type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    maximum_exclusive: bool = False
    minimum_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    description: str = ""

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(choice) for choice in self.choices)
        low = "" if self.minimum is None else f"{'>' if self.minimum_exclusive else '>='} {self.minimum:g}"
        high = "" if self.maximum is None else f"{'<' if self.maximum_exclusive else '<='} {self.maximum:g}"
        bounds = " and ".join(part for part in (low, high) if part)
        type_name = "an integer" if self.value_type is int else "a number"
        return f"{type_name} {bounds}".strip()


def _architectures() -> tuple[str, ...]:
    from study.models import MODELS

    return tuple(MODELS)


#: Every hyperparameter a space may mention. Names missing from a space are fixed at their default.
HYPERPARAMETERS: dict[str, HyperparameterKind] = {
    "architecture": HyperparameterKind(str, "lstm", description="model family (see study.models.MODELS)"),
    "depth": HyperparameterKind(int, 2, minimum=1, maximum=MAX_DEPTH,
                                description="stacked LSTM layers or Conv1D blocks"),
    "width": HyperparameterKind(int, 32, minimum=1, maximum=MAX_WIDTH,
                                description="LSTM units or Conv1D filters per layer"),
    "kernel_size": HyperparameterKind(int, 7, minimum=1, maximum=MAX_KERNEL_SIZE,
                                      description="Conv1D kernel size (CNN only)"),
    "dropout": HyperparameterKind(float, 0.0, minimum=0.0, maximum=1.0, maximum_exclusive=True,
                                  description="dropout rate after every layer or block"),
    "recurrent_dropout": HyperparameterKind(float, 0.0, minimum=0.0, maximum=1.0, maximum_exclusive=True,
                                            description="LSTM recurrent dropout (> 0 leaves the cuDNN kernel)"),
    "weight_decay": HyperparameterKind(float, 0.0, minimum=0.0, maximum=MAX_WEIGHT_DECAY,
                                       description="L2 factor or AdamW decoupled decay"),
    "weight_decay_type": HyperparameterKind(str, "l2", choices=WEIGHT_DECAY_TYPES,
                                            description="'l2' kernel penalty or 'adamw' decoupled decay"),
    "learning_rate": HyperparameterKind(float, 1e-3, minimum=0.0, minimum_exclusive=True, maximum=MAX_LEARNING_RATE,
                                        description="Adam(W) step size"),
    "clipnorm": HyperparameterKind(float, 0.0, minimum=0.0, maximum=MAX_CLIPNORM,
                                   description="gradient-norm clipping of every weight's gradient (0: no clipping)"),
    "parameter_budget": HyperparameterKind(int, 0, minimum=0, maximum=MAX_PARAMETER_BUDGET,
                                           description="match each cell's width to this parameter count within 5% "
                                                       "(0: the width as given); width.match_parameters sets it"),
    "epochs": HyperparameterKind(int, 20, minimum=1, maximum=MAX_EPOCHS, description="training epochs per trial"),
    "batch_size": HyperparameterKind(int, 64, minimum=1, maximum=MAX_BATCH_SIZE,
                                     description="examples per gradient step"),
}

_SPEC_KEYS = ("role", "value", "values", "min", "max", "step", "log")
_TOP_KEYS = ("name", "dataset", "tuner", "training", "repeats", "analysis", "claims", "hyperparameters")
_CLAIM_KEYS = ("factor", "measure", "direction", "compare", "levels", "at", "scale", "sentence", "explanation")
#: What a claim may be about: the measures of study.statistics.trials.MEASURES (checked there at import).
CLAIM_MEASURES = ("trainable_fraction", "best_train_loss", "epochs_to_target", "gap_at_target",
                  "gap_growth_after_target", "best_epoch", "overfit_onset", "gap_at_best", "best_val_accuracy",
                  "gradient_ratio", "final_gap")
#: The five explanations of why ECG papers stack LSTMs 2-4 deep and CNNs 10-15 deep; a claim may say which one
#: it tests (the report's "Why?" section groups claims by it).
EXPLANATIONS = ("vanishing_gradients", "overfitting", "receptive_field", "parameters", "gating")
CLAIM_DIRECTIONS = ("increases", "decreases")
#: The x of a claim's slope: log2 (per doubling), linear (per unit) or rank (0, 1, 2, ... in the listed order).
CLAIM_SCALES = ("log2", "linear", "rank")
#: Factors whose default scale is log2 (their effects are multiplicative: a doubling of depth or width).
LOG2_FACTORS = ("depth", "width", "batch_size", "kernel_size", "learning_rate")
_DATASET_KEYS = ("name", "parameters")
_TUNER_KEYS = ("name", "trials_per_cell", "seed", "hyperband_factor", "hyperband_iterations", "max_consecutive_failures")
_TRAINING_KEYS = ("train_eval_size", "class_weights", "record_gradients")
_REPEATS_KEYS = ("seeds",)
_ANALYSIS_KEYS = ("trained_above_chance", "onset_tolerance", "train_fall_fraction", "target_train_loss",
                  "target_quantile", "alpha", "permutations", "calibration_studies", "minimum_units")


@dataclass(frozen=True)
class HyperparameterSpec:
    """One hyperparameter's role and sampling: a list of values, a min/max range, or one fixed value."""

    name: str
    role: str
    values: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.values is None

    @property
    def fixed_value(self) -> Any:
        if self.values is None or len(self.values) != 1:
            raise ValueError(f"{self.name} is not a single value")
        return self.values[0]

    def to_dict(self) -> dict[str, Any]:
        if self.role == "fixed":
            return {"role": self.role, "value": self.fixed_value}
        if self.values is not None:
            return {"role": self.role, "values": list(self.values)}
        spec: dict[str, Any] = {"role": self.role, "min": self.minimum, "max": self.maximum, "log": self.log}
        if self.step is not None:
            spec["step"] = self.step
        return spec


#: Factor names a dataset parameter cannot take, because a hyperparameter or a table column has them: such a
#: parameter's factor (and column) is ``dataset_<parameter>``, e.g. ``dataset_seed``.
RESERVED_FACTOR_NAMES = frozenset({"trial_id", "phase", "status", "seed", "setting", "epoch", "parent_trial_id",
                                   "epochs_allotted", "parameter_count", "receptive_field",
                                   "effective_receptive_field", "message", "offset", "mass", "layer", "kind",
                                   "norm"})


def dataset_factor_name(parameter: str) -> str:
    """The factor (and table column) name of a scientific dataset parameter: the parameter's own name, or
    ``dataset_<parameter>`` where a hyperparameter or a table column has that name."""
    return f"dataset_{parameter}" if parameter in RESERVED_FACTOR_NAMES or parameter in HYPERPARAMETERS \
        else parameter


@dataclass(frozen=True)
class DatasetConfig:
    """The study's dataset: its name, its parameters (merged over the defaults), and the parameters that are
    scientific factors (``factors``: parameter -> levels; ``parameters`` then holds their first level)."""

    name: str = "synthetic_ecg"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    factors: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def factor_names(self) -> dict[str, str]:
        """Factor (table column) name -> dataset parameter, for the scientific dataset parameters."""
        return {dataset_factor_name(parameter): parameter for parameter in self.factors}

    def level_parameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The dataset parameters of one level: ``values`` maps factor names (a cell, a trial's values) to levels."""
        return {**self.parameters, **{parameter: values[factor] for factor, parameter in self.factor_names.items()}}

    def levels(self) -> list[dict[str, Any]]:
        """Every combination of the scientific dataset parameters, as {factor name: value} (one empty dict when
        none is scientific)."""
        names = list(self.factor_names)
        return [dict(zip(names, combination)) for combination in itertools.product(*self.factors.values())]

    def parameters_dict(self) -> dict[str, Any]:
        """The parameters as a space file writes them: factors as ``{role: scientific, values: [...]}``."""
        return {**dict(self.parameters),
                **{parameter: {"role": "scientific", "values": list(levels)}
                   for parameter, levels in self.factors.items()}}


@dataclass(frozen=True)
class TunerConfig:
    """Which keras-tuner strategy tunes the nuisances, and the budget every scientific cell gets."""

    name: str = "random"
    trials_per_cell: int = 4
    seed: int = 1
    hyperband_factor: int = 3
    hyperband_iterations: int = 1
    max_consecutive_failures: int = 10


@dataclass(frozen=True)
class TrainingConfig:
    """How trials are trained and evaluated: the inference-mode train subset size, class weighting, and
    whether every epoch records per-layer gradient norms (``runs/<study>/gradients.csv``)."""

    train_eval_size: int | None = None  # None: the size of the validation split
    class_weights: bool = False
    record_gradients: bool = False


@dataclass(frozen=True)
class AnalysisConfig:
    """How a finished study is analysed (the ``analysis:`` section; every field optional).

    - ``trained_above_chance``: a trial has trained when its best train balanced accuracy exceeds
      1 / (number of classes) by more than this; in (0, 1).
    - ``onset_tolerance``: nats above its minimum the validation loss must stay for overfitting to
      have set in (the overfit onset); finite and >= 0.
    - ``train_fall_fraction``: relative fall of the train loss after the best validation epoch (from its value
      there to the last epoch) needed to call a trial overfitting; in [0, 1).
    - ``target_train_loss``: train loss (nats) a trial must reach, ``"auto"`` or a positive finite number.
    - ``target_quantile``: with ``target_train_loss: auto``, the quantile of the trials' best train
      losses taken as the target; in (0, 1).
    - ``alpha``: significance level of the tests; in (0, 0.5].
    - ``permutations``: permutations of a permutation test; an integer in [99, 100000].
    - ``calibration_studies``: simulated studies that calibrate the verdict; an integer in [0, 10000]
      (0 skips the calibration simulation).
    - ``minimum_units``: cells whose primary measures rest on fewer tuning trials (units) than this are
      named in the report's caveats; an integer >= 2.
    """

    trained_above_chance: float = 0.1
    onset_tolerance: float = 0.05
    train_fall_fraction: float = 0.05
    target_train_loss: float | str = "auto"
    target_quantile: float = 0.75
    alpha: float = 0.05
    permutations: int = 1999
    calibration_studies: int = 1000
    minimum_units: int = 3

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> AnalysisConfig:
        """Build from a manifest's ``space["analysis"]`` (missing: defaults); bad values raise BadInput."""
        if mapping is None:
            return cls()
        section = dict(mapping) if isinstance(mapping, Mapping) else mapping
        return _analysis_config(_mapping(section, "manifest.json", "analysis", _ANALYSIS_KEYS), "manifest.json")


def level_key(value: Any) -> str:
    """One spelling per level, so 0.25 from YAML and 0.25 read back from a CSV compare equal."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{float(value):.10g}"
    try:
        return f"{float(str(value)):.10g}"
    except ValueError:
        return str(value)


@dataclass(frozen=True)
class Claim:
    """One claim a study tests (an item of the ``claims:`` section).

    The claim is about the slope of ``measure`` along ``factor`` (on ``scale``,
    over ``levels``): it ``increases`` or ``decreases``. With ``compare`` (a
    factor and two of its levels, first and second) it says the first level's
    slope is steeper in that direction than the second's *and* the first's own
    slope goes that way; without it, the slope itself goes that way. ``at``
    keeps only the given levels of other factors; every other scientific factor
    is a stratum (slopes are read within each of its levels).
    """

    factor: str
    measure: str
    direction: str
    levels: tuple[Any, ...]
    scale: str
    compare_factor: str | None = None
    compare_levels: tuple[Any, Any] | None = None
    at: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    sentence: str | None = None
    label: str | None = None
    explanation: str | None = None

    @property
    def supports_sign(self) -> int:
        return 1 if self.direction == "increases" else -1

    @property
    def axis_text(self) -> str:
        """What one unit of the slope is, in words."""
        if self.scale == "log2":
            return f"per doubling of {self.factor}"
        if self.scale == "rank":
            if len(self.levels) == 2:
                return f"{self.factor} {self.levels[1]} minus {self.levels[0]}"
            return f"per step of {self.factor} ({' -> '.join(str(level) for level in self.levels)})"
        return f"per unit of {self.factor}"

    @property
    def text(self) -> str:
        """The claim in words: the given sentence, else one generated from its fields."""
        if self.sentence:
            return self.sentence
        verb = "rises" if self.direction == "increases" else "falls"
        if self.scale == "rank" and len(self.levels) == 2:
            along = f"from {self.factor} {self.levels[0]} to {self.levels[1]}"
        else:
            along = f"with {self.factor}"
        where = ""
        if self.at:
            where = " at " + ", ".join(f"{name} {'/'.join(str(value) for value in values)}" for name, values in self.at)
        if self.compare_factor is None:
            return f"{self.measure} {verb} {along}{where}"
        first, second = self.compare_levels or ("?", "?")
        return (f"{self.measure} {verb} more {along} for {self.compare_factor} {first} than for "
                f"{self.compare_factor} {second}{where}")

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"factor": self.factor, "measure": self.measure, "direction": self.direction,
                                  "levels": list(self.levels), "scale": self.scale}
        if self.compare_factor is not None:
            result["compare"] = {self.compare_factor: list(self.compare_levels or ())}
        if self.at:
            result["at"] = {name: list(values) for name, values in self.at}
        if self.sentence:
            result["sentence"] = self.sentence
        if self.explanation:
            result["explanation"] = self.explanation
        return result


@dataclass(frozen=True)
class SearchSpace:
    """A validated study definition loaded from one YAML file."""

    name: str
    source: str
    dataset: DatasetConfig
    tuner: TunerConfig
    training: TrainingConfig
    repeat_seeds: int
    hyperparameters: Mapping[str, HyperparameterSpec]
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    claims: tuple[Claim, ...] = ()
    question: str = ""

    def with_role(self, role: str) -> list[HyperparameterSpec]:
        return [spec for spec in self.hyperparameters.values() if spec.role == role]

    @property
    def scientific_names(self) -> list[str]:
        """The scientific hyperparameters, then the scientific dataset parameters (by factor name)."""
        return [spec.name for spec in self.with_role("scientific")] + list(self.dataset.factor_names)

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of scientific values, in the order the file lists them (dataset factors last)."""
        scientific = self.with_role("scientific")
        names = [spec.name for spec in scientific] + list(self.dataset.factor_names)
        combos = itertools.product(*(spec.values for spec in scientific), *self.dataset.factors.values())
        return [dict(zip(names, combo)) for combo in combos]

    def fixed_values(self) -> dict[str, Any]:
        return {spec.name: spec.fixed_value for spec in self.with_role("fixed")}

    def to_dict(self) -> dict[str, Any]:
        """The space as loaded (defaults filled in), for the manifest."""
        return {
            "name": self.name,
            "source": self.source,
            "dataset": {"name": self.dataset.name, "parameters": self.dataset.parameters_dict()},
            "tuner": dataclasses.asdict(self.tuner),
            "training": dataclasses.asdict(self.training),
            "repeats": {"seeds": self.repeat_seeds},
            "analysis": dataclasses.asdict(self.analysis),
            "claims": [claim.to_dict() for claim in self.claims],
            "question": self.question,
            "hyperparameters": {name: spec.to_dict() for name, spec in self.hyperparameters.items()},
        }


# --------------------------------------------------------------------------- loading


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key repeated within one YAML mapping (PyYAML would silently keep the last)."""

    def __init__(self, key: Any, mark: yaml.Mark):
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=mark)
        self.key = key


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loading (no object tags) that rejects a key repeated within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merge keys (<<) may be overridden; unhashable keys fail in the base class
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a search-space YAML file (safe loading: no object tags)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read: {error}", source=source) from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no object tags
    except _DuplicateKey as error:
        mark = error.problem_mark
        raise BadInput(f"duplicate key {error.key!r} at line {mark.line + 1}, column {mark.column + 1}; "
                       "allowed: each key once per mapping", source=source, key=str(error.key)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise BadInput(f"malformed YAML{where}: {problem}", source=source) from None
    space = space_from_dict(document, source=source, default_name=path.stem)
    return dataclasses.replace(space, question=question_from_header(text))


def space_from_record(record: Any, *, source: str) -> SearchSpace:
    """The space a study's manifest recorded (``SearchSpace.to_dict``), validated again: a distributed study's
    workers read the chief's space from the shared run directory instead of being given the YAML file."""
    if not isinstance(record, dict):
        raise BadInput("the manifest's 'space' is not a mapping", source=source, key="space")
    document = {key: value for key, value in record.items() if key not in ("source", "question")}
    if not document.get("claims"):
        document.pop("claims", None)
    space = space_from_dict(document, source=source, default_name=str(record.get("name", "study")))
    return dataclasses.replace(space, source=str(record.get("source", source)), question=str(record.get("question", "")))


def question_from_header(text: str) -> str:
    """The question a space asks, from its opening comment (``# Question: ...`` up to ``# Run:``)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        body = stripped.lstrip("#").strip()
        if body.lower().startswith("run:"):
            break
        if lines or body.lower().startswith("question:"):
            lines.append(body.split(":", 1)[1].strip() if not lines else body)
    question = " ".join(lines).strip()
    return question[:question.index("?") + 1] if "?" in question else question


def space_from_dict(document: Any, *, source: str, default_name: str = "study") -> SearchSpace:
    """Validate a parsed YAML document into a :class:`SearchSpace`."""
    top = _mapping(document, source, None, _TOP_KEYS)
    name = top.get("name", default_name)
    check_study_name(name, source=source, key="name")

    dataset_section = _section(top, "dataset", source, _DATASET_KEYS)
    dataset_name = dataset_section.get("name", DatasetConfig.name)
    if not isinstance(dataset_name, str):
        raise BadInput(f"expected a dataset name string, got {dataset_name!r}", source=source, key="dataset.name")
    parameters = _mapping(dataset_section.get("parameters", {}) or {}, source, "dataset.parameters", None)
    parameters, factors = _dataset_parameters(dataset_name, dict(parameters), source)

    tuner = _tuner_config(_section(top, "tuner", source, _TUNER_KEYS), source)
    if isinstance(top.get("training"), dict) and "onset_tolerance" in top["training"]:
        raise BadInput("moved to analysis.onset_tolerance; allowed here: " + ", ".join(_TRAINING_KEYS),
                       source=source, key="training.onset_tolerance")
    training = _training_config(_section(top, "training", source, _TRAINING_KEYS), source)
    repeats = _section(top, "repeats", source, _REPEATS_KEYS)
    repeat_seeds = _integer(repeats.get("seeds", 5), source, "repeats.seeds", minimum=0, maximum=MAX_REPEAT_SEEDS)
    analysis = _analysis_config(_section(top, "analysis", source, _ANALYSIS_KEYS), source)

    if "hyperparameters" not in top:
        raise BadInput("missing; list the hyperparameters with their roles", source=source, key="hyperparameters")
    if top["hyperparameters"] is None:
        raise BadInput("is null; give a mapping of the hyperparameters to their roles", source=source,
                       key="hyperparameters")
    raw = dict(_mapping(top["hyperparameters"], source, "hyperparameters", tuple(HYPERPARAMETERS)))
    _expand_match_parameters(raw, source)
    specs = {}
    for hp_name, kind in HYPERPARAMETERS.items():
        if hp_name in raw:
            specs[hp_name] = _hyperparameter(hp_name, raw[hp_name], kind, source)
        else:
            specs[hp_name] = HyperparameterSpec(hp_name, "fixed", values=(kind.default,))
    scientific = {spec.name: spec.values for spec in specs.values() if spec.role == "scientific"}
    scientific.update({dataset_factor_name(parameter): levels for parameter, levels in factors.items()})
    claims = parse_claims(top.get("claims", []), scientific, source) if "claims" in top else ()
    for index, claim in enumerate(claims):
        if claim.measure == "gradient_ratio" and not training.record_gradients:
            raise BadInput("gradient_ratio is read from gradients.csv, which only a study with training: "
                           "{record_gradients: true} writes; set it, or claim another measure", source=source,
                           key=f"claims[{index}].measure")
    space = SearchSpace(
        name=name,
        source=source,
        dataset=DatasetConfig(dataset_name, parameters, factors),
        tuner=tuner,
        training=training,
        repeat_seeds=repeat_seeds,
        hyperparameters=specs,
        analysis=analysis,
        claims=claims,
    )
    _check_combination(space)
    return space


_DATASET_FACTOR_KEYS = ("role", "values")


def _dataset_parameters(dataset: str, raw: dict[str, Any], source: str) -> tuple[dict[str, Any],
                                                                               dict[str, tuple[Any, ...]]]:
    """(the parameters merged over the dataset's defaults, the scientific ones' levels).

    A parameter is a plain value, or ``{role: scientific, values: [...]}``: every value is then a level of a
    scientific factor (a cell level, like a scientific hyperparameter). Every combination of levels is checked
    by the dataset's own parameter check, so a bad level is refused before anything runs.
    """
    from study.datasets import check_parameters

    plain, factors = {}, {}
    for parameter, value in raw.items():
        if not isinstance(value, dict):
            plain[parameter] = value
            continue
        key = f"dataset.parameters.{parameter}"
        spec = _mapping(value, source, key, _DATASET_FACTOR_KEYS)
        if spec.get("role") != "scientific" or "values" not in spec:
            raise BadInput(f"a dataset parameter is a value, or {{role: scientific, values: [...]}} to study it as a "
                           f"factor; got {value!r}", source=source, key=key)
        levels = spec["values"]
        if not isinstance(levels, list) or not levels or any(isinstance(item, (dict, list)) for item in levels):
            raise BadInput(f"expected a non-empty list of values, got {levels!r}", source=source, key=f"{key}.values")
        if len({level_key(item) for item in levels}) != len(levels):
            raise BadInput(f"lists a value twice: {levels!r}", source=source, key=f"{key}.values")
        factors[parameter] = tuple(levels)
    # One check per combination of levels (one combination when none is scientific); the first is the merged record.
    checked = [check_parameters(dataset, {**plain, **dict(zip(factors, combination))}, source=source)
               for combination in itertools.product(*factors.values())]
    return checked[0], factors


def _expand_match_parameters(raw: dict[str, Any], source: str) -> None:
    """``width: {role: fixed, match_parameters: N}`` means: solve every cell's width for N parameters.

    It is written as the ``parameter_budget`` hyperparameter (fixed at N), which a space may also make
    scientific to compare matched widths (level 0) with matched parameter counts in one study.
    """
    width = raw.get("width")
    if not isinstance(width, dict) or "match_parameters" not in width:
        return
    key = "hyperparameters.width.match_parameters"
    extra = sorted(str(name) for name in width if name not in ("role", "match_parameters"))
    if width.get("role") != "fixed" or extra:
        raise BadInput("match_parameters goes with role fixed and nothing else, e.g. "
                       "{role: fixed, match_parameters: 50000}; got " + repr(dict(width)), source=source, key=key)
    if "parameter_budget" in raw:
        raise BadInput("give either width.match_parameters or parameter_budget, not both", source=source, key=key)
    budget = width["match_parameters"]
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_PARAMETER_BUDGET:
        raise BadInput(f"expected a parameter count, an integer in [1, {MAX_PARAMETER_BUDGET}], got {budget!r}",
                       source=source, key=key)
    del raw["width"]
    raw["parameter_budget"] = {"role": "fixed", "value": budget}


def with_overrides(space: SearchSpace, *, name: str | None = None, dataset: str | None = None,
                   tuner: str | None = None, trials: int | None = None, epochs: int | None = None,
                   seed: int | None = None, repeat_seeds: int | None = None) -> SearchSpace:
    """Apply command-line overrides, validating them like the file's own values."""
    source = "command line"
    changes: dict[str, Any] = {}
    if name is not None:
        check_study_name(name, source=source, key="--name")
        changes["name"] = name
    if dataset is not None and dataset != space.dataset.name:
        from study.datasets import check_parameters

        if space.dataset.factors:
            raise BadInput(f"the space studies parameters of {space.dataset.name} as factors ("
                           + ", ".join(space.dataset.factors) + "), so --dataset cannot replace its dataset; "
                           "write a space for the other dataset", source=source, key="--dataset")

        changes["dataset"] = DatasetConfig(dataset, check_parameters(dataset, {}, source=source))
    tuner_changes: dict[str, Any] = {}
    if tuner is not None:
        check_choice(tuner, TUNERS, source=source, key="--tuner")
        tuner_changes["name"] = tuner
    if trials is not None:
        tuner_name = tuner_changes.get("name", space.tuner.name)
        if tuner_name not in TRIAL_BUDGET_TUNERS:
            budget = "the full grid" if tuner_name == "grid" else "its schedule (hyperband_factor, epochs)"
            raise BadInput(f"--trials has no effect with the {tuner_name} tuner: it runs {budget} in every cell; "
                           f"allowed with: {', '.join(TRIAL_BUDGET_TUNERS)}", source=source, key="--trials")
        tuner_changes["trials_per_cell"] = _integer(trials, source, "--trials", minimum=1,
                                                    maximum=MAX_TRIALS_PER_CELL)
    if seed is not None:
        tuner_changes["seed"] = _integer(seed, source, "--seed", minimum=0, maximum=MAX_SEED)
    if tuner_changes:
        changes["tuner"] = dataclasses.replace(space.tuner, **tuner_changes)
    if repeat_seeds is not None:
        changes["repeat_seeds"] = _integer(repeat_seeds, source, "--seeds", minimum=0, maximum=MAX_REPEAT_SEEDS)
    if epochs is not None:
        _integer(epochs, source, "--epochs", minimum=1, maximum=MAX_EPOCHS)
        role = space.hyperparameters["epochs"].role
        if role != "fixed":
            raise BadInput(f"epochs is a {role} hyperparameter of {space.source}; --epochs only replaces a fixed "
                           "epochs value (changing it would change the study's design)", source=source,
                           key="--epochs")
        specs = dict(space.hyperparameters)
        specs["epochs"] = HyperparameterSpec("epochs", "fixed", values=(int(epochs),))
        changes["hyperparameters"] = specs
    updated = dataclasses.replace(space, **changes)
    _check_combination(updated, source=source)
    return updated


def check_study_name(name: Any, *, source: str, key: str) -> None:
    if not isinstance(name, str) or not STUDY_NAME_PATTERN.fullmatch(name):
        raise BadInput(f"study name {name!r} may only hold letters, digits, '-' and '_'", source=source, key=key)


# --------------------------------------------------------------------------- helpers


def _mapping(value: Any, source: str, key: str | None, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        what = "the file" if key is None else "this key"
        raise BadInput(f"{what} must be a mapping of keys to values, got {type(value).__name__}", source=source, key=key)
    if allowed is not None:
        for item in value:
            if item not in allowed:
                full_key = f"{key}.{item}" if key else str(item)
                raise BadInput(f"unknown key, allowed: {', '.join(allowed)}", source=source, key=full_key)
    return value


def _section(top: dict[str, Any], key: str, source: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A top-level section: omitted means defaults ({}), but an explicit null is rejected."""
    if key not in top:
        return {}
    if top[key] is None:
        raise BadInput(f"is null; give a mapping with keys {', '.join(allowed)}, or leave the section out for "
                       "the defaults", source=source, key=key)
    return _mapping(top[key], source, key, allowed)


def _integer(value: Any, source: str, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"expected an integer, got {value!r}", source=source, key=key)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        allowed = " and ".join(bound for bound in (None if minimum is None else f">= {minimum}",
                                                   None if maximum is None else f"<= {maximum}") if bound)
        raise BadInput(f"must be an integer {allowed}, got {value}", source=source, key=key)
    return value


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"expected a finite number, got {value!r}", source=source, key=key)
    return float(value)


def _in_interval(value: Any, source: str, key: str, low: float, high: float | None, *,
                 low_open: bool, high_open: bool) -> float:
    """A finite number in the interval from low to high (open or closed at either end); high None: unbounded."""
    number = _number(value, source, key)
    below = number <= low if low_open else number < low
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        if high is None:
            interval = f"{'>' if low_open else '>='} {low:g}"
        else:
            interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise BadInput(f"must be a number {interval}, got {number:g}", source=source, key=key)
    return number


def _analysis_config(section: Mapping[str, Any], source: str) -> AnalysisConfig:
    """Validate an ``analysis`` section (keys already checked) into an :class:`AnalysisConfig`."""
    defaults = AnalysisConfig()

    def get(name: str) -> Any:
        return section.get(name, getattr(defaults, name))

    target = get("target_train_loss")
    if target != "auto":
        if isinstance(target, str) or isinstance(target, bool) or not isinstance(target, (int, float)) \
                or not math.isfinite(target) or target <= 0:
            raise BadInput(f"allowed: 'auto' or a positive finite number of nats, got {target!r}", source=source,
                           key="analysis.target_train_loss")
        target = float(target)
    return AnalysisConfig(
        trained_above_chance=_in_interval(get("trained_above_chance"), source, "analysis.trained_above_chance",
                                          0.0, 1.0, low_open=True, high_open=True),
        onset_tolerance=_in_interval(get("onset_tolerance"), source, "analysis.onset_tolerance", 0.0, None,
                                     low_open=False, high_open=False),
        train_fall_fraction=_in_interval(get("train_fall_fraction"), source, "analysis.train_fall_fraction",
                                         0.0, 1.0, low_open=False, high_open=True),
        target_train_loss=target,
        target_quantile=_in_interval(get("target_quantile"), source, "analysis.target_quantile", 0.0, 1.0,
                                     low_open=True, high_open=True),
        alpha=_in_interval(get("alpha"), source, "analysis.alpha", 0.0, 0.5, low_open=True, high_open=False),
        permutations=_integer(get("permutations"), source, "analysis.permutations", minimum=99, maximum=100_000),
        calibration_studies=_integer(get("calibration_studies"), source, "analysis.calibration_studies",
                                     minimum=0, maximum=10_000),
        minimum_units=_integer(get("minimum_units"), source, "analysis.minimum_units", minimum=2),
    )


def _tuner_config(section: dict[str, Any], source: str) -> TunerConfig:
    defaults = TunerConfig()
    name = section.get("name", defaults.name)
    check_choice(name, TUNERS, source=source, key="tuner.name")
    return TunerConfig(
        name=name,
        trials_per_cell=_integer(section.get("trials_per_cell", defaults.trials_per_cell), source,
                                 "tuner.trials_per_cell", minimum=1, maximum=MAX_TRIALS_PER_CELL),
        seed=_integer(section.get("seed", defaults.seed), source, "tuner.seed", minimum=0, maximum=MAX_SEED),
        hyperband_factor=_integer(section.get("hyperband_factor", defaults.hyperband_factor), source,
                                  "tuner.hyperband_factor", minimum=2),
        hyperband_iterations=_integer(section.get("hyperband_iterations", defaults.hyperband_iterations), source,
                                      "tuner.hyperband_iterations", minimum=1),
        max_consecutive_failures=_integer(section.get("max_consecutive_failures", defaults.max_consecutive_failures),
                                          source, "tuner.max_consecutive_failures", minimum=1),
    )


def _training_config(section: dict[str, Any], source: str) -> TrainingConfig:
    size = section.get("train_eval_size")
    if size is not None:
        size = _integer(size, source, "training.train_eval_size", minimum=1)
    flags = {}
    for flag in ("class_weights", "record_gradients"):
        flags[flag] = section.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise BadInput(f"expected true or false, got {flags[flag]!r}", source=source, key=f"training.{flag}")
    return TrainingConfig(train_eval_size=size, **flags)


def _check_value(name: str, value: Any, kind: HyperparameterKind, source: str, key: str) -> Any:
    """Check one value against its kind; returns it converted (ints stay ints, numbers become floats)."""
    choices = kind.choices if kind.choices is not None else (_architectures() if name == "architecture" else None)
    if choices is not None:
        check_choice(value, choices, source=source, key=key)
        return value
    if kind.value_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInput(f"expected {kind.allowed()}, got {value!r}", source=source, key=key)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadInput(f"expected {kind.allowed()}, got {value!r}", source=source, key=key)
        value = float(value)
    too_low = kind.minimum is not None and (value <= kind.minimum if kind.minimum_exclusive else value < kind.minimum)
    too_high = kind.maximum is not None and (value >= kind.maximum if kind.maximum_exclusive else value > kind.maximum)
    if too_low or too_high:
        interval = kind.allowed()
        raise BadInput(f"{value!r} is out of range, allowed: {interval}", source=source, key=key)
    return value


def _hyperparameter(name: str, raw: Any, kind: HyperparameterKind, source: str) -> HyperparameterSpec:
    key = f"hyperparameters.{name}"
    section = _mapping(raw, source, key, _SPEC_KEYS)
    if "role" not in section:
        raise BadInput(f"missing, allowed: {', '.join(ROLES)}", source=source, key=f"{key}.role")
    role = section["role"]
    check_choice(role, ROLES, source=source, key=f"{key}.role")
    forms = [form for form in ("value", "values", "min") if form in section]
    if "max" in section and "min" not in section:
        raise BadInput("a range needs both min and max", source=source, key=f"{key}.min")
    if len(forms) != 1:
        raise BadInput("give exactly one of value, values or min/max", source=source, key=key)
    form = forms[0]
    if role == "fixed" and form != "value":
        raise BadInput("a fixed hyperparameter takes 'value'", source=source, key=key)
    if role != "fixed" and form == "value":
        raise BadInput(f"a {role} hyperparameter takes 'values' or min/max; use role fixed for one value",
                       source=source, key=key)
    if form in ("value", "values"):
        for extra in ("step", "log"):
            if extra in section:
                raise BadInput(f"'{extra}' only applies to min/max ranges", source=source, key=f"{key}.{extra}")
    if form == "value":
        return HyperparameterSpec(name, role, values=(_check_value(name, section["value"], kind, source,
                                                                   f"{key}.value"),))
    if form == "values":
        values = section["values"]
        if not isinstance(values, list) or not values:
            raise BadInput("expected a non-empty list", source=source, key=f"{key}.values")
        checked = tuple(_check_value(name, value, kind, source, f"{key}.values") for value in values)
        if len(set(checked)) != len(checked):
            raise BadInput("values repeat", source=source, key=f"{key}.values")
        return HyperparameterSpec(name, role, values=checked)
    if role == "scientific":
        raise BadInput("a scientific hyperparameter takes a list of 'values' (its cells)", source=source, key=key)
    if kind.choices is not None or name == "architecture":
        raise BadInput("takes a list of 'values', not min/max", source=source, key=key)
    if "max" not in section:
        raise BadInput("a range needs both min and max", source=source, key=f"{key}.max")
    minimum = _check_value(name, section["min"], kind, source, f"{key}.min")
    maximum = _check_value(name, section["max"], kind, source, f"{key}.max")
    if minimum >= maximum:
        raise BadInput(f"empty range: min {minimum!r} must be below max {maximum!r}", source=source, key=key)
    log = section.get("log", False)
    if not isinstance(log, bool):
        raise BadInput(f"expected true or false, got {log!r}", source=source, key=f"{key}.log")
    if log and minimum <= 0:
        raise BadInput("log sampling needs min > 0", source=source, key=f"{key}.min")
    step = section.get("step")
    if step is not None:
        step = _check_value("step", step, HyperparameterKind(kind.value_type, None, minimum=0, minimum_exclusive=True),
                            source, f"{key}.step")
        if log and step <= 1:
            raise BadInput("with log sampling, step is a factor (as in keras-tuner) and must be > 1",
                           source=source, key=f"{key}.step")
        span = maximum / minimum if log else maximum - minimum
        if step > span and not math.isclose(step, span):  # isclose: 0.3 - 0.1 is 0.19999999999999998
            what, low = ("factor", 1) if log else ("step", 0)
            measure = "max / min" if log else "max - min"
            raise BadInput(f"{what} {step:g} is larger than the range {measure} = {span:g}; "
                           f"allowed: a {what} in ({low}, {span:g}]", source=source, key=f"{key}.step")
    return HyperparameterSpec(name, role, minimum=minimum, maximum=maximum, step=step, log=log)


def _check_combination(space: SearchSpace, source: str | None = None) -> None:
    """Checks that need more than one key: what the chosen tuner can search."""
    source = source or space.source
    if space.tuner.name == "hyperband" and space.hyperparameters["epochs"].role != "fixed":
        raise BadInput("hyperband sets epochs itself; make epochs a fixed value (its max_epochs)",
                       source=source, key="hyperparameters.epochs.role")
    if space.tuner.name == "grid":
        for spec in space.with_role("nuisance"):
            if spec.is_range and spec.step is None:
                raise BadInput("grid search needs 'step' or a list of 'values' for every nuisance range",
                               source=source, key=f"hyperparameters.{spec.name}")


# --------------------------------------------------------------------------- claims


def scientific_levels(space: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The scientific factors of a space dict (a manifest's ``space``) and their levels: the hyperparameters',
    then the dataset parameters' (by factor name)."""
    specs = space.get("hyperparameters") if isinstance(space, Mapping) else None
    if not isinstance(specs, Mapping):
        return {}
    levels = {name: tuple(spec["values"]) for name, spec in specs.items()
              if isinstance(spec, Mapping) and spec.get("role") == "scientific" and isinstance(spec.get("values"), list)}
    return {**levels, **dataset_factor_levels(space)}


def dataset_factor_levels(space: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The scientific dataset parameters of a space dict, by factor name (see :func:`dataset_factor_name`)."""
    dataset = space.get("dataset") if isinstance(space, Mapping) else None
    parameters = dataset.get("parameters") if isinstance(dataset, Mapping) else None
    if not isinstance(parameters, Mapping):
        return {}
    return {dataset_factor_name(str(name)): tuple(spec["values"]) for name, spec in parameters.items()
            if isinstance(spec, Mapping) and spec.get("role") == "scientific" and isinstance(spec.get("values"), list)}


def claims_from_mapping(space: Mapping[str, Any]) -> tuple[Claim, ...]:
    """The claims of a manifest's space (none: ``()``); bad ones raise BadInput naming manifest.json."""
    raw = space.get("claims") if isinstance(space, Mapping) else None
    if raw is None or (isinstance(raw, list) and not raw):  # a space without claims records []
        return ()
    return parse_claims(raw, scientific_levels(space), "manifest.json")


def _is_numeric(values: tuple[Any, ...]) -> bool:
    return all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values)


def _find_levels(requested: Any, available: tuple[Any, ...], source: str, key: str, *, minimum: int) -> tuple[Any, ...]:
    """The requested levels (a list) matched against the factor's levels, in the requested order."""
    allowed = ", ".join(repr(value) for value in available)
    if not isinstance(requested, list) or len(requested) < minimum:
        raise BadInput(f"expected a list of at least {minimum} of the factor's levels, got {requested!r}; "
                       f"allowed: {allowed}", source=source, key=key)
    keys = {level_key(value): value for value in available}
    found = []
    for value in requested:
        if isinstance(value, (dict, list)) or level_key(value) not in keys:
            raise BadInput(f"{value!r} is not a level of this factor in the space; allowed: {allowed}",
                           source=source, key=key)
        found.append(keys[level_key(value)])
    if len({level_key(value) for value in found}) != len(found):
        raise BadInput(f"lists a level twice: {requested!r}", source=source, key=key)
    return tuple(found)


def parse_claims(raw: Any, scientific: Mapping[str, tuple[Any, ...]], source: str) -> tuple[Claim, ...]:
    """Validate a ``claims:`` list against the space's scientific factors (name -> levels)."""
    if not isinstance(raw, list) or not raw:
        raise BadInput(f"expected a non-empty list of claims, got {raw!r}", source=source, key="claims")
    factors = ", ".join(repr(name) for name in scientific) or "none (the space has no scientific hyperparameter)"
    claims = []
    for index, item in enumerate(raw):
        prefix = f"claims[{index}]"
        section = _mapping(item, source, prefix, _CLAIM_KEYS)
        for required in ("factor", "measure", "direction"):
            if required not in section:
                raise BadInput("missing; a claim names its factor, measure and direction", source=source,
                               key=f"{prefix}.{required}")
        factor = section["factor"]
        if not isinstance(factor, str) or factor not in scientific:
            raise BadInput(f"got {factor!r}, allowed: a scientific hyperparameter of this space: {factors}",
                           source=source, key=f"{prefix}.factor")
        check_choice(section["measure"], CLAIM_MEASURES, source=source, key=f"{prefix}.measure")
        check_choice(section["direction"], CLAIM_DIRECTIONS, source=source, key=f"{prefix}.direction")
        available = scientific[factor]
        numeric = _is_numeric(available)
        if "levels" in section:
            levels = _find_levels(section["levels"], available, source, f"{prefix}.levels", minimum=2)
        elif numeric:
            levels = tuple(sorted(available))
        elif len(available) == 2:
            levels = tuple(available)
        else:
            raise BadInput(f"{factor} has {len(available)} non-numeric levels; name the two (or more, in order) "
                           f"the claim runs along, from {', '.join(repr(value) for value in available)}",
                           source=source, key=f"{prefix}.levels")
        if len(levels) < 2:
            raise BadInput(f"{factor} has a single level in this space; a claim needs two or more", source=source,
                           key=f"{prefix}.factor")
        default_scale = ("log2" if factor in LOG2_FACTORS and all(value > 0 for value in levels) else "linear") \
            if numeric else "rank"
        scale = section.get("scale", default_scale)
        check_choice(scale, CLAIM_SCALES, source=source, key=f"{prefix}.scale")
        if scale != "rank" and not numeric:
            raise BadInput(f"{factor} has non-numeric levels, so only the scale 'rank' (levels in the listed "
                           "order) applies", source=source, key=f"{prefix}.scale")
        if scale == "log2" and any(value <= 0 for value in levels):
            raise BadInput(f"log2 needs positive levels, {factor} has {', '.join(repr(v) for v in levels)}; "
                           "allowed: linear or rank", source=source, key=f"{prefix}.scale")
        compare_factor, compare_levels = None, None
        if "compare" in section:
            compare = _mapping(section["compare"], source, f"{prefix}.compare", None)
            if len(compare) != 1:
                raise BadInput("expected one factor and its two levels, for example {architecture: [lstm, cnn]}",
                               source=source, key=f"{prefix}.compare")
            ((compare_factor, requested),) = compare.items()
            if not isinstance(compare_factor, str) or compare_factor not in scientific or compare_factor == factor:
                raise BadInput(f"got {compare_factor!r}, allowed: another scientific hyperparameter of this space "
                               f"than the claim's factor: {factors}", source=source, key=f"{prefix}.compare")
            compare_levels = _find_levels(requested, scientific[compare_factor], source,
                                          f"{prefix}.compare.{compare_factor}", minimum=2)
            if len(compare_levels) != 2:
                raise BadInput(f"compares exactly two levels, got {len(compare_levels)}", source=source,
                               key=f"{prefix}.compare.{compare_factor}")
        at: list[tuple[str, tuple[Any, ...]]] = []
        if "at" in section:
            restriction = _mapping(section["at"], source, f"{prefix}.at", None)
            for name, requested in restriction.items():
                if not isinstance(name, str) or name not in scientific or name in (factor, compare_factor):
                    raise BadInput(f"got {name!r}, allowed: a scientific hyperparameter other than the claim's "
                                   f"factor and compared factor: {factors}", source=source, key=f"{prefix}.at")
                values = requested if isinstance(requested, list) else [requested]
                at.append((name, _find_levels(values, scientific[name], source, f"{prefix}.at.{name}", minimum=1)))
        sentence = section.get("sentence")
        if sentence is not None and (not isinstance(sentence, str) or not sentence.strip()):
            raise BadInput(f"expected a sentence (text), got {sentence!r}", source=source, key=f"{prefix}.sentence")
        explanation = section.get("explanation")
        if explanation is not None:
            check_choice(explanation, EXPLANATIONS, source=source, key=f"{prefix}.explanation")
        claims.append(Claim(factor=factor, measure=section["measure"], direction=section["direction"],
                            levels=levels, scale=scale, compare_factor=compare_factor, compare_levels=compare_levels,
                            at=tuple(at), sentence=" ".join(sentence.split()) if sentence else None,
                            explanation=explanation))
    return tuple(claims)
