"""workflows.overrides: presets of nested frozen dataclasses changed with `a.b.c=value`."""
import dataclasses
from typing import Optional

import pytest

from workflows import overrides


@dataclasses.dataclass(frozen=True)
class Training:
  steps: int = 10
  learning_rate: float = 0.01
  deterministic: bool = False
  decay: Optional[float] = None
  optimizer: str = "adam"

  def __post_init__(self):
    if self.steps < 1:
      raise ValueError(f"steps must be positive, got {self.steps}")


@dataclasses.dataclass(frozen=True)
class Job:
  name: str = "job"
  sizes: tuple[int, ...] = (64, 72)
  crop: tuple[int, int] = (256, 256)
  classes: Optional[tuple] = (11, 12)
  tags: tuple[str, ...] = ()
  training: Training = Training()
  pretraining: Optional[Training] = Training(steps=5)
  batch_size: int = 4

  def __post_init__(self):
    if self.batch_size > 2 * self.training.steps:
      raise ValueError(f"batch_size={self.batch_size} exceeds twice the steps")


PRESETS = {"small": Job, "large": lambda: Job(training=Training(steps=100), batch_size=32)}


def test_nested_fields_take_values_of_their_declared_types():
  job = overrides.apply(Job(), ["training.steps=20", "training.learning_rate=5e-3",
                                "training.deterministic=true", "training.decay=0.9",
                                "training.optimizer=sgd", "name=big run", "batch_size=8"])
  assert job.training == Training(20, 0.005, True, 0.9, "sgd")
  assert job.name == "big run" and job.batch_size == 8
  assert job.pretraining == Training(steps=5)  # untouched
  assert isinstance(job.training.learning_rate, float) and type(job.batch_size) is int


def test_tuples_are_comma_separated():
  job = overrides.apply(Job(), ["sizes=16,24,32", "crop=64, 128", "tags=a,b", "classes=5"])
  assert job.sizes == (16, 24, 32) and job.crop == (64, 128) and job.tags == ("a", "b")
  assert job.classes == (5,)  # a bare tuple holds elements like the ones it had: ints
  assert overrides.apply(Job(), ["tags="]).tags == ()
  with pytest.raises(ValueError, match=r"--set crop=64: crop takes a tuple\[int, int\] of 2"):
    overrides.apply(Job(), ["crop=64"])


def test_optional_fields_take_none():
  job = overrides.apply(Job(), ["pretraining=none", "classes=None", "training.decay=none"])
  assert job.pretraining is None and job.classes is None and job.training.decay is None
  with pytest.raises(ValueError, match="pretraining is none, it has no fields"):
    overrides.apply(job, ["pretraining.steps=3"])
  with pytest.raises(ValueError, match="both given"):
    overrides.apply(Job(), ["pretraining=none", "pretraining.steps=3"])


@pytest.mark.parametrize("assignment, message", [
    ("training.steps=1.5", "--set training.steps=1.5: training.steps takes an integer"),
    ("training.learning_rate=fast",
     "--set training.learning_rate=fast: training.learning_rate takes a number"),
    ("training.deterministic=yes", "training.deterministic takes true or false"),
    ("training.decay=high", "training.decay takes a number, or none"),
    ("sizes=16,x", "--set sizes=16,x: sizes takes comma-separated values, each an integer"),
    ("training=3", "training takes values field by field (training.steps=...)"),
    ("pretraining=3", "pretraining takes values field by field (pretraining.steps=...), or none"),
    ("batch_size", "expected FIELD=VALUE"),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_field_and_value(assignment, message):
  with pytest.raises(ValueError) as error:
    overrides.apply(Job(), [assignment])
  assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("path, closest", [
    ("training.step", "training.steps"),
    ("traning.learning_rate", "training.learning_rate"),
    ("learning_rate", "training.learning_rate"),
    ("batchsize", "batch_size"),
])
def test_an_unknown_field_names_the_closest_one(path, closest):
  with pytest.raises(ValueError, match=f"no field '{path}'; the closest is '{closest}'$"):
    overrides.apply(Job(), [f"{path}=1"])


def test_validation_runs_again_on_the_final_combination():
  with pytest.raises(ValueError, match="steps must be positive"):
    overrides.apply(Job(), ["training.steps=0"])
  # Each dataclass is rebuilt once with all its changes: the order does not matter.
  assignments = ["batch_size=30", "training.steps=15"]
  assert overrides.apply(Job(), assignments) == overrides.apply(Job(), assignments[::-1])
  with pytest.raises(ValueError, match="batch_size=30 exceeds"):
    overrides.apply(Job(), ["batch_size=30"])


def test_a_repeated_field_takes_the_last_value_and_no_change_is_the_same_object():
  assert overrides.apply(Job(), ["batch_size=2", "batch_size=6"]).batch_size == 6
  job = Job()
  assert overrides.apply(job, []) is job


def test_presets_are_picked_by_name():
  assert overrides.from_preset(PRESETS, "large", []).batch_size == 32
  assert overrides.from_preset(PRESETS, "small", ["batch_size=2"]) == Job(batch_size=2)
  with pytest.raises(ValueError, match="unknown preset 'huge'; presets: small, large"):
    overrides.from_preset(PRESETS, "huge", [])


def test_field_paths_list_nested_fields_of_optional_dataclasses():
  paths = overrides.field_paths(Job)
  assert paths[:3] == ["name", "sizes", "crop"]
  assert "training.decay" in paths and "pretraining.optimizer" in paths
  assert len(paths) == 8 + 2 * 5
