"""A folder of images and masks as a descriptor's `split_sources` describe it (CamVid, a
user's own data): finding each split's (image, mask) pairs and reading one pair.

Glob sources pair the files whose `*`s match the same text; list sources name the pairs
(`image mask` per line). Every failure names the file: an image without mask, a mask
without image, sizes that differ, mask values outside the descriptor.
"""
import glob
import io
import os
import re

import numpy as np
from PIL import Image

from datasets import descriptors

IMAGE_FORMATS = ("PNG", "JPEG")


def _pattern_regex(pattern, where):
  if glob.has_magic(pattern.replace("*", "")) or "**" in pattern:
    raise ValueError(f"{where}: pattern {pattern!r} may use '*' only (one path part each)")
  parts = re.split(r"(\*)", pattern)
  return re.compile("".join("([^/]*)" if part == "*" else re.escape(part) for part in parts)
                    + r"\Z")


def _matches(root, pattern, where):
  """{key: path} of the files matching `pattern` under root; the key is what its `*`s
  matched."""
  regex = _pattern_regex(pattern, where)
  found = {}
  for path in glob.glob(os.path.join(root, pattern)):
    match = regex.match(os.path.relpath(path, root).replace(os.sep, "/"))
    if match and os.path.isfile(path):
      found[match.groups()] = path
  return found


def _fill(pattern, key):
  for part in key:
    pattern = pattern.replace("*", part, 1)
  return pattern


def _glob_pairs(root, source, where):
  images, masks = source["images"], source["masks"]
  if images.count("*") != masks.count("*"):
    raise ValueError(f"{where}: images {images!r} and masks {masks!r} need as many '*'s, which "
                     "pair the files")
  found_images = _matches(root, images, where)
  found_masks = _matches(root, masks, where)
  for key, image in sorted(found_images.items()):
    if key not in found_masks:
      raise FileNotFoundError(f"image {image} has no mask: expected "
                              f"{os.path.join(root, _fill(masks, key))}")
  for key, mask in sorted(found_masks.items()):
    if key not in found_images:
      raise FileNotFoundError(f"mask {mask} has no image: expected "
                              f"{os.path.join(root, _fill(images, key))}")
  return [(found_images[key], found_masks[key]) for key in sorted(found_images)]


def _list_pairs(root, source):
  path = os.path.join(root, source["list"])
  pairs = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      parts = line.split()
      if len(parts) != 2:
        raise ValueError(f"{path}:{number}: expected 'image mask', got {line.strip()!r}")
      image, mask = (os.path.join(root, p) for p in parts)
      for kind, file, partner in (("image", image, mask), ("mask", mask, image)):
        if not os.path.isfile(file):
          raise FileNotFoundError(f"{kind} {file} (listed in {path}:{number} with {partner}) "
                                  "does not exist")
      pairs.append((image, mask))
  return pairs


def stem(path: str) -> str:
  """An example's name in the records: its image's file name without extension."""
  return os.path.splitext(os.path.basename(path))[0]


def find_examples(descriptor: descriptors.DatasetDescriptor, root: str,
                  split: str) -> list[tuple[str, str]]:
  """The (image, mask) paths of a split, in order.

  Raises:
    FileNotFoundError: a missing root, an unknown split, no files, or a file without its
      partner (names it and the partner expected).
    ValueError: a bad pattern or list line, two images of one name.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"dataset root {root} does not exist or is not a directory")
  if split not in descriptor.split_sources:
    raise ValueError(f"dataset '{descriptor.name}' has no split '{split}'; its splits: "
                     f"{', '.join(descriptor.split_sources) or 'none'}")
  pairs = []
  for source in descriptor.split_sources[split]:
    where = f"dataset '{descriptor.name}', split '{split}'"
    pairs += (_list_pairs(root, source) if "list" in source
              else _glob_pairs(root, source, where))
  if not pairs:
    raise FileNotFoundError(f"no images for split '{split}' of dataset '{descriptor.name}' in "
                            f"{root} (sources: {list(descriptor.split_sources[split])})")
  names = {}
  for image, _ in pairs:
    other = names.setdefault(stem(image), image)
    if other != image:
      raise ValueError(f"{image} and {other} of split '{split}' have the same name; an "
                       "example's name is its file name without extension")
  return pairs


def _read(path, formats):
  """(file bytes, decoded PIL image); the whole file decoded, so truncated files fail here."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    image = Image.open(io.BytesIO(data))
    if image.format not in formats:
      raise ValueError(f"format {image.format}, expected {' or '.join(formats)}")
    image.load()
  except Exception as e:  # PIL raises several types for broken files.
    raise ValueError(f"cannot read {path}: {e}") from e
  return data, image


def load_example(task: tuple) -> tuple:
  """Reads and checks one (image, mask) pair.

  Args:
    task: (image path, mask path, DatasetDescriptor).

  Returns:
    (name, image bytes, image format, train ids PNG bytes, height, width).

  Raises:
    ValueError naming the file: unreadable, sizes that differ, a mask of the wrong kind
    or with values outside the descriptor.
  """
  image_path, mask_path, descriptor = task
  image_bytes, image = _read(image_path, IMAGE_FORMATS)
  if image.mode not in ("RGB", "RGBA", "L"):
    raise ValueError(f"{image_path}: unsupported image mode {image.mode}, expected RGB")
  _, mask = _read(mask_path, ("PNG",))
  if mask.size != image.size:
    raise ValueError(f"{mask_path} is {mask.size[1]}x{mask.size[0]} but {image_path} is "
                     f"{image.size[1]}x{image.size[0]} (height x width)")
  if descriptor.mask_format == "colors":
    mask = mask.convert("RGB")
  elif mask.mode not in ("L", "P"):
    raise ValueError(f"{mask_path}: a mask of values must be a single-channel 8-bit PNG, got "
                     f"mode {mask.mode} (for RGB masks, the spec says \"masks\": \"colors\")")
  try:
    train_ids = descriptor.to_train_ids(descriptor.mask_values(np.asarray(mask)))
  except ValueError as e:
    raise ValueError(f"{mask_path}: {e}") from None
  buffer = io.BytesIO()
  Image.fromarray(train_ids).save(buffer, format="PNG")
  return (stem(image_path), image_bytes, image.format.lower(), buffer.getvalue(),
          image.size[1], image.size[0])
