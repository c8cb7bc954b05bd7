"""Recipes that fail fast and clearly: waiting for workers, wrong interfaces, GPU groups that never
start, start-up errors in one line, the public dask-jobqueue API, and the ``dask:`` line of
``--scheduler`` (issue 19). The real SLURM and SSH engines are in tests/sedarchive/pipeline/test_real_engines.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from sedarchive.dask.recipes import Recipe, RecipeError, load_recipe, slurm_spec, ssh_spec
from sedarchive.dask.startup import ClusterStartError, start_reason, wait_for_workers
from sedarchive.dask.tasks import dask_client, has_gpu_workers

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "culprit"), [
    ("kind: local\nworker_timeout: 0\n", "worker_timeout must be a positive number"),
    ("kind: local\nworker_timeout: soon\n", "worker_timeout must be a positive number"),
    ("kind: local\ngpu_fallback: wait\n", "gpu_fallback must be one of cpu, stop"),
])
def test_wait_settings_are_checked(tmp_path, text, culprit):
    with pytest.raises(RecipeError, match=culprit):
        load_recipe(write(tmp_path, text))


def test_wrong_interface_lists_the_interfaces_here(tmp_path):
    pytest.importorskip("dask_jobqueue", reason="the deploy extra (dask-jobqueue) is not installed")
    import psutil

    path = write(tmp_path, "kind: slurm\ncommon: {interface: ib9x, cores: 1, memory: 1GB}\n"
                           "worker_groups: {cpu: {jobs: 1}}\n")
    with pytest.raises(ClusterStartError) as err:
        with dask_client(cluster=path, quiet=True):
            pass
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "'ib9x' does not exist" in message
    assert all(name in message for name in psutil.net_if_addrs())


def test_slurm_spec_uses_public_job_class_with_each_groups_options():
    jobqueue = pytest.importorskip("dask_jobqueue", reason="the deploy extra (dask-jobqueue) is not installed")
    scheduler, workers = slurm_spec(load_recipe(DEPLOY / "slurm.yaml"), jobqueue.SLURMCluster.job_cls)
    assert scheduler["options"]["interface"] == "ib0" and scheduler["options"]["dashboard_address"] == ":8787"
    assert sorted(workers) == ["cpu-0", "cpu-1", "cpu-2", "cpu-3", "gpu-0"]
    assert all(spec["cls"] is jobqueue.SLURMCluster.job_cls for spec in workers.values())
    assert workers["cpu-0"]["group"] == [f"-{i}" for i in range(16)] and "group" not in workers["gpu-0"]
    script = workers["gpu-0"]["cls"]("tcp://login:8786", name="gpu-0", **workers["gpu-0"]["options"]).job_script()
    assert "#SBATCH --gres=gpu:1" in script and "--resources GPU=1" in script and "#SBATCH -p gpu" in script
    assert "_job_kwargs" not in Path(__file__).resolve().parents[3].joinpath("sedarchive/dask/recipes.py").read_text()


def test_shipped_ssh_recipe_binds_the_scheduler_to_its_host():
    scheduler, _ = ssh_spec(load_recipe(DEPLOY / "ssh.yaml"))
    assert scheduler["options"]["kwargs"]["host"] == scheduler["options"]["address"] == "head.example.org"


def test_ssh_recipe_with_missing_known_hosts_is_one_line(tmp_path):
    pytest.importorskip("asyncssh", reason="the deploy extra (asyncssh) is not installed")
    path = write(tmp_path, f"kind: ssh\nscheduler: 127.0.0.1\nconnect_options: {{known_hosts: {tmp_path}/gone}}\n"
                           "worker_groups: {cpu: {hosts: [127.0.0.1]}}\n")
    with pytest.raises(RecipeError, match=rf"connect_options.known_hosts: no file {tmp_path}/gone on this host$"):
        with dask_client(cluster=path, quiet=True):
            pass


def test_start_reason_is_the_line_that_says_error():
    try:
        try:
            raise RuntimeError("Command exited with non-zero exit code.\nExit code: 1\nCommand:\nsbatch /tmp/x.sh\n"
                               "stdout:\n\nstderr:\nsbatch: error: invalid partition specified: nowhere\n")
        except RuntimeError as inner:
            raise RuntimeError("Cluster failed to start: Command exited") from inner
    except RuntimeError as err:
        assert start_reason(err) == "sbatch: error: invalid partition specified: nowhere"
    try:
        raise FileNotFoundError(2, "No such file or directory", "/x/known")
    except FileNotFoundError as err:
        assert start_reason(err) == "FileNotFoundError: [Errno 2] No such file or directory: '/x/known'"


@pytest.fixture
def no_worker_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
        yield cluster, client


def test_no_worker_within_the_timeout_is_one_line(no_worker_client, tmp_path):
    cluster, client = no_worker_client
    recipe = Recipe("local", {"worker_timeout": 1}, tmp_path / "r.yaml")
    with pytest.raises(ClusterStartError, match=r"r.yaml: no Dask worker connected within 1 s \(worker_timeout\)"):
        wait_for_workers(client, cluster, recipe, print)


@pytest.mark.parametrize("fallback", ["cpu", "stop"])
def test_gpu_group_that_never_starts_falls_back_or_stops(dask_client, tmp_path, fallback):
    """One CPU worker came, the GPU group never does: go on on the CPU, or stop, as the recipe says."""
    groups = {"cpu": {"hosts": ["a"]}, "gpu": {"hosts": ["b"], "resources": {"GPU": 1}}}
    options = {"worker_timeout": 1, "gpu_fallback": fallback, "worker_groups": groups}
    recipe = Recipe("ssh", options, tmp_path / "r.yaml")
    said: list[str] = []
    if fallback == "stop":
        with pytest.raises(ClusterStartError, match="no GPU worker connected within 1 s and gpu_fallback is stop"):
            wait_for_workers(dask_client, None, recipe, said.append)
    else:
        wait_for_workers(dask_client, None, recipe, said.append)
        assert not has_gpu_workers(dask_client)
        assert said == ["dask: no GPU worker within 1 s (groups gpu); training and encoding run on the CPU "
                        "workers (recipe gpu_fallback: cpu)"]


def test_scheduler_address_prints_a_dask_line(dask_client, capsys):
    address = dask_client.scheduler.address
    with dask_client_of(address) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dask: scheduler {address}, 2 workers, dashboard ")


def dask_client_of(address: str):
    return dask_client(scheduler=address)
