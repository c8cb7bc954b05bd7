"""sedarchive: segmentation, feature learning, clustering and counting of sediment grains on Dask."""
from __future__ import annotations

from catalog.store import software_version

__version__ = software_version()

__all__ = ["__version__"]
