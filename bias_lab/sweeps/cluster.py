"""Where a sweep runs: a Ray instance started on this machine (the default), or an existing cluster
joined by address (``--address auto|HOST:PORT`` or ``RAY_ADDRESS``).

On Linux Ray replaces 127.0.0.1 by the machine's interface address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set, so a local instance (and a driver joining a head on
127.0.0.1) sets it, with usage statistics off: every listener and connection then stays on the
loopback interface. ``start_loopback_head`` starts such a head with ``ray start --head`` (tests and
benchmarks use it) and stops it by process id — never with a broad ``ray stop``, which would stop
every Ray instance of the machine."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import BiasLabError

LOOPBACK = "127.0.0.1"
LOOPBACK_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
ADDRESS_ENV_VAR = "RAY_ADDRESS"


def chosen_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``$RAY_ADDRESS``; None means a new local instance."""
    address = (address or os.environ.get(ADDRESS_ENV_VAR) or "").strip()
    return address or None


def is_loopback(address: str | None) -> bool:
    if address is None:
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host in (LOOPBACK, "localhost")


def _source_checkout() -> Path | None:
    """The checkout bias_lab is imported from, if it is one (not an installed copy)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "bias_lab").is_dir() else None


@lru_cache(maxsize=1)
def _workers_need_checkout_path() -> Path | None:
    """The checkout to put on Ray workers' path when a fresh interpreter would not import this
    bias_lab (a source tree that is not installed, or installed from elsewhere); None otherwise."""
    root = _source_checkout()
    if root is None:
        return None
    probe = subprocess.run([sys.executable, "-c", "import bias_lab; print(bias_lab.__file__)"], cwd=tempfile.gettempdir(),
                           capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    found = probe.stdout.strip()
    return None if probe.returncode == 0 and found and Path(found).resolve().parent == root / "bias_lab" else root


def _with_checkout(path_value: str | None, root: Path) -> str:
    return os.pathsep.join(filter(None, [str(root), path_value]))


def _reread_authentication() -> None:
    """Ray keeps the authentication mode and token it read first in a process; a session must use
    what the environment says now (a test head's own token, then the user's default one)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


class RaySession:
    """Connected to Ray for the duration of a ``with`` block; a connection made here is closed at
    the end, and the environment it changed is put back (one made before, e.g. by a notebook's own
    ``ray.init``, is used as it is and left open)."""

    def __init__(self, address: str | None = None):
        self.address = chosen_address(address)
        self.owned = False
        self._saved_environment: dict[str, str | None] = {}
        self._saved_cluster_flag = None

    @property
    def description(self) -> str:
        return f"Ray cluster at {self.address}" if self.address else "a local Ray instance on 127.0.0.1"

    def _set_environment(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _stay_on_loopback(self) -> None:
        self._set_environment(LOOPBACK_ENVIRONMENT)
        # Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is first imported: in a process
        # that imported ray before (a notebook, a test run) the variable alone would come too late
        # and the instance would listen on the machine's interfaces.
        from ray._private import ray_constants

        self._saved_cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False

    def _restore(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        if self._saved_cluster_flag is not None:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = self._saved_cluster_flag
            self._saved_cluster_flag = None
        _reread_authentication()

    def __enter__(self) -> "RaySession":
        import ray

        if ray.is_initialized():
            return self
        if is_loopback(self.address):
            self._stay_on_loopback()
        _reread_authentication()
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        checkout = _workers_need_checkout_path()
        try:
            if self.address is None:
                if checkout is not None:  # the local instance's workers inherit this process's environment
                    self._set_environment({"PYTHONPATH": _with_checkout(os.environ.get("PYTHONPATH"), checkout)})
                # "local": a new instance even where /tmp/ray names another (Ray would join that one).
                ray.init(address="local", _node_ip_address=LOOPBACK, **options)
            else:
                if checkout is not None:  # a cluster's workers get it through the job's runtime environment
                    options["runtime_env"] = {"env_vars": {"PYTHONPATH": f"{checkout}{os.pathsep}${{PYTHONPATH}}"}}
                ray.init(address=self.address, **options)
        except (ConnectionError, ValueError, RuntimeError) as error:
            self._restore()
            reason = " ".join(str(error).split())[:200]
            where = f"join the Ray cluster at {self.address!r}" if self.address else "start a local Ray instance"
            raise BiasLabError(f"cannot {where}: {reason} (start one with `ray start --head`, or use --serial)") from None
        except BaseException:
            self._restore()
            raise
        self.owned = True
        return self

    def __exit__(self, *exc) -> bool:
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False
            self._restore()
        return False


# --- a head node on the loopback interface (tests, benchmarks) ---------------------------------

def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _processes() -> dict[int, tuple[str, int]]:
    """pid → (command line, parent pid) of every process (Linux /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        found[int(entry)] = (command, int(stat.rsplit(")", 1)[1].split()[1]))
    return found


def _with_descendants(roots: set[int], processes: dict[int, tuple[str, int]]) -> set[int]:
    tree, grown = set(roots), True
    while grown:
        grown = False
        for pid, (_, parent) in processes.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    return tree


@dataclass
class LoopbackHead:
    """A Ray head started by :func:`start_loopback_head`; ``stop()`` ends exactly its processes."""

    port: int
    temp_dir: Path
    token: str = ""
    process_ids: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        """What a driver joining this head needs in its environment: loopback, and the head's own
        authentication token (not the user's ~/.ray/auth_token)."""
        return {**LOOPBACK_ENVIRONMENT, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def own_processes(self) -> set[int]:
        """Its processes now: those whose command line names its private temp folder, and their
        children (the workers, whose titles Ray rewrites)."""
        processes = _processes()
        roots = {pid for pid, (command, _) in processes.items() if str(self.temp_dir) in command}
        tree = _with_descendants(roots | (self.process_ids & set(processes)), processes) - {os.getpid()}
        return {pid for pid in tree if _running(pid)}  # an exited process waiting to be reaped is over

    def stop(self, timeout: float = 5.0) -> None:
        pids = self.own_processes()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5)
            while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in pids):
                time.sleep(0.1)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_loopback_head(*, num_cpus: int = 2, port: int | None = None, timeout: float = 120.0) -> LoopbackHead:
    """``ray start --head`` on 127.0.0.1 with a private temp folder (so it never becomes the
    machine's default cluster for ``--address auto``) and free ports."""
    ray_command = Path(sys.executable).with_name("ray")
    command = str(ray_command) if ray_command.is_file() else (shutil.which("ray") or "ray")
    port = port or free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="blray-", dir="/tmp"))  # short: Ray's socket paths must stay short
    head = LoopbackHead(port, temp_dir, secrets.token_hex(32))
    environment = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN_PATH"}
    environment.update(head.environment)
    checkout = _workers_need_checkout_path()
    if checkout is not None:  # the head's workers import this checkout without a runtime environment
        environment["PYTHONPATH"] = _with_checkout(environment.get("PYTHONPATH"), checkout)
    arguments = [command, "start", "--head", "--node-ip-address", LOOPBACK, "--port", str(port),
                 "--num-cpus", str(num_cpus), "--include-dashboard", "false", "--disable-usage-stats",
                 "--temp-dir", str(temp_dir),
                 "--dashboard-agent-listen-port", str(free_port())]
    try:
        finished = subprocess.run(arguments, env=environment, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        head.stop()
        raise BiasLabError(f"`ray start --head` did not finish in {timeout:.0f} s") from None
    head.process_ids = head.own_processes()
    if finished.returncode != 0:
        head.stop()
        last = (finished.stderr or finished.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BiasLabError(f"`ray start --head` failed (exit {finished.returncode}): {last[0]}")
    return head
