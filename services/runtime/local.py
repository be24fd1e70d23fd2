"""The `local` runtime: replicas are processes on this host.

Each replica runs under a tiny POSIX-shell wrapper in a session (and process
group) of its own, so it survives a restart of the facility's worker, which
later re-adopts it from the state files:

    <state_dir>/<name>.json   pid and start time of the engine process and of
                              its wrapper, process group, labels, spec, paths
    <state_dir>/<name>.log    the engine's stdout and stderr (appended)
    <state_dir>/<name>.pid    the engine's pid, written by the wrapper
    <state_dir>/<name>.exit   the engine's exit status, written by the wrapper
    <state_dir>/<name>.lock   serialises start/stop of one name across processes

Why a wrapper: once the worker that started a replica is gone, the engine is
no longer anybody's child we can wait() on, so its exit status would be lost.
The wrapper (`sh`, the group leader) starts the engine in the background,
waits for it and writes `$?` to the exit file (128+N for a signal N, the
shells' convention). The handle points at the engine process itself
("pid:starttime"), so `kill -9 <pid>` of a handle's pid kills the engine and
the wrapper records 137. The start time (psutil's create_time, from
/proc/<pid>/stat) defeats PID reuse.

Limits are best-effort: memory is `ulimit -d` (RLIMIT_DATA, set in the
wrapper, so no preexec_fn runs in a threaded worker): an engine that goes over
gets allocation failures (Python: MemoryError) rather than an OOM kill. CPU
limits are not enforced locally. GPU device ids become CUDA_VISIBLE_DEVICES;
with none, CUDA_VISIBLE_DEVICES is set empty (no card share, no card) unless
the spec's env sets it. Mounts are ignored (the command runs in the package
folder, `spec.workdir`).

A command whose program is a bare `python3` or `python` runs with the
engine interpreter: FACILITY_ENGINE_PYTHON, by default the facility's own
Python (its virtual environment has the reference engine's dependencies). So
an artifact package says `python3 -m engine` and carries no path of the
machine it was built on.

The engine does not inherit the facility's environment (it holds database
credentials and secrets): only PATH, HOME, locale, TZ, TMPDIR and CA-bundle
variables are passed, then `spec.env`, plus PYTHONUNBUFFERED=1 by default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from .base import (
    ManagedReplica,
    ReplicaHandle,
    ReplicaSpec,
    ReplicaState,
    ReplicaStats,
    RuntimeError_,
)
from .common import check_name, describe_exit, managed_labels

# $1 pid file, $2 exit file, $3 RLIMIT_DATA in KiB or "", then the argv.
_WRAPPER = r"""
pidfile=$1; exitfile=$2; limit=$3; shift 3
if [ -n "$limit" ]; then ulimit -d "$limit" || exit 125; fi
"$@" &
child=$!
echo "$child" > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
wait "$child"
code=$?
echo "$code" > "$exitfile.tmp" && mv "$exitfile.tmp" "$exitfile"
exit "$code"
"""

_INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
)
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_START_TIME_TOLERANCE_S = 0.02  # create_time has clock-tick (10 ms) resolution


# Wrappers started by this process (any LocalRuntime object), reaped when seen
# to have exited so that they do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _default_state_dir() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / "runtime" / "local"


# Program names that mean "a Python with the engine's dependencies".
NEUTRAL_PYTHONS = ("python3", "python")


def engine_python() -> str:
    """The interpreter for a bare `python3`/`python` command:
    FACILITY_ENGINE_PYTHON (a path, or a name looked up on PATH), else the
    facility's own."""
    from django.conf import settings

    configured = str(getattr(settings, "ENGINE_PYTHON", "") or "")
    if not configured:
        return sys.executable
    if "/" in configured:
        return configured
    return shutil.which(configured) or configured


def resolve_interpreter(command: list[str]) -> list[str]:
    if command and command[0] in NEUTRAL_PYTHONS:
        return [engine_python(), *command[1:]]
    return list(command)


def _parse_ref(ref: str) -> tuple[int, float]:
    try:
        pid, start = ref.split(":", 1)
        return int(pid), float(start)
    except ValueError:
        return 0, 0.0


def _process(pid: int, start: float | None) -> psutil.Process | None:
    """The live (non-zombie) process `pid` if it started at `start`."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if start is not None and abs(proc.create_time() - start) > _START_TIME_TOLERANCE_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int, max_bytes: int = 1 << 20) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block, data = 8192, b""
            while size > 0 and data.count(b"\n") <= lines and len(data) < max_bytes:
                step = min(block, size)
                size -= step
                f.seek(size)
                data = f.read(step) + data
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    parts = text.splitlines(keepends=True)
    return "".join(parts[-lines:]) if lines > 0 else ""


class LocalRuntime:
    """Replicas as local processes; see the module docstring."""

    name = "local"

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else _default_state_dir()
        self._children = _CHILDREN
        self._cpu_samples: dict[str, tuple[float, float]] = {}
        self._names: dict[str, str] = {}  # ref -> name, a cache over the state files

    # -- files ---------------------------------------------------------------

    def _path(self, name: str, suffix: str) -> Path:
        return self.state_dir / f"{name}{suffix}"

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._path(name, ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _load(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(name, ".json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _states(self) -> Iterator[dict[str, Any]]:
        if not self.state_dir.is_dir():
            return
        for path in sorted(self.state_dir.glob("*.json")):
            state = self._load(path.stem)
            if state is not None:
                yield state

    def _find(self, ref: str) -> dict[str, Any] | None:
        name = self._names.get(ref)
        if name is not None:
            state = self._load(name)
            if state is not None and state.get("ref") == ref:
                return state
        for state in self._states():
            self._names[str(state.get("ref"))] = str(state.get("name"))
            if state.get("ref") == ref:
                return state
        return None

    def _remove_files(self, name: str, keep_log: bool = False) -> None:
        suffixes = [".json", ".json.tmp", ".pid", ".pid.tmp", ".exit", ".exit.tmp"]
        if not keep_log:
            suffixes += [".log", ".log.1"]
        for suffix in suffixes:
            with contextlib.suppress(FileNotFoundError):
                self._path(name, suffix).unlink()

    # -- processes -----------------------------------------------------------

    def _reap(self) -> None:
        """Collect the exit of wrappers this object started (no zombies)."""
        for pid, popen in list(self._children.items()):
            if popen.poll() is not None:
                del self._children[pid]

    def _engine(self, pid: int, start: float) -> psutil.Process | None:
        self._reap()
        return _process(pid, start) if start else None

    def _group_members(self, pgid: int, since: float) -> list[psutil.Process]:
        """Live processes of process group `pgid` started at or after `since`
        (so a reused group number never hits somebody else's processes)."""
        if pgid <= 1 or pgid == os.getpgrp():
            return []
        members = []
        for proc in psutil.process_iter(["create_time", "status"]):
            try:
                if proc.pid == os.getpid() or os.getpgid(proc.pid) != pgid:
                    continue
            except OSError:
                continue
            info = proc.info
            if info.get("status") == psutil.STATUS_ZOMBIE:
                continue
            if (info.get("create_time") or 0) + _START_TIME_TOLERANCE_S < since:
                continue
            members.append(proc)
        return members

    # -- the interface ---------------------------------------------------------

    def is_available(self) -> tuple[bool, str]:
        if not Path("/bin/sh").exists():
            return False, "/bin/sh is missing"
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return False, f"state folder {self.state_dir} is not writable: {error}"
        if not os.access(self.state_dir, os.W_OK):
            return False, f"state folder {self.state_dir} is not writable"
        return True, ""

    def _environment(self, spec: ReplicaSpec) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(spec.env)
        if spec.gpu_device_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpu_device_ids)
        else:
            env.setdefault("CUDA_VISIBLE_DEVICES", "")
        return env

    def _resolve_command(self, spec: ReplicaSpec, env: dict[str, str], cwd: Path) -> None:
        if not spec.command:
            raise RuntimeError_("the local runtime needs a command to run")
        program = spec.command[0]
        if "/" in program:
            path = Path(program) if Path(program).is_absolute() else cwd / program
            if not path.is_file():
                raise RuntimeError_(f"command not found: {program}")
            if not os.access(path, os.X_OK):
                raise RuntimeError_(f"command is not executable: {program}")
        elif shutil.which(program, path=env.get("PATH")) is None:
            raise RuntimeError_(f"command not found on PATH: {program}")

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        check_name(spec.name)
        cwd = Path(spec.workdir) if spec.workdir else self.state_dir
        if spec.workdir and not cwd.is_dir():
            raise RuntimeError_(f"working folder does not exist: {spec.workdir}")
        spec = dataclasses.replace(spec, command=resolve_interpreter(list(spec.command)))
        env = self._environment(spec)
        self._resolve_command(spec, env, cwd)
        with self._lock(spec.name):
            old = self._load(spec.name)
            if old is not None:
                if self._engine(int(old.get("pid", 0)), float(old.get("start_time", 0))):
                    return ReplicaHandle(runtime=self.name, ref=str(old["ref"]))
                # A dead earlier run of this name: clear what it left (but its
                # log, which the new run appends to).
                self._stop_state(old, timeout_s=1, keep_log=True)
            return self._spawn(spec, env, cwd)

    def _spawn(self, spec: ReplicaSpec, env: dict[str, str], cwd: Path) -> ReplicaHandle:
        name = spec.name
        pid_path, exit_path, log_path = (
            self._path(name, ".pid"),
            self._path(name, ".exit"),
            self._path(name, ".log"),
        )
        for path in (pid_path, exit_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > _LOG_ROTATE_BYTES:
                log_path.replace(self._path(name, ".log.1"))
        limit_kib = ""
        if spec.memory_limit_bytes:
            limit_kib = str(max(1, spec.memory_limit_bytes // 1024))
        argv = [
            "/bin/sh",
            "-c",
            _WRAPPER,
            f"facility-replica-{name}",
            str(pid_path),
            str(exit_path),
            limit_kib,
            *spec.command,
        ]
        with log_path.open("ab") as log:
            log.write(f"=== facility: starting replica {name} at {time.ctime()}\n".encode())
            log.flush()
            try:
                wrapper = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as error:
                raise RuntimeError_(f"could not start the replica: {error}")
        self._children[wrapper.pid] = wrapper
        engine_pid = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            engine_pid = _read_int(pid_path)
            if engine_pid is not None or wrapper.poll() is not None:
                break
            time.sleep(0.005)
        if engine_pid is None:
            engine_pid = _read_int(pid_path)
        if engine_pid is None:
            code = wrapper.poll()
            if code is None:
                self._kill_group(wrapper.pid, 0.0, timeout_s=1)
            raise RuntimeError_(
                f"the replica did not start ({describe_exit(code)}): "
                + _tail(log_path, 5).strip()[-500:]
            )
        wrapper_start = 0.0
        with contextlib.suppress(psutil.Error):
            wrapper_start = psutil.Process(wrapper.pid).create_time()
        start_time = 0.0
        with contextlib.suppress(psutil.Error):
            start_time = psutil.Process(engine_pid).create_time()
        ref = f"{engine_pid}:{start_time:.2f}"
        state = {
            "name": name,
            "ref": ref,
            "pid": engine_pid,
            "start_time": start_time,
            "wrapper_pid": wrapper.pid,
            "wrapper_start_time": wrapper_start,
            "pgid": wrapper.pid,
            "labels": managed_labels(spec),
            "spec": dataclasses.asdict(spec),
            "log_path": str(log_path),
            "exit_path": str(exit_path),
            "started_at": time.time(),
        }
        tmp = self._path(name, ".json.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(self._path(name, ".json"))
        return ReplicaHandle(runtime=self.name, ref=ref)

    def _kill_group(self, pgid: int, since: float, timeout_s: float) -> None:
        """SIGTERM the group's processes, SIGKILL what is left after timeout_s."""
        members = self._group_members(pgid, since)
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            if not members:
                break
            for proc in members:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)
            deadline = time.monotonic() + max(0.0, wait_s)
            while True:
                self._reap()
                # A zombie is gone for us: whoever adopted it reaps it.
                members = [p for p in members if _process(p.pid, p.info.get("create_time"))]
                if not members or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
        self._reap()

    def _stop_state(self, state: dict[str, Any], timeout_s: float, keep_log: bool = False) -> None:
        since = float(state.get("wrapper_start_time") or state.get("start_time") or 0)
        pgid = int(state.get("pgid") or 0)
        self._kill_group(pgid, since, timeout_s)
        # The engine may have left the group (setsid): stop it by identity too.
        engine = _process(int(state.get("pid", 0)), float(state.get("start_time") or 0) or None)
        if engine is not None and state.get("start_time"):
            with contextlib.suppress(psutil.Error):
                engine.terminate()
                psutil.wait_procs([engine], timeout=timeout_s)
                if engine.is_running():
                    engine.kill()
        self._remove_files(str(state["name"]), keep_log=keep_log)

    def stop(self, handle: ReplicaHandle, timeout_s: float = 10) -> None:
        state = self._find(handle.ref)
        if state is not None:
            with self._lock(str(state["name"])):
                current = self._load(str(state["name"]))
                if current is not None and current.get("ref") == handle.ref:
                    self._stop_state(current, timeout_s)
            return
        # No state file (wiped?): stop the process itself if it still runs.
        pid, start = _parse_ref(handle.ref)
        engine = _process(pid, start) if start else None
        if engine is None:
            return
        try:
            pgid = os.getpgid(pid)
        except OSError:
            return
        self._kill_group(pgid, start, timeout_s)

    def inspect(self, handle: ReplicaHandle) -> ReplicaState:
        pid, start = _parse_ref(handle.ref)
        state = self._find(handle.ref)
        engine = self._engine(pid, start)
        if engine is not None:
            return ReplicaState(status="running", started_at=start or None)
        if state is None:
            return ReplicaState(status="missing", detail="no such replica")
        exit_path = Path(str(state.get("exit_path", "")))
        code = _read_int(exit_path)
        if code is None:
            # The engine just ended and the wrapper may be writing its status.
            wrapper_start = float(state.get("wrapper_start_time") or 0) or None
            wrapper = _process(int(state.get("wrapper_pid", 0)), wrapper_start)
            deadline = time.monotonic() + 1.0
            while code is None and wrapper is not None and time.monotonic() < deadline:
                time.sleep(0.02)
                self._reap()
                code = _read_int(exit_path)
                if code is None and _process(wrapper.pid, wrapper_start) is None:
                    code = _read_int(exit_path)
                    break
        if code is None:
            detail = "exited; exit code unknown (its wrapper was killed as well)"
        else:
            detail = describe_exit(code)
            spec = state.get("spec") or {}
            if spec.get("memory_limit_bytes") and "MemoryError" in _tail(
                Path(str(state.get("log_path", ""))), 20
            ):
                detail += " (MemoryError: memory limit reached)"
        return ReplicaState(
            status="exited",
            exit_code=code,
            started_at=float(state.get("start_time") or 0) or None,
            detail=detail,
        )

    def logs(self, handle: ReplicaHandle, tail: int = 100) -> str:
        state = self._find(handle.ref)
        if state is None:
            return ""
        return _tail(Path(str(state.get("log_path", ""))), tail)

    def stats(self, handle: ReplicaHandle) -> ReplicaStats | None:
        pid, start = _parse_ref(handle.ref)
        engine = self._engine(pid, start)
        if engine is None:
            self._cpu_samples.pop(handle.ref, None)
            return None

        def sample() -> tuple[float, int]:
            procs = [engine]
            with contextlib.suppress(psutil.Error):
                procs += engine.children(recursive=True)
            cpu, rss = 0.0, 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    rss += proc.memory_info().rss
            return cpu, rss

        previous = self._cpu_samples.get(handle.ref)
        if previous is None:
            cpu0, _ = sample()
            previous = (time.monotonic(), cpu0)
            time.sleep(0.1)
        cpu1, rss = sample()
        now = time.monotonic()
        self._cpu_samples[handle.ref] = (now, cpu1)
        elapsed = max(now - previous[0], 1e-6)
        percent = max(0.0, (cpu1 - previous[1]) / elapsed * 100.0)
        return ReplicaStats(cpu_percent=round(percent, 2), memory_bytes=rss)

    def list_managed(self) -> list[ManagedReplica]:
        result = []
        for state in self._states():
            handle = ReplicaHandle(runtime=self.name, ref=str(state.get("ref", "")))
            result.append(
                ManagedReplica(
                    handle=handle,
                    labels=dict(state.get("labels") or {}),
                    state=self.inspect(handle),
                )
            )
        return result
