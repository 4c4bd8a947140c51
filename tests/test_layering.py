"""The import layering: each module imports only its own layer and the layers below.

  datasets  <-  deeplab libraries  <-  nus libraries  <-  cli_flags  <-  programs and
  workflows  <-  benchmarks

Programs (`python -m deeplab.train`, the quickstart, ...) never import one another:
what two programs share lives in a library (flags in deeplab.cli_flags).
"""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("datasets", "deeplab", "nus", "workflows", "benchmarks")
LAYERS = ("datasets", "deeplab libraries", "nus libraries", "cli flags", "programs",
          "benchmarks")
# The command-line programs of deeplab/; they share flags through deeplab.cli_flags.
DEEPLAB_PROGRAMS = {"deeplab.train", "deeplab.eval", "deeplab.vis", "deeplab.export_tflite",
                    "deeplab.count_flops"}


def layer_of(module):
  """Index into LAYERS of a project module."""
  package = module.split(".")[0]
  if package == "datasets":
    return 0
  if module in DEEPLAB_PROGRAMS:
    return 4
  if module == "deeplab.cli_flags":
    return 3
  return {"deeplab": 1, "nus": 2, "workflows": 4, "benchmarks": 5}[package]


def is_program(module, source):
  """A module run as a program above the libraries (datasets' converters are libraries
  with a command line: they import nothing above their layer anyway)."""
  return (module.split(".")[0] != "datasets"
          and 'if __name__ == "__main__":' in source)


def project_imports(source):
  """Project modules a source imports (at any depth), as dotted names."""
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
    else:
      continue
    found.update(name for name in names if name.split(".")[0] in PACKAGES[:4])
  return found


def violations(sources):
  """Layering violations in {module: source}, as readable lines."""
  modules = set(sources)
  programs = {m for m, source in sources.items() if is_program(m, source)}
  found = []
  for module, source in sorted(sources.items()):
    for imported in sorted(project_imports(source)):
      if imported not in modules:
        continue  # `from deeplab import config` also yields the package "deeplab"
      if layer_of(imported) > layer_of(module):
        found.append(f"{module} ({LAYERS[layer_of(module)]}) imports {imported} "
                     f"({LAYERS[layer_of(imported)]}), a layer above it")
      if module in programs and imported in programs:
        found.append(f"program {module} imports program {imported}")
  return found


def project_sources():
  sources = {}
  for package in PACKAGES:
    for directory, _, files in os.walk(os.path.join(REPO, package)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(directory, name)
          module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
          with open(path) as f:
            sources[module.removesuffix(".__init__")] = f.read()
  return sources


def test_no_module_imports_a_layer_above_it_or_another_program():
  sources = project_sources()
  assert "deeplab.train_lib" in sources and "workflows.quickstart" in sources
  assert violations(sources) == []


@pytest.mark.parametrize("module, source, message", [
    # A library reaching into nus/ (the NUS export once lived in deeplab.export_lib).
    ("deeplab.export_lib", "from nus import pipeline as nus_pipeline\n",
     "deeplab.export_lib (deeplab libraries) imports nus.pipeline (nus libraries)"),
    # A library reaching for the flags of the programs.
    ("nus.pipeline", "from deeplab import cli_flags\n", "nus.pipeline (nus libraries) imports "
     "deeplab.cli_flags (cli flags)"),
    # A program borrowing another program's flags or helpers.
    ("deeplab.vis", 'from deeplab import eval\nif __name__ == "__main__":\n  pass\n',
     "program deeplab.vis imports program deeplab.eval"),
    # A workflow importing a program module.
    ("workflows.quickstart", 'import deeplab.vis\nif __name__ == "__main__":\n  pass\n',
     "program workflows.quickstart imports program deeplab.vis"),
])
def test_upward_and_program_imports_are_caught(module, source, message):
  sources = project_sources()
  sources[module] = source
  assert any(message in line for line in violations(sources)), violations(sources)
