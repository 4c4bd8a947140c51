"""Charts drawn off-screen and returned as PNG bytes that depend only on what is drawn."""
import io
from typing import Any


def new_chart(width: float, height: float, dpi: int) -> tuple[Any, Any]:
  """(figure, axes) of a new off-screen matplotlib chart of width x height inches."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
  return pyplot.subplots(figsize=(width, height), dpi=dpi)


def finished_png(figure: Any, axes: Any) -> bytes:
  """Adds the grid and legend, closes the figure and returns its PNG bytes."""
  from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
  axes.grid(True, which="both", alpha=0.3)
  axes.legend()
  figure.tight_layout()
  buffer = io.BytesIO()
  # No timestamp in the metadata: the same chart gives the same file.
  figure.savefig(buffer, format="png", metadata={"Software": None})
  pyplot.close(figure)
  return buffer.getvalue()
