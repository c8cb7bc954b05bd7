"""Archive-wide clustering of grain latents: the streamed K-means model, labelling, splitting, the UMAP map.

Heavy stacks (scikit-learn, umap) are imported inside the functions that need them.
"""
from __future__ import annotations

from sedarchive.clustering.model import ClusteringError, KMeansModel, current_model, load_model, save_model
from sedarchive.clustering.split import split_cluster
from sedarchive.clustering.stage import ClusterSettings, assign, fit_model, run_stage
from sedarchive.clustering.umap_map import build_map, open_map

__all__ = [
    "ClusterSettings",
    "ClusteringError",
    "KMeansModel",
    "assign",
    "build_map",
    "current_model",
    "fit_model",
    "load_model",
    "open_map",
    "run_stage",
    "save_model",
    "split_cluster",
]
