"""The Cityscapes descriptor and id tables against cityscapesscripts, the reference."""
import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cs_labels

from datasets import cityscapes


def _reference_train_id(label):
  # cityscapesscripts: 255 for void, -1 for the license plate; both are ignored.
  return label.trainId if 0 <= label.trainId < 255 else 255


def test_label_id_table_matches_cityscapesscripts_for_every_id():
  ids = np.array([label.id for label in cs_labels.labels])
  expected = np.array([_reference_train_id(label) for label in cs_labels.labels])
  assert len(ids) == 35 and -1 in ids
  np.testing.assert_array_equal(cityscapes.label_ids_to_train_ids(ids), expected)


def test_label_table_matches_cityscapesscripts_names_and_colours():
  ours = {(label.name, label.id, label.train_id, tuple(label.color))
          for label in cityscapes.LABELS}
  reference = {(label.name, label.id, label.trainId, tuple(label.color))
               for label in cs_labels.labels}
  assert ours == reference


def test_descriptor():
  d = cityscapes.CITYSCAPES
  train = sorted((label for label in cs_labels.labels if 0 <= label.trainId < 255),
                 key=lambda label: label.trainId)
  assert d.name == "cityscapes"
  assert d.num_classes == 19 and d.ignore_label == 255
  assert d.class_names == tuple(label.name for label in train)
  assert d.colormap.dtype == np.uint8 and d.colormap.shape == (19, 3)
  np.testing.assert_array_equal(d.colormap, [label.color for label in train])
  assert d.splits_to_sizes == {"train": 2975, "val": 500, "test": 1525}
  # The stored labelIds of each class and of the void labels, as the converter maps them.
  for train_id, values in enumerate(d.label_values):
    assert [cs_labels.id2label[v].trainId for v in values] == [train_id]
  assert all(cs_labels.id2label[v].trainId in (255, -1) for v in d.ignore_values)
  assert [d.class_names[i] for i in d.thing_classes] == [
      label.name for label in train if label.hasInstances]
  assert [d.class_names[i] for i in d.thin_classes] == ["pole", "traffic light", "traffic sign"]


def test_train_ids_to_label_ids_inverts_the_table():
  train_ids = np.arange(19, dtype=np.uint8)
  label_ids = cityscapes.CITYSCAPES.to_label_values(train_ids)
  for t, i in zip(train_ids, label_ids):
    assert cs_labels.id2label[int(i)].trainId == t
  np.testing.assert_array_equal(cityscapes.label_ids_to_train_ids(label_ids), train_ids)
  # Ignore -> "unlabeled" (0), which the Cityscapes evaluation skips.
  assert cityscapes.CITYSCAPES.to_label_values(np.array([255]))[0] == 0
  assert cs_labels.id2label[0].ignoreInEval


def test_mapping_keeps_shape_and_works_on_images():
  rng = np.random.default_rng(0)
  label_ids = rng.integers(0, 34, (7, 9), dtype=np.uint8)
  train_ids = cityscapes.label_ids_to_train_ids(label_ids)
  assert train_ids.shape == (7, 9) and train_ids.dtype == np.uint8
  expected = np.vectorize(lambda i: _reference_train_id(cs_labels.id2label[int(i)]))(label_ids)
  np.testing.assert_array_equal(train_ids, expected)


def test_colorize():
  train_ids = np.array([[0, 13], [255, 18]], dtype=np.uint8)
  rgb = cityscapes.CITYSCAPES.colorize(train_ids)
  assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
  assert tuple(rgb[0, 0]) == cs_labels.trainId2label[0].color
  assert tuple(rgb[0, 1]) == cs_labels.trainId2label[13].color
  assert tuple(rgb[1, 0]) == (0, 0, 0)
  assert tuple(rgb[1, 1]) == cs_labels.trainId2label[18].color


@pytest.mark.parametrize("values", [[34], [-2], [255], [7, 100]])
def test_label_ids_out_of_range_raise(values):
  with pytest.raises(ValueError, match="labelIds outside"):
    cityscapes.label_ids_to_train_ids(np.array(values))


@pytest.mark.parametrize("fn", [cityscapes.CITYSCAPES.to_label_values,
                                cityscapes.CITYSCAPES.colorize])
def test_train_ids_out_of_range_raise(fn):
  with pytest.raises(ValueError, match=r"train ids outside the 19 classes of 'cityscapes' and "
                                       r"255: \[19\]"):
    fn(np.array([3, 19, 255]))


def test_float_input_rejected():
  with pytest.raises(TypeError, match="integer"):
    cityscapes.label_ids_to_train_ids(np.array([7.0]))
