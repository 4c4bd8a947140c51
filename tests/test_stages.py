"""workflows.stages.cached: a stage's output stored with its key, recomputed for another key."""
import dataclasses
import os

import numpy as np
import pytest

from workflows import stages


@dataclasses.dataclass(frozen=True)
class Options:
  size: int = 16
  classes: tuple = (1, 2)


class Counter:
  """compute() functions that count their calls."""

  def __init__(self):
    self.calls = 0

  def result(self, value):
    def compute():
      self.calls += 1
      return value
    return compute


@pytest.mark.parametrize("name, value, read_back", [
    ("out.json", {"miou": 0.5, "sizes": (16, 24), 3: "x"}, {"miou": 0.5, "sizes": [16, 24],
                                                             "3": "x"}),
    ("out.npz", {"images": np.arange(6, dtype=np.uint8).reshape(2, 3)}, None),
])
def test_a_stage_runs_once_per_key(tmp_path, name, value, read_back):
  path = str(tmp_path / "stage" / name)
  counter = Counter()
  key = {"options": Options(), "step": 10}
  first = stages.cached("stage", path, key, counter.result(value))
  again = stages.cached("stage", path, {"step": 10, "options": Options()},
                        counter.result(None))
  assert counter.calls == 1
  if read_back is None:  # arrays: the same values either way
    np.testing.assert_array_equal(first["images"], value["images"])
    np.testing.assert_array_equal(again["images"], value["images"])
    assert list(again) == ["images"]
  else:  # JSON: as read back, the same on the first run and later ones
    assert first == again == read_back
  # Another key (a field of a dataclass in it) computes again and replaces the output.
  stages.cached("stage", path, {"options": Options(size=24), "step": 10}, counter.result(value))
  assert counter.calls == 2
  stages.cached("stage", path, {"options": Options(size=24), "step": 10}, counter.result(value))
  assert counter.calls == 2
  assert os.listdir(tmp_path / "stage") == [name]


class Unwritable:
  """An array whose conversion fails: np.savez stops after the arrays before it."""

  def __array__(self, dtype=None, copy=None):
    raise KeyboardInterrupt


@pytest.mark.parametrize("name, value", [
    ("out.json", {"a": 1}),
    ("out.npz", {"a": np.zeros(3)}),
])
def test_a_stage_killed_while_writing_leaves_no_output_under_its_name(tmp_path, name, value):
  path = str(tmp_path / name)
  unwritable = {"a": 1, "b": object()} if name.endswith(".json") else {**value, "b": Unwritable()}
  with pytest.raises((KeyboardInterrupt, TypeError)):
    stages.cached("stage", path, 1, lambda: unwritable)
  assert not os.path.exists(path)
  counter = Counter()
  stages.cached("stage", path, 1, counter.result(value))
  stages.cached("stage", path, 1, counter.result(value))
  assert counter.calls == 1


def test_the_stored_key_is_readable_json(tmp_path):
  path = tmp_path / "out.json"
  stages.cached("stage", str(path), {"options": Options(), "step": 3}, lambda: 1)
  assert stages.checkpoints.read_json(str(path)) == {
      "key": {"options": {"classes": [1, 2], "size": 16}, "step": 3}, "result": 1}


def test_other_suffixes_are_refused(tmp_path):
  with pytest.raises(ValueError, match=r"\.json or \.npz"):
    stages.cached("stage", str(tmp_path / "out.pickle"), 1, lambda: 1)
