"""Cluster recipes in deploy/: reading and checking them, the arguments they build, and the local one running."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from sedarchive.dask.tasks import dask_client, has_gpu_workers
from sedarchive.dask.recipes import (
    RecipeError,
    cluster_from_recipe,
    kubernetes_spec,
    load_recipe,
    local_kwargs,
    slurm_groups,
    ssh_spec,
)

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", ["local", "ssh", "slurm", "kubernetes"])
def test_shipped_recipes_load(kind):
    recipe = load_recipe(DEPLOY / f"{kind}.yaml")
    assert recipe.kind == kind


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("kind: pbs\n", "kind must be one of"),
        ("- just\n- a list\n", "YAML mapping"),
        ("kind: local\nworkerz: 2\n", "'workerz'"),
        ("kind: local\nworkers: 0\n", "workers must be a positive integer"),
        ("kind: local\nresources: {GPU: -1}\n", "resources must map"),
        ("kind: ssh\nscheduler: head\n", "worker_groups must map"),
        ("kind: ssh\nscheduler: head\nworker_groups: {cpu: {hosts: []}}\n", "worker_groups.cpu.hosts"),
        ("kind: slurm\nworker_groups: {cpu: {jobs: 1, cores: 4}}\n", "needs 'memory'"),
        ("kind: slurm\nworker_groups: {cpu: {jobs: 1, cores: 4, memory: 8GB, gpus: 1}}\n", "'gpus'"),
        ("kind: kubernetes\nspec: missing.yaml\n", "cannot read"),
        ("kind: local\n  bad: [\n", "cannot read cluster recipe"),
    ],
)
def test_bad_recipes_name_file_and_key(tmp_path, text, culprit):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError, match="recipe.yaml") as err:
        load_recipe(path)
    assert culprit in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="no cluster recipe at .*nope.yaml"):
        load_recipe(tmp_path / "nope.yaml")


def test_local_recipe_starts_a_cluster_with_declared_resources(tmp_path):
    path = write(tmp_path, "kind: local\nworkers: 1\nthreads_per_worker: 1\nresources: {GPU: 1}\n")
    assert local_kwargs(load_recipe(path))["n_workers"] == 1
    with dask_client(cluster=path, quiet=True) as client:
        assert len(client.scheduler_info()["workers"]) == 1
        assert has_gpu_workers(client)
        assert client.submit(pow, 3, 4, resources={"GPU": 1}).result() == 81


def test_shipped_local_recipe_runs_tasks():
    with cluster_from_recipe(DEPLOY / "local.yaml") as cluster:
        from distributed import Client

        with Client(cluster) as client:
            assert client.gather(client.map(abs, [-1, -2])) == [1, 2]
            assert not has_gpu_workers(client)


def test_ssh_spec_gives_each_group_its_own_worker_options():
    scheduler, workers = ssh_spec(load_recipe(DEPLOY / "ssh.yaml"))
    assert scheduler["options"]["address"] == "head.example.org"
    assert scheduler["options"]["kwargs"]["port"] == 8786
    assert sorted(workers) == ["cpu-0", "cpu-1", "gpu-0"]
    gpu = workers["gpu-0"]["options"]
    assert gpu["address"] == "gpu01.example.org"
    assert gpu["kwargs"]["resources"] == {"GPU": 1}
    assert "resources" not in workers["cpu-0"]["options"]["kwargs"]
    assert workers["cpu-1"]["options"]["kwargs"]["n_workers"] == 8
    assert gpu["remote_python"] == "/opt/sedarchive/.venv/bin/python"


def test_slurm_job_scripts_of_cpu_and_gpu_groups():
    SLURMJob = pytest.importorskip("dask_jobqueue.slurm", reason="the deploy extra (dask-jobqueue) is not installed").SLURMJob

    _, groups = slurm_groups(load_recipe(DEPLOY / "slurm.yaml"))
    assert [(g.name, g.jobs) for g in groups] == [("cpu", 4), ("gpu", 1)]
    scripts = {g.name: SLURMJob(scheduler="tcp://login:8786", name="w", **g.job_kwargs).job_script() for g in groups}
    assert "#SBATCH -p cpu" in scripts["cpu"] and "--nworkers 16" in scripts["cpu"]
    assert "--resources" not in scripts["cpu"] and "--gres" not in scripts["cpu"]
    assert "#SBATCH -p gpu" in scripts["gpu"]
    assert "#SBATCH --gres=gpu:1" in scripts["gpu"]
    assert "--resources GPU=1" in scripts["gpu"]
    assert "#SBATCH -A my-project" in scripts["gpu"] and "-t 04:00:00" in scripts["gpu"]


def test_kubernetes_spec_has_cpu_and_gpu_worker_groups():
    cluster, groups = kubernetes_spec(load_recipe(DEPLOY / "kubernetes.yaml"))
    assert cluster["kind"] == "DaskCluster" and cluster["metadata"]["name"] == "sedarchive"
    cpu_args = cluster["spec"]["worker"]["spec"]["containers"][0]["args"]
    assert "GPU=1" not in cpu_args
    (gpu,) = groups
    assert gpu["kind"] == "DaskWorkerGroup" and gpu["spec"]["cluster"] == "sedarchive"
    container = gpu["spec"]["worker"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--resources") + 1] == "GPU=1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_kubernetes_spec_needs_one_daskcluster(tmp_path):
    write(tmp_path, yaml.safe_dump({"kind": "DaskWorkerGroup", "spec": {"worker": {}}}), "spec.yaml")
    with pytest.raises(RecipeError, match="exactly one 'kind: DaskCluster'"):
        load_recipe(write(tmp_path, "kind: kubernetes\nspec: spec.yaml\n"))


@pytest.mark.parametrize(("kind", "module", "hint"), [
    ("kubernetes", "dask_kubernetes", "pip install 'sedarchive[kubernetes]'"),
    ("slurm", "dask_jobqueue", "sedarchive[deploy]"),
    ("ssh", "asyncssh", "sedarchive[deploy]"),
])
def test_missing_stack_is_a_clear_error(monkeypatch, kind, module, hint):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(RecipeError, match=f"needs {module}.*{hint}".replace("[", r"\[").replace("]", r"\]")):
        with cluster_from_recipe(DEPLOY / f"{kind}.yaml"):
            pass
