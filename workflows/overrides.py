"""Named presets of nested frozen dataclasses, changed field by field with `a.b.c=value`.

Each value is parsed as its field's declared type: int, float, bool (true / false), str,
a tuple written comma-separated ("64,72,80"; an empty value is the empty tuple), and
Optional[X] also takes "none". A bare `tuple` holds elements of the type of the ones it
has (int when it has none). All assignments are applied together, each dataclass
rebuilt once with all of its changes, so that its own validation (__post_init__) judges
the final combination whatever the order of the assignments.
"""
import dataclasses
import difflib
import types
import typing
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Sequence
from typing import TypeVar

from absl import flags

Config = TypeVar("Config")
_NONE = "none"


def define_flags(presets: Mapping[str, Callable[[], Any]], default: str, example: str) -> None:
  """--preset (one of `presets`, `default` unless given) and the repeatable --set FIELD=VALUE
  (`example` shows one)."""
  flags.DEFINE_string("preset", default,
                      f"The configuration to start from: {', '.join(presets)}.")
  flags.DEFINE_multi_string("set", [], f"FIELD=VALUE: changes a field of the preset, e.g. "
                            f"{example} (repeatable).")


def from_preset(presets: Mapping[str, Callable[[], Config]], name: str,
                assignments: Sequence[str]) -> Config:
  """The preset `name` with `assignments` ("a.b=value") applied.

  Raises:
    ValueError: one line naming an unknown preset, field or a value of the wrong type,
      or the dataclass's own complaint about the result.
  """
  if name not in presets:
    raise ValueError(f"unknown preset {name!r}; presets: {', '.join(presets)}")
  return apply(presets[name](), assignments)


def apply(config: Config, assignments: Sequence[str]) -> Config:
  """`config` with each "a.b.c=value" of `assignments` set (a repeated field: the last)."""
  paths = field_paths(type(config))
  changes = {}
  for assignment in assignments:
    path, equals, text = assignment.partition("=")
    if not equals:
      raise ValueError(f"--set {assignment!r}: expected FIELD=VALUE, e.g. scenes.num_train=16")
    if path not in paths:
      closest = difflib.get_close_matches(path, paths, n=1, cutoff=0.0)[0]
      raise ValueError(f"--set {assignment}: no field {path!r}; the closest is {closest!r}")
    changes[path] = text
  return _rebuilt(config, changes, "")


def field_paths(cls: type) -> list[str]:
  """The dotted path of every field of dataclass `cls`, nested ones included."""
  paths = []
  for name, annotation in _field_types(cls).items():
    paths.append(name)
    inner = _dataclass_of(annotation)
    if inner is not None:
      paths += [f"{name}.{path}" for path in field_paths(inner)]
  return paths


def _rebuilt(node, changes, prefix):
  """`node` with the changes {path: text} under `prefix` ("" or "a.b.")."""
  updates = {}
  for name, annotation in _field_types(type(node)).items():
    path = prefix + name
    inner = {p: text for p, text in changes.items() if p.startswith(path + ".")}
    current = getattr(node, name)
    if path in changes:
      if inner:
        raise ValueError(f"--set {path} and --set {next(iter(inner))} both given: set one")
      updates[name] = parse_value(path, changes[path], annotation, current)
    elif inner:
      if current is None:
        raise ValueError(f"--set {next(iter(inner))}: {path} is none, it has no fields")
      updates[name] = _rebuilt(current, inner, path + ".")
  return dataclasses.replace(node, **updates) if updates else node


def parse_value(path: str, text: str, annotation: Any, current: Any = None) -> Any:
  """`text` as a value of type `annotation` for the field at `path`.

  Args:
    current: the field's value now; the element type of a bare `tuple`.

  Raises:
    ValueError: "--set PATH=TEXT: PATH takes ..." when `text` is not of that type.
  """
  def wrong(expected):
    return ValueError(f"--set {path}={text}: {path} takes {expected}")

  if typing.get_origin(annotation) in (typing.Union, types.UnionType):
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(options) != 1:
      raise wrong(f"a {annotation}, which --set cannot parse")
    if text.strip().lower() == _NONE:
      return None
    try:
      return parse_value(path, text, options[0], current)
    except ValueError as e:
      raise ValueError(f"{e}, or {_NONE}") from None
  if _dataclass_of(annotation) is not None:
    first = next(iter(_field_types(annotation)))
    raise wrong(f"values field by field ({path}.{first}=...)")
  if annotation is tuple or typing.get_origin(annotation) is tuple:
    words = [] if not text.strip() else text.split(",")
    element_types = _element_types(annotation, current, len(words))
    if element_types is None:
      raise wrong(f"a {annotation} of {len(typing.get_args(annotation))} values")
    if not all(t in _SCALARS for t in element_types):
      raise wrong(f"a {annotation}, which --set cannot parse")
    try:
      return tuple(_SCALARS[t][0](w) for w, t in zip(words, element_types))
    except ValueError:
      names = " / ".join(sorted({_SCALARS[t][1] for t in element_types}))
      raise wrong(f"comma-separated values, each {names}") from None
  if annotation not in _SCALARS:
    raise wrong(f"a {annotation}, which --set cannot parse")
  parse, name = _SCALARS[annotation]
  try:
    return parse(text)
  except ValueError:
    raise wrong(name) from None


def _element_types(annotation, current, count):
  """The type of each of `count` elements of a tuple field; None for a wrong count."""
  args = typing.get_args(annotation)
  if len(args) == 2 and args[1] is Ellipsis:
    return [args[0]] * count
  if args:
    return list(args) if len(args) == count else None
  kinds = {type(v) for v in current or ()}  # a bare tuple: elements like the ones it has
  return [kinds.pop() if len(kinds) == 1 else (int if not kinds else object)] * count


def _parse_bool(text):
  if text.strip().lower() not in ("true", "false"):
    raise ValueError(text)
  return text.strip().lower() == "true"


# The types a value is parsed as: {type: (parse, what the error calls it)}.
_SCALARS = {bool: (_parse_bool, "true or false"), int: (int, "an integer"),
            float: (float, "a number"), str: (str, "a string")}


def _field_types(cls):
  """{name: declared type} of the fields of dataclass `cls` that its constructor takes."""
  hints = typing.get_type_hints(cls)
  return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _dataclass_of(annotation):
  """The dataclass `annotation` or Optional[annotation] names, else None."""
  if typing.get_origin(annotation) in (typing.Union, types.UnionType):
    found = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
    return found[0] if len(found) == 1 else None
  is_dataclass = isinstance(annotation, type) and dataclasses.is_dataclass(annotation)
  return annotation if is_dataclass else None
