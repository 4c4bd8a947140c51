"""Package set-up for the segmentation toolkit.

TensorFlow: the default requirement is `tensorflow-cpu`. A machine with a GPU sets
DEEPLAB_TF_PACKAGE="tensorflow[and-cuda]" before `pip install`; an environment that
already has the full `tensorflow` distribution keeps it. Either way exactly one
TensorFlow distribution is installed (a second one over tensorflow-cpu would shadow it).

Extensions in nus/: `_interpolate`, `_litert_runner` (the interpolation as a LiteRT custom
op; LiteRT's C API is loaded at run time) and `_boundary` are always built;
`_ceres_targets` links the system Ceres Solver (Debian: libceres-dev) and is skipped
with a message when Ceres headers are not found, so the package still installs.
"""
import os
import sys
from importlib import metadata

from setuptools import Extension
from setuptools import find_packages
from setuptools import setup

TF_VERSION = "2.21.*"


def _tensorflow_requirement():
  chosen = os.environ.get("DEEPLAB_TF_PACKAGE")
  if chosen:
    return f"{chosen}=={TF_VERSION}"
  for name in ("tensorflow", "tensorflow-cpu"):
    try:
      metadata.version(name)
      return f"{name}=={TF_VERSION}"
    except metadata.PackageNotFoundError:
      pass
  return f"tensorflow-cpu=={TF_VERSION}"


def _find_ceres_include():
  candidates = [os.environ.get("CERES_INCLUDE_DIR", ""), "/usr/include",
                "/usr/local/include", os.path.join(sys.prefix, "include")]
  for path in candidates:
    if path and os.path.exists(os.path.join(path, "ceres", "ceres.h")):
      return path
  return None


# The interpolation kernel (Python extension and LiteRT custom op alike): no fused
# multiply-adds, so that every build and vector width rounds the blends identically.
_KERNEL_ARGS = ["-ffp-contract=off", "-pthread"]


def _extensions():
  cxx_args = ["-O3", "-std=c++17"]
  exts = [
      Extension("nus._interpolate",
                ["nus/_interpolate.pyx", "nus/src/interpolate.cc", "nus/src/upsample.cc"],
                language="c++", include_dirs=["nus/src"],
                extra_compile_args=cxx_args + _KERNEL_ARGS, extra_link_args=["-pthread"]),
      # The LiteRT custom op and its runner: LiteRT's C API is loaded at run time
      # (libLiteRt.so of the ai-edge-litert wheel), so building needs no LiteRT.
      Extension("nus._litert_runner",
                ["nus/_litert_runner.pyx", "nus/src/litert_op.cc", "nus/src/interpolate.cc",
                 "nus/src/area_resize.cc", "nus/src/sample.cc"],
                language="c++", include_dirs=["nus/src"],
                extra_compile_args=cxx_args + _KERNEL_ARGS,
                extra_link_args=["-pthread"], libraries=["dl"]),
      Extension("nus._boundary", ["nus/_boundary.pyx", "nus/src/boundary.cc"], language="c++",
                include_dirs=["nus/src"], extra_compile_args=cxx_args),
  ]
  ceres_include = _find_ceres_include()
  if ceres_include is None:
    print("setup.py: Ceres headers not found; skipping nus._ceres_targets "
          "(install libceres-dev to build it; the pyceres and exact backends still work).")
  else:
    exts.append(Extension(
        "nus._ceres_targets", ["nus/_ceres_targets.pyx", "nus/src/ceres_targets.cc"],
        language="c++",
        include_dirs=[ceres_include, os.path.join(ceres_include, "eigen3"), "nus/src"],
        libraries=["ceres", "glog"], extra_compile_args=cxx_args))
  from Cython.Build import cythonize
  return cythonize(exts, language_level=3, quiet=True)


setup(
    name="efficient-segmentation",
    version="0.1.0",
    description="DeepLabv3 (MobileNetV2 / ShuffleNetV2) and learned non-uniform "
                "downsampling for Cityscapes, on TensorFlow 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["deeplab", "deeplab.*", "nus", "nus.*",
                                    "datasets", "datasets.*", "workflows", "workflows.*"]),
    package_data={"deeplab": ["core/*.json"]},
    ext_modules=_extensions(),
    install_requires=[
        _tensorflow_requirement(),
        # cityscapesscripts' evaluator calls np.in1d, which numpy 2.4 removed.
        "numpy<2.4",
        "scipy",
        "pillow",
        "cython>=3.0",
        "cityscapesscripts",
        "tqdm",
        "absl-py",
        "matplotlib",
        # Runs exported .tflite files (verification in export, tests and benchmarks).
        "ai-edge-litert",
        # Ceres inside a wheel: the target solver's fallback where libceres-dev is absent.
        "pyceres",
    ],
    extras_require={"test": ["pytest", "ruff"]},
)
