"""Real SLURM and SSH engines on this host for the ``slurm`` and ``ssh`` tests.

:class:`SlurmOnLoopback` starts ``munged``, ``slurmctld`` and ``slurmd`` (Debian's ``munge`` and
``slurm-wlm``) with a generated minimal ``slurm.conf`` in a temporary folder: its own munge key and
socket, its own ports, state and log files there, one node (this host, address 127.0.0.1) and one
partition. :class:`SshdOnLoopback` starts ``sshd`` (``openssh-server``) on 127.0.0.1 on a free port
with a generated host key and client key. Each stops only the processes it started (by their
process ids). Where the programs are missing the tests skip, naming the packages and ``.ci/run``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MISSING = "{what} not installed: `.ci/run` installs Debian's {packages} (apt-get); without them this test cannot run"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(*programs: str) -> list[str]:
    return [p for p in programs if not shutil.which(p) and not Path("/usr/sbin", p).exists()]


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class Daemons:
    """Processes this helper started, stopped in reverse order by their own ids."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def wait_until(check, what: str, timeout: float, daemons: Daemons | None = None) -> None:
    end = time.monotonic() + timeout
    while not check():
        for name, proc in (daemons.procs if daemons else []):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{daemons.log(name)}")
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.3)


class SlurmOnLoopback(Daemons):
    """A one-node SLURM cluster on this host; ``env`` has ``SLURM_CONF`` for sbatch/squeue/scancel."""

    PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue")
    PACKAGES = "slurm-wlm and munge"

    def __init__(self, folder: Path, partition: str = "debug"):
        super().__init__(folder)
        self.partition = partition
        host = socket.gethostname()
        cpus = os.cpu_count() or 1
        memory_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
        for sub in ("state", "spool", "munge"):
            (folder / sub).mkdir(exist_ok=True)
        os.chmod(folder / "munge", 0o700)
        key = folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = folder / "munge" / "munge.socket"
        conf = folder / "slurm.conf"
        conf.write_text(f"""\
ClusterName=sedtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld-file.log"}
SlurmdLogFile={folder / "slurmd-file.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        self.env = {**os.environ, "SLURM_CONF": str(conf)}
        self.start("munged", [_program("munged"), "--foreground", "--force", f"--key-file={key}",
                              f"--socket={self.munge_socket}", f"--pid-file={folder / 'munge' / 'munged.pid'}",
                              f"--seed-file={folder / 'munge' / 'munge.seed'}",
                              f"--log-file={folder / 'munge' / 'munged.log'}"])
        wait_until(self.munge_socket.exists, "the munge socket", 30, self)
        self.start("slurmctld", [_program("slurmctld"), "-D", "-i", "-f", str(conf)], env=self.env)
        self.start("slurmd", [_program("slurmd"), "-D", "-f", str(conf), "-N", host], env=self.env)
        wait_until(self._node_idle, "the node to be idle (sinfo)", 90, self)

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env).stdout
        return any(state.strip().rstrip("*") in ("idle", "mix", "alloc") for state in out.split())

    def stop(self) -> None:
        subprocess.run(["scancel", "--user", "root"], capture_output=True, env=self.env)  # our cluster's jobs only
        super().stop()


class SshdOnLoopback(Daemons):
    """``sshd`` on 127.0.0.1 (free port) with its own host key; a client key allowed for root."""

    PROGRAMS = ("sshd", "ssh-keygen")
    PACKAGES = "openssh-server"

    def __init__(self, folder: Path):
        super().__init__(folder)
        os.chmod(folder, 0o700)
        self.port = free_port()
        host_key, self.client_key = folder / "host_key", folder / "client_key"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = folder / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        os.chmod(authorized, 0o600)
        self.known_hosts = folder / "known_hosts"
        public = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")
        config = folder / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {authorized}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AcceptEnv *
""")
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder sshd insists on
        self.start("sshd", [_program("sshd"), "-D", "-e", "-f", str(config)])
        wait_until(self._listening, "sshd to listen", 30, self)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0
