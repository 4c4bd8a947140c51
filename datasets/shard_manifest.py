"""Which shards make up a converted split: `<split>.manifest.json`, written last.

Before it writes the first shard of a split, the converter replaces the split's manifest
by one marked unfinished; after the last shard it writes the full manifest, naming every
shard with its record count, size in bytes and SHA-256. Each is written to a temporary
file and renamed, after the files it describes are on disk. So a conversion that failed
or was killed leaves a split the loader refuses, never shards of two conversions that
read as one set, and the manifest of an earlier conversion never vouches for new shards.

Opening a split checks its shards against the manifest: names, sizes and SHA-256 (each
shard read once per process, again only when its size or mtime changed). Manifests
without checksums are checked by size. TFRecords without a manifest (made by DeepLab's
own converter) are read by their names.
"""
import hashlib
import json
import os

SUFFIX = ".manifest.json"
# path -> (size, mtime_ns, SHA-256) of the shards this process has hashed.
_DIGESTS: dict[str, tuple[int, int, str]] = {}


def manifest_path(directory: str, split: str) -> str:
  return os.path.join(directory, split + SUFFIX)


def _fsync(path):
  """Flushes a file or directory (the renames in it) to disk."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _write(directory, split, manifest):
  path = manifest_path(directory, split)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(manifest, f, indent=2)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  _fsync(directory)


def sha256(path: str) -> str:
  """Hex SHA-256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _cached_sha256(path):
  """sha256(path), read again only when the file's size or mtime changed since the last."""
  stat = os.stat(path)
  cached = _DIGESTS.get(path)
  if cached is None or cached[:2] != (stat.st_size, stat.st_mtime_ns):
    _DIGESTS[path] = (stat.st_size, stat.st_mtime_ns, sha256(path))
  return _DIGESTS[path][2]


def mark_unfinished(directory: str, split: str) -> None:
  """Replaces the split's manifest by an unfinished one; call before writing any shard."""
  _write(directory, split, {"split": split, "complete": False})


def write_complete(directory: str, split: str, shards: list[tuple[str, int]]) -> None:
  """Writes the manifest of a finished conversion.

  Args:
    directory: where the shards are.
    split: their split.
    shards: (file name, record count) of every shard, in order; the files are complete
      and flushed to disk.
  """
  entries = [{"name": name, "records": records,
              "bytes": os.path.getsize(os.path.join(directory, name)),
              "sha256": sha256(os.path.join(directory, name))} for name, records in shards]
  _fsync(directory)  # the shards' renames are on disk before a manifest vouches for them
  _write(directory, split, {"split": split, "complete": True, "shards": entries})


def read(directory: str, split: str) -> dict | None:
  """The split's manifest, or None when the directory has none.

  Raises:
    ValueError: a manifest that cannot be read or is not one of `split` (names it).
  """
  path = manifest_path(directory, split)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      manifest = json.load(f)
    if manifest["split"] != split or not isinstance(manifest["complete"], bool):
      raise ValueError(f"it is not one of split '{split}'")
    for entry in manifest["shards"] if manifest["complete"] else []:
      if not {"name", "records", "bytes"} <= set(entry):  # sha256: since it was recorded
        raise ValueError(f"shard entry {entry} lacks name, records or bytes")
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"cannot read the shard manifest {path}: {e}; rerun "
                     f"datasets.build_cityscapes_data") from e
  return manifest


def checked_shards(directory: str, split: str, manifest: dict, found: list[str]) -> list[str]:
  """The manifest's shard paths, once checked against the shard files on disk.

  Checks names, sizes and the SHA-256 the manifest records (each shard read once per
  process, see the module docstring); `data_generator.verify_records` also counts the
  records.

  Args:
    directory: the TFRecord directory.
    split: the split of `manifest`.
    manifest: what `read` returned.
    found: paths of the split's shard files in `directory`.

  Raises:
    ValueError: naming the directory and what is wrong: an unfinished conversion, a
      listed shard missing, of another size or with other bytes, a shard the manifest
      does not list.
  """
  path = manifest_path(directory, split)
  if not manifest["complete"]:
    raise ValueError(f"{directory}: the conversion of split '{split}' did not finish (it failed "
                     f"or was killed; {path} marks it unfinished), so its shards may mix two "
                     f"conversions; rerun datasets.build_cityscapes_data")
  listed = [entry["name"] for entry in manifest["shards"]]
  names = {os.path.basename(p) for p in found}
  missing = [name for name in listed if name not in names]
  if missing:
    raise ValueError(f"{directory}: split '{split}' is incomplete: {missing}, listed in {path}, "
                     f"are missing")
  unlisted = sorted(names - set(listed))
  if unlisted:
    raise ValueError(f"{directory}: {unlisted} are not among the shards of split '{split}' "
                     f"that {path} lists: another conversion's; remove them or rerun "
                     f"datasets.build_cityscapes_data")
  for entry in manifest["shards"]:
    size = os.path.getsize(os.path.join(directory, entry["name"]))
    if size != entry["bytes"]:
      raise ValueError(f"{directory}: shard {entry['name']} has {size} bytes but {path} lists "
                       f"{entry['bytes']}: not the file its conversion wrote; rerun "
                       f"datasets.build_cityscapes_data")
    digest = "sha256" in entry and _cached_sha256(os.path.join(directory, entry["name"]))
    if digest and digest != entry["sha256"]:
      raise ValueError(f"{directory}: shard {entry['name']} has SHA-256 {digest} but {path} "
                       f"lists {entry['sha256']}: its bytes changed since its conversion; "
                       f"rerun datasets.build_cityscapes_data")
  return [os.path.join(directory, name) for name in listed]
