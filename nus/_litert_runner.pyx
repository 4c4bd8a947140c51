# cython: boundscheck=False, wraparound=False
"""A .tflite with the NUS custom ops, compiled and run through LiteRT's C API.

A thin wrapper of nus/src/litert_op.cc; nus.litert_op is the Python API.
"""
from libc.stdint cimport int64_t, uint8_t
from libcpp cimport bool
from libcpp.memory cimport unique_ptr
from libcpp.string cimport string
from libcpp.vector cimport vector

import numpy as np


cdef extern from "litert_op.h" namespace "nus":
  cdef cppclass RunnerTensor:
    string name
    int element_type
    vector[int64_t] shape
    void* data
    size_t bytes
  cdef cppclass Runner:
    @staticmethod
    unique_ptr[Runner] Create(const string& library, string model, int num_threads,
                              string* error)
    vector[RunnerTensor]& inputs()
    vector[RunnerTensor]& outputs()
    bool Run(string* error) nogil

# LiteRT element type codes -> numpy.
_DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8}


cdef _view(RunnerTensor& tensor):
  """A numpy array over the tensor's memory (the runner owns it)."""
  cdef uint8_t[::1] raw = <uint8_t[:tensor.bytes]> <uint8_t*> tensor.data
  return np.asarray(raw).view(_DTYPES[tensor.element_type]).reshape(tuple(tensor.shape))


cdef class CompiledModel:
  """The model's first signature; inputs and outputs in host memory of this object."""
  cdef unique_ptr[Runner] runner
  cdef dict _inputs, _outputs

  def __init__(self, bytes model_content, str library, int num_threads):
    cdef string error
    self.runner = Runner.Create(library.encode(), model_content, num_threads, &error)
    if not self.runner:
      raise RuntimeError(error.decode())
    self._inputs = {t.name.decode(): _view(t) for t in self.runner.get().inputs()}
    self._outputs = {t.name.decode(): _view(t) for t in self.runner.get().outputs()}

  @property
  def input_details(self):
    """{name: (shape, dtype)} of the inputs."""
    return {name: (a.shape, a.dtype) for name, a in self._inputs.items()}

  @property
  def output_details(self):
    """{name: (shape, dtype)} of the outputs."""
    return {name: (a.shape, a.dtype) for name, a in self._outputs.items()}

  def run(self, dict inputs, bint copy=True):
    """Copies `inputs` {name: array} in, runs, returns the outputs {name: array}: copies,
    or (copy False) views of this object's buffers, valid until the next run."""
    if set(inputs) != set(self._inputs):
      raise ValueError(f"the model's inputs are {sorted(self._inputs)}, got {sorted(inputs)}")
    for name, value in inputs.items():
      self._inputs[name][...] = value
    cdef string error
    cdef bool ok
    with nogil:
      ok = self.runner.get().Run(&error)
    if not ok:
      raise RuntimeError(error.decode())
    if not copy:
      return dict(self._outputs)
    return {name: array.copy() for name, array in self._outputs.items()}
