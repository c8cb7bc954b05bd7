"""``sedarchive cluster``: options, the default mode, and one-line errors."""
from __future__ import annotations

import pytest
from latent_archive import make_archive

from catalog import SampleKey
from sedarchive.cli import main
from sedarchive.clustering import current_model


def test_cluster_command_fits_then_assigns(tmp_path, dask_client, capsys):
    archive, _ = make_archive(tmp_path / "arc", {SampleKey("A", 0, 1): 80, SampleKey("A", 1, 2): 80})
    address = dask_client.scheduler.address
    assert main(["cluster", str(archive.root), "--k", "4", "--umap-points", "0", "--scheduler", address,
                 "--quiet"]) == 0
    first = current_model(archive)
    assert first.n_centres == 4
    assert archive.proportions_path.exists()
    # with a model for the same encoder, the default is assign-only: same model, whatever --k says
    assert main(["cluster", str(archive.root), "--k", "6", "--umap-points", "0", "--scheduler", address,
                 "--quiet"]) == 0
    assert current_model(archive).id == first.id
    assert main(["cluster", str(archive.root), "--k", "3", "--refit", "--umap-points", "0", "--core", "A",
                 "--scheduler", address, "--quiet"]) == 0
    assert current_model(archive).n_centres == 3


def test_cluster_command_errors_are_one_line(tmp_path, capsys):
    archive, _ = make_archive(tmp_path / "arc", {SampleKey("A", 0, 1): 10})
    assert main(["cluster", str(archive.root), "--k", "1"]) == 2
    assert "sedarchive cluster: error: cluster settings: need k >= 2" in capsys.readouterr().err
    assert main(["cluster", str(archive.root), "--core", "Q"]) == 2
    assert "no samples with status encoded or later" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cluster", str(archive.root), "--refit", "--assign-only"])
