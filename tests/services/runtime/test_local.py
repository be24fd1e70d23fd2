"""The `local` runtime against real processes (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from services.runtime.base import (
    LABEL_MANAGED,
    LABEL_REPLICA,
    LABEL_SERVICE,
    ReplicaHandle,
    ReplicaSpec,
    RuntimeError_,
)
from services.runtime.local import LocalRuntime

from .conftest import STUB, get_json, port_closed, wait_answer, wait_for

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path / "state")
    yield rt
    for item in LocalRuntime(rt.state_dir).list_managed():
        rt.stop(item.handle, timeout_s=2)


def stub_spec(name: str, port: int, **kw: object) -> ReplicaSpec:
    env = {"ENGINE_PORT": str(port)}
    env.update(kw.pop("env", {}))  # type: ignore[arg-type]
    return ReplicaSpec(
        name=name,
        labels={LABEL_SERVICE: "svc-1"},
        command=[sys.executable, str(STUB)],
        env=env,
        workdir=str(STUB.parent),
        port=port,
        **kw,  # type: ignore[arg-type]
    )


def pid_of(handle: ReplicaHandle) -> int:
    return int(handle.ref.split(":")[0])


def test_start_answers_logs_and_stop_is_idempotent(runtime: LocalRuntime, port: int) -> None:
    t0 = time.monotonic()
    handle = runtime.start(stub_spec("web-1", port))
    body = wait_answer(port)
    print(f"local start -> answer: {time.monotonic() - t0:.3f} s")
    assert handle.runtime == "local"
    assert body["Pid"] == pid_of(handle)  # the handle points at the engine itself
    state = runtime.inspect(handle)
    assert state.status == "running" and state.is_running
    assert state.started_at and abs(state.started_at - time.time()) < 60
    # Its own session: a restart of the worker (our process group) spares it.
    assert os.getsid(pid_of(handle)) != os.getsid(0)
    logs = wait_for(lambda: "hello on stderr" in runtime.logs(handle) and runtime.logs(handle))
    assert f"engine-stub listening on 127.0.0.1:{port}" in logs
    assert "engine-stub says hello on stderr" in logs
    assert runtime.logs(handle, tail=1).count("\n") <= 1

    t0 = time.monotonic()
    runtime.stop(handle, timeout_s=5)
    assert time.monotonic() - t0 < 3  # SIGTERM was enough
    assert not psutil.pid_exists(pid_of(handle)) or psutil.Process(pid_of(handle)).status() == (
        psutil.STATUS_ZOMBIE
    )
    assert port_closed(port)
    assert runtime.inspect(handle).status == "missing"
    runtime.stop(handle)  # idempotent
    assert runtime.logs(handle) == ""
    assert runtime.stats(handle) is None
    assert runtime.list_managed() == []


def test_vanished_handle_is_missing_never_an_error(runtime: LocalRuntime) -> None:
    for ref in ("999999:1.00", "garbage", ""):
        handle = ReplicaHandle(runtime="local", ref=ref)
        assert runtime.inspect(handle).status == "missing"
        runtime.stop(handle)
        assert runtime.logs(handle) == ""
        assert runtime.stats(handle) is None
    # A live pid with another start time is somebody else's process: not ours.
    me = ReplicaHandle(runtime="local", ref=f"{os.getpid()}:1.00")
    assert runtime.inspect(me).status == "missing"
    runtime.stop(me)
    assert psutil.pid_exists(os.getpid())


def test_kill_9_shows_exited_with_code(runtime: LocalRuntime, port: int) -> None:
    handle = runtime.start(stub_spec("crash-1", port))
    wait_answer(port)
    os.kill(pid_of(handle), signal.SIGKILL)
    state = wait_for(lambda: (s := runtime.inspect(handle)).status == "exited" and s)
    assert state.exit_code == 137
    assert "SIGKILL" in state.detail
    assert "listening" in runtime.logs(handle)  # logs outlive the process
    assert runtime.stats(handle) is None
    [item] = runtime.list_managed()
    assert item.state.status == "exited"
    runtime.stop(handle)
    assert runtime.list_managed() == []


def test_plain_exit_code_is_recorded(runtime: LocalRuntime) -> None:
    spec = ReplicaSpec(
        name="exit-3",
        labels={},
        command=["sh", "-c", "echo bye; exit 3"],
    )
    handle = runtime.start(spec)
    state = wait_for(lambda: (s := runtime.inspect(handle)).status == "exited" and s)
    assert state.exit_code == 3 and state.detail == "exit code 3"
    assert "bye" in runtime.logs(handle)


def test_readoption_after_the_starting_process_exits(runtime: LocalRuntime, port: int) -> None:
    """A replica started by another process (a worker that then dies) is
    found by a new runtime object, keeps answering, and is not duplicated."""
    code = (
        "import sys\n"
        "from services.runtime.local import LocalRuntime\n"
        "from services.runtime.base import ReplicaSpec\n"
        f"spec = ReplicaSpec(name='adopt-1', labels={{'facility.service': 'svc-9'}},"
        f" command=[{sys.executable!r}, {str(STUB)!r}], env={{'ENGINE_PORT': '{port}'}},"
        f" port={port})\n"
        f"print(LocalRuntime({str(runtime.state_dir)!r}).start(spec).ref)\n"
    )
    worker = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert worker.returncode == 0, worker.stderr
    ref = worker.stdout.strip()
    wait_answer(port)

    fresh = LocalRuntime(runtime.state_dir)
    [item] = fresh.list_managed()
    assert item.handle == ReplicaHandle(runtime="local", ref=ref)
    assert item.state.status == "running"
    assert item.labels[LABEL_MANAGED] == "1"
    assert item.labels[LABEL_REPLICA] == "adopt-1"
    assert item.labels[LABEL_SERVICE] == "svc-9"

    # The same name again: the running one is returned, nothing new starts.
    again = fresh.start(stub_spec("adopt-1", port))
    assert again.ref == ref
    assert len(fresh.list_managed()) == 1
    assert get_json(port)["Pid"] == pid_of(item.handle)

    # Its exit status is still recorded although it is nobody's child here.
    os.kill(pid_of(item.handle), signal.SIGKILL)
    state = wait_for(lambda: (s := fresh.inspect(item.handle)).status == "exited" and s)
    assert state.exit_code == 137

    # A start of that name now replaces the dead one; its log goes on.
    new = fresh.start(stub_spec("adopt-1", port))
    assert new.ref != ref
    wait_answer(port)
    assert [m.handle for m in fresh.list_managed()] == [new]
    log = wait_for(lambda: (t := fresh.logs(new)).count("listening") == 2 and t)
    assert log.count("=== facility: starting replica adopt-1") == 2


def test_stats_are_plausible(runtime: LocalRuntime, port: int) -> None:
    handle = runtime.start(stub_spec("stats-1", port))
    wait_answer(port)
    idle = runtime.stats(handle)
    assert idle is not None
    assert 5 << 20 < idle.memory_bytes < 1 << 30
    assert 0 <= idle.cpu_percent < 50
    get_json(port, "/Burn?s=2.5")
    time.sleep(0.1)
    runtime.stats(handle)
    samples = []
    for _ in range(3):  # the machine may be shared: the best of three
        time.sleep(0.6)
        samples.append(runtime.stats(handle))
    busiest = max(s.cpu_percent for s in samples if s is not None)
    assert busiest > 25, samples


def test_stop_escalates_to_sigkill(runtime: LocalRuntime, port: int) -> None:
    handle = runtime.start(stub_spec("stubborn-1", port, env={"ENGINE_IGNORE_TERM": "1"}))
    wait_answer(port)
    t0 = time.monotonic()
    runtime.stop(handle, timeout_s=0.5)
    elapsed = time.monotonic() - t0
    assert 0.4 < elapsed < 5
    assert port_closed(port)
    assert runtime.inspect(handle).status == "missing"


def test_memory_limit_is_best_effort(runtime: LocalRuntime) -> None:
    spec = ReplicaSpec(
        name="hog-1",
        labels={},
        command=[sys.executable, "-c", "x = b'x' * (512 << 20)"],
        memory_limit_bytes=128 << 20,
    )
    handle = runtime.start(spec)
    state = wait_for(lambda: (s := runtime.inspect(handle)).status == "exited" and s)
    assert state.exit_code == 1
    assert "MemoryError" in state.detail


def test_environment_is_the_specs_not_the_facilitys(
    runtime: LocalRuntime, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/facility")
    handle = runtime.start(stub_spec("env-1", port, env={"FOO": "bar"}, gpu_device_ids=("0", "2")))
    wait_answer(port)
    env = get_json(port, "/Env")
    assert env["FOO"] == "bar"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert "DATABASE_URL" not in env
    assert env["PATH"]
    runtime.stop(handle)

    runtime.start(stub_spec("env-2", port))
    wait_answer(port)
    assert get_json(port, "/Env")["CUDA_VISIBLE_DEVICES"] == ""  # no card share, no card


def test_refusals_carry_a_reason(runtime: LocalRuntime, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError_, match="not found"):
        runtime.start(ReplicaSpec(name="x-1", labels={}, command=["no-such-program-xyz"]))
    with pytest.raises(RuntimeError_, match="not found"):
        runtime.start(
            ReplicaSpec(name="x-2", labels={}, command=["./engine"], workdir=str(tmp_path))
        )
    with pytest.raises(RuntimeError_, match="needs a command"):
        runtime.start(ReplicaSpec(name="x-3", labels={}, command=[]))
    with pytest.raises(RuntimeError_, match="invalid replica name"):
        runtime.start(ReplicaSpec(name="Bad_Name", labels={}, command=["true"]))
    with pytest.raises(RuntimeError_, match="working folder"):
        runtime.start(
            ReplicaSpec(name="x-4", labels={}, command=["true"], workdir=str(tmp_path / "nope"))
        )
    assert runtime.list_managed() == []
    assert runtime.is_available() == (True, "")
