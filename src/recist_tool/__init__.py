"""recist-tool: RECIST 1.1 and iRECIST tumour measurement on CT for clinical trials."""

from recist_tool.errors import RecistToolError
from recist_tool.volume import GeometryWarning, Volume, VolumeMeta

__version__ = "0.1.0"

__all__ = ["GeometryWarning", "RecistToolError", "Volume", "VolumeMeta", "__version__"]
