"""Moving one grain out of its cluster: the expert's correction of a single K-means assignment.

The grain's ``cluster`` value in its sample store becomes the chosen cluster (or -1, out of every
cluster, so it counts as unassigned), the move is noted in ``labels.yaml`` (``moved_grains``, with
who and when) and the proportions are counted anew by the caller. A later refit or split of the
target cluster re-assigns the grain from its latent like any other.
"""
from __future__ import annotations

from catalog import Archive, SampleKey, read_array, write_region
from catalog.errors import ArchiveError
from catalog.store import array_chunks, array_names, array_shape
from sedarchive.counting import labels as lab


def move_grain(archive: Archive, sample: str, particle: int, into: int, *, known_clusters: set[int],
               by: str = "expert") -> int:
    """Put grain ``particle`` of ``sample`` into cluster ``into`` (-1: none); returns its former cluster."""
    try:
        key = SampleKey.from_name(sample)
    except (ValueError, ArchiveError):
        raise ArchiveError(f"sample {sample!r} is not a sample name") from None
    path = archive.sample_path(key)
    if not path.exists() or "cluster" not in array_names(path):
        raise ArchiveError(f"sample {sample} has no clustered grains")
    n = array_shape(path, "cluster")[0]
    if not 0 <= int(particle) < n:
        raise ArchiveError(f"grain {particle} is not in sample {sample} (it has {n})")
    if into != -1 and into not in known_clusters:
        raise ArchiveError(f"cluster {into} is not a cluster with grains in this archive (-1: out of every cluster)")
    chunk = array_chunks(path, "cluster")[0]
    start = int(particle) // chunk * chunk
    block = read_array(path, "cluster", slice(start, min(start + chunk, n))).copy()
    source = int(block[int(particle) - start])
    if source == into:
        raise ArchiveError(f"grain {particle} of {sample} is in cluster {into} already")
    lab.record_move(archive, sample, int(particle), source, int(into), by=by)  # refuses stale labels first
    block[int(particle) - start] = into
    write_region(path, "cluster", start, block)
    return source
