"""Random weights for tests: a freshly built DeepLab has unit moving variances under
which activations shrink layer by layer to ~1e-12 logits whose argmax is float noise
(and int8 ranges are meaningless); these weights give O(1) logits that depend on the image."""
import numpy as np


def randomise(model, seed):
  """Gives every variable random values (batch norm statistics included), with He-scaled
  kernels and near-identity batch norms so that activations neither vanish nor explode
  and every output pixel depends on the image."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    shape, path = tuple(variable.shape), variable.path
    if path.endswith(("gamma", "moving_variance")):
      value = rng.uniform(0.9, 1.1, shape)
    elif path.endswith(("beta", "moving_mean", "bias")):
      value = rng.normal(0.0, 0.1, shape)
    else:  # a kernel: depthwise ones ([kh, kw, C, 1]) see kh * kw inputs per output
      depthwise = len(shape) == 4 and shape[-1] == 1
      fan_in = np.prod(shape[:2]) if depthwise else np.prod(shape[:-1])
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    variable.assign(value.astype(np.float32))
