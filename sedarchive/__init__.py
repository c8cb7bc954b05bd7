"""sedarchive: segmentation, feature learning, clustering and counting of sediment grains on Dask.

For notebooks::

    import sedarchive
    ds = sedarchive.open_proportions("demo-archive")      # counts, class fractions, proxies
    profile = sedarchive.depth_profile(ds, "AI-3352")      # one core, sorted by depth
    grains = sedarchive.open_grains("demo-archive", core="AI-3352", depth="100-150")  # one lazy Dataset
"""
from __future__ import annotations

from catalog.version import software_version

__version__ = software_version()

__all__ = ["__version__", "depth_profile", "grain_view", "open_grains", "open_proportions"]


def __getattr__(name: str):
    # imported on first use, so that `import sedarchive` (and the CLI's --help) stays light
    if name in ("open_proportions", "depth_profile", "open_grains", "grain_view"):
        from sedarchive.counting import results

        return getattr(results, name)
    raise AttributeError(f"module 'sedarchive' has no attribute {name!r}")
