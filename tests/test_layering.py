"""The import layering: one direction between packages, and programs on top of libraries.

  datasets  <-  deeplab  <-  nus  <-  workflows  <-  benchmarks

A package imports only itself and the packages to its left. A program is any module
with `if __name__ == "__main__":` (python -m deeplab.train, nus.eval, the quickstart,
the benchmarks, datasets/synthetic/__main__.py, ...); every other module is a library.
Programs never import programs and libraries never import programs: what two programs
share lives in a library (flags in deeplab.cli_flags and nus.cli_flags).
"""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("datasets", "deeplab", "nus", "workflows", "benchmarks")
ORDER = "  <-  ".join(PACKAGES)


def package_rank(module):
  """Position of a module's package in PACKAGES."""
  return PACKAGES.index(module.split(".")[0])


def is_program(source):
  return 'if __name__ == "__main__":' in source


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
    found.update(name for name in names if name.split(".")[0] in PACKAGES)
  return found


def violations(sources):
  """Layering violations in {module: source}, as readable lines."""
  programs = {m for m, source in sources.items() if is_program(source)}
  found = []
  for module, source in sorted(sources.items()):
    for imported in sorted(project_imports(source)):
      if imported not in sources:
        continue  # `from deeplab import config` also yields the package "deeplab"
      if package_rank(imported) > package_rank(module):
        found.append(f"{module} imports {imported}, a package to its right in {ORDER}")
      if imported in programs:
        kind = "program" if module in programs else "library"
        found.append(f"{kind} {module} imports program {imported}")
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


def test_no_module_imports_a_package_to_its_right_or_a_program():
  sources = project_sources()
  programs = {m for m, source in sources.items() if is_program(source)}
  assert {"deeplab.train", "nus.train", "nus.eval", "nus.export_tflite",
          "datasets.synthetic.__main__", "workflows.quickstart"} <= programs
  assert "deeplab.train_lib" in sources and "deeplab.train_lib" not in programs
  assert violations(sources) == []


@pytest.mark.parametrize("module, source, message", [
    # A DeepLab library reaching into nus/ (the NUS export once lived in deeplab.export_lib).
    ("deeplab.export_lib", "from nus import export as nus_export\n",
     f"deeplab.export_lib imports nus.export, a package to its right in {ORDER}"),
    # A DeepLab program running the NUS pipeline (deeplab.train --nus_train once did).
    ("deeplab.train", 'from nus import training\nif __name__ == "__main__":\n  pass\n',
     "deeplab.train imports nus.training, a package to its right"),
    # A program borrowing another program's flags or helpers.
    ("deeplab.vis", 'from deeplab import eval\nif __name__ == "__main__":\n  pass\n',
     "program deeplab.vis imports program deeplab.eval"),
    ("nus.eval", 'from deeplab import eval as deeplab_eval\nif __name__ == "__main__":\n'
     "  pass\n", "program nus.eval imports program deeplab.eval"),
    # A workflow program importing a dataset program (datasets.synthetic's flags and main
    # live in its __main__.py so that the quickstart can import the library).
    ("workflows.quickstart",
     'from datasets.synthetic import __main__\nif __name__ == "__main__":\n  pass\n',
     "program workflows.quickstart imports program datasets.synthetic.__main__"),
    # A library importing a program.
    ("workflows.nus_experiment", "from nus import train\n",
     "library workflows.nus_experiment imports program nus.train"),
    ("datasets.data_generator", "from datasets.build_cityscapes_data import __main__\n",
     "library datasets.data_generator imports program datasets.build_cityscapes_data.__main__"),
])
def test_upward_and_program_imports_are_caught(module, source, message):
  sources = project_sources()
  sources[module] = source
  assert any(message in line for line in violations(sources)), violations(sources)
