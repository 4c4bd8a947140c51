"""Mixed precision training: float16 or bfloat16 compute, float32 variables.

Keras dtype policies decide it per layer at creation, so a model built under
`dtype_policy("mixed_bfloat16")` computes in bfloat16 while its variables, and the
checkpoints holding them, stay float32: eval, vis and export build their models as
usual (float32) and restore those checkpoints unchanged. Batch norm normalises with
float32 statistics (deeplab.core.layers.FusedBatchNorm); the training loss takes the
logits in float32 (deeplab.train_lib).
"""
import contextlib

import keras

from deeplab import config


@contextlib.contextmanager
def dtype_policy(name: str):
  """Keras' global dtype policy is `name` (one of config.PRECISIONS) inside the block.

  Layers keep the policy they were created under: a model built inside computes in it,
  models built after the block are float32 again.

  Raises:
    ValueError: for a name not in config.PRECISIONS.
  """
  if name not in config.PRECISIONS:
    raise ValueError(f"mixed precision {name!r}: expected one of {config.PRECISIONS}")
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def with_loss_scaling(optimizer: keras.optimizers.Optimizer,
                        name: str) -> keras.optimizers.Optimizer:
  """`optimizer` with dynamic loss scaling under mixed_float16, else itself.

  float16 gradients underflow without loss scaling; bfloat16 has float32's exponent
  range. A training step multiplies its loss by `optimizer.scale_loss` (a no-op without
  scaling) and `apply_gradients` divides the scale out again, skipping steps whose
  gradients overflowed.
  """
  if name == "mixed_float16":
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
