"""The `docker` runtime against a real Docker engine (no mocks).

The module fixture starts the engine with scripts/ensure-docker.sh and builds
(or loads from .cache/images) the python3-only base image with
scripts/build-base-image.sh. Without an engine the tests are skipped with the
reason; with CI=true that is a failure instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.base import (
    LABEL_MANAGED,
    LABEL_REPLICA,
    LABEL_SERVICE,
    Mount,
    ReplicaHandle,
    ReplicaSpec,
    RuntimeError_,
)
from services.runtime.docker import DockerRuntime
from tests.support.docker import built_image, docker_cli, require_docker

from .conftest import STUB, get_json, port_closed, wait_answer, wait_for

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[3]
RUN = uuid.uuid4().hex[:8]  # this run's containers carry facility.test=RUN
TEST_LABEL = "facility.test"


@pytest.fixture(scope="module")
def base_image() -> Iterator[str]:
    require_docker()
    t0 = time.monotonic()
    image = built_image("base")
    print(f"\nbase image {image} ready in {time.monotonic() - t0:.1f} s")
    yield image
    leftovers = docker_cli("ps", "-aq", "--filter", f"label={TEST_LABEL}={RUN}").stdout.split()
    if leftovers:
        docker_cli("rm", "-f", *leftovers, check=False)


@pytest.fixture
def runtime(base_image: str) -> Iterator[DockerRuntime]:
    rt = DockerRuntime()
    yield rt
    for item in DockerRuntime().list_managed():
        if item.labels.get(TEST_LABEL) == RUN:
            rt.stop(item.handle, timeout_s=1)


def stub_spec(image: str, name: str, port: int, **kw: object) -> ReplicaSpec:
    env = {"ENGINE_PORT": str(port)}
    env.update(kw.pop("env", {}))  # type: ignore[arg-type]
    return ReplicaSpec(
        name=f"{name}-{RUN}",
        labels={LABEL_SERVICE: "svc-1", TEST_LABEL: RUN},
        # Relative: the host folder in workdir becomes the mount's target.
        command=["python3", "engine_stub.py"],
        workdir=str(STUB.parent),
        env=env,
        image=image,
        port=port,
        mounts=(Mount(source=str(STUB.parent), target="/stub", read_only=True),),
        **kw,  # type: ignore[arg-type]
    )


def exited(rt: DockerRuntime, handle: ReplicaHandle, timeout: float = 20) -> object:
    return wait_for(lambda: (s := rt.inspect(handle)).status == "exited" and s, timeout)


def test_start_answers_on_localhost_logs_and_stop_is_idempotent(
    runtime: DockerRuntime, base_image: str, port: int
) -> None:
    t0 = time.monotonic()
    handle = runtime.start(stub_spec(base_image, "web", port, cpu_limit=0.5))
    started = time.monotonic() - t0
    body = wait_answer(port)
    print(f"docker start: {started:.2f} s, start -> answer: {time.monotonic() - t0:.2f} s")
    assert body["Port"] == port
    assert handle.runtime == "docker"
    state = runtime.inspect(handle)
    assert state.status == "running" and state.restart_count == 0
    assert state.started_at and abs(state.started_at - time.time()) < 60
    attrs = docker_cli(
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.Init}} "
        "{{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}",
        handle.ref,
    )
    assert attrs.stdout.split() == ["host", "true", "500000000", "no"]
    logs = wait_for(lambda: "hello on stderr" in (t := runtime.logs(handle)) and t)
    assert f"engine-stub listening on 127.0.0.1:{port}" in logs

    t0 = time.monotonic()
    runtime.stop(handle, timeout_s=5)
    assert time.monotonic() - t0 < 4  # init=True: SIGTERM reaches the engine
    assert port_closed(port)
    assert runtime.inspect(handle).status == "missing"
    runtime.stop(handle)  # idempotent
    assert runtime.logs(handle) == ""
    assert runtime.stats(handle) is None
    assert docker_cli("ps", "-aq", "--filter", f"name={handle.ref}").stdout.strip() == ""


def test_vanished_container_is_missing(runtime: DockerRuntime, base_image: str, port: int) -> None:
    handle = runtime.start(stub_spec(base_image, "gone", port))
    docker_cli("rm", "-f", handle.ref)
    state = runtime.inspect(handle)
    assert state.status == "missing"
    runtime.stop(handle)
    assert runtime.logs(handle) == "" and runtime.stats(handle) is None
    assert runtime.inspect(ReplicaHandle(runtime="docker", ref="0" * 64)).status == "missing"


def test_kill_9_shows_exited_with_code(runtime: DockerRuntime, base_image: str, port: int) -> None:
    handle = runtime.start(stub_spec(base_image, "crash", port))
    wait_answer(port)
    docker_cli("kill", "--signal", "KILL", handle.ref)
    state = exited(runtime, handle)
    assert state.exit_code == 137, state  # type: ignore[attr-defined]
    assert "SIGKILL" in state.detail  # type: ignore[attr-defined]
    assert "listening" in runtime.logs(handle)
    assert runtime.stats(handle) is None
    runtime.stop(handle)
    assert runtime.inspect(handle).status == "missing"


def test_readoption_and_no_duplicate(runtime: DockerRuntime, base_image: str, port: int) -> None:
    spec = stub_spec(base_image, "adopt", port)
    handle = runtime.start(spec)
    wait_answer(port)

    fresh = DockerRuntime()  # a restarted facility
    mine = [m for m in fresh.list_managed() if m.labels.get(TEST_LABEL) == RUN]
    assert [m.handle for m in mine] == [handle]
    [item] = mine
    assert item.state.status == "running"
    assert item.labels[LABEL_MANAGED] == "1"
    assert item.labels[LABEL_REPLICA] == spec.name
    assert item.labels[LABEL_SERVICE] == "svc-1"

    assert fresh.start(spec) == handle
    assert docker_cli("ps", "-aq", "--filter", f"name={spec.name}").stdout.split() == [
        handle.ref[:12]
    ]
    # After a crash the same name starts a new container in place of the old.
    docker_cli("kill", handle.ref)
    exited(fresh, handle)
    assert [m.state.status for m in fresh.list_managed() if m.handle == handle] == ["exited"]
    new = fresh.start(spec)
    assert new != handle
    wait_answer(port)
    assert fresh.inspect(handle).status == "missing"


def test_memory_limit_oom_kill(runtime: DockerRuntime, base_image: str) -> None:
    spec = ReplicaSpec(
        name=f"hog-{RUN}",
        labels={TEST_LABEL: RUN},
        command=["python3", "-c", "x = b'x' * (256 << 20); import time; time.sleep(30)"],
        image=base_image,
        memory_limit_bytes=64 << 20,
    )
    handle = runtime.start(spec)
    state = exited(runtime, handle)
    assert "OOMKilled" in state.detail, state  # type: ignore[attr-defined]
    assert state.exit_code == 137  # type: ignore[attr-defined]


def test_stats_are_plausible(runtime: DockerRuntime, base_image: str, port: int) -> None:
    handle = runtime.start(stub_spec(base_image, "stats", port, memory_limit_bytes=256 << 20))
    wait_answer(port)
    idle = runtime.stats(handle)
    assert idle is not None
    assert 1 << 20 < idle.memory_bytes < 256 << 20
    assert 0 <= idle.cpu_percent < 50
    get_json(port, "/Burn?s=6")
    # The machine may be shared: the best of three samples of a busy thread.
    samples = [runtime.stats(handle) for _ in range(3)]
    busiest = max(s.cpu_percent for s in samples if s is not None)
    assert busiest > 25, samples


def test_load_image_of_a_saved_tar(base_image: str, tmp_path: Path) -> None:
    tag = f"facility/test-load:{RUN}"
    tar = tmp_path / "image.tar"
    docker_cli("tag", base_image, tag)
    try:
        docker_cli("save", "-o", str(tar), tag)
        docker_cli("rmi", tag)
        runtime = DockerRuntime()
        assert not runtime.has_image(tag)
        assert runtime.load_image(str(tar)) == [tag]
        assert runtime.has_image(tag)
        with pytest.raises(RuntimeError_, match="docker load"):
            (tmp_path / "junk.tar").write_bytes(b"not a tar")
            runtime.load_image(str(tmp_path / "junk.tar"))
    finally:
        docker_cli("rmi", tag, check=False)


def test_refusals_carry_a_reason(runtime: DockerRuntime, base_image: str, port: int) -> None:
    spec = stub_spec("facility/no-such-image:1", "noimg", port)
    with pytest.raises(RuntimeError_, match="not in the Docker engine"):
        runtime.start(spec)
    with pytest.raises(RuntimeError_, match="needs an image"):
        runtime.start(stub_spec("", "noimg", port))
    with pytest.raises(RuntimeError_, match="invalid replica name"):
        runtime.start(stub_spec(base_image, "Bad_Name", port))
    assert docker_cli("ps", "-aq", "--filter", f"name=noimg-{RUN}").stdout.strip() == ""


def test_unreachable_engine_gives_reasons(tmp_path: Path) -> None:
    """No engine needed: a socket nobody serves."""
    rt = DockerRuntime(base_url=f"unix://{tmp_path}/nobody.sock")
    ok, why = rt.is_available()
    assert not ok and "not reachable" in why and "nobody.sock" in why
    state = rt.inspect(ReplicaHandle(runtime="docker", ref="abc"))
    assert state.status == "missing" and "not reachable" in state.detail
    with pytest.raises(RuntimeError_, match="not reachable"):
        rt.list_managed()


def test_gpu_request_without_nvidia_runtime_is_refused_cleanly(
    runtime: DockerRuntime, base_image: str, port: int
) -> None:
    if "nvidia" in docker_cli("info", "--format", "{{json .Runtimes}}").stdout:
        pytest.skip("this engine has the NVIDIA runtime; the refusal cannot be shown")
    spec = stub_spec(base_image, "gpu", port, gpu_device_ids=("0",))
    with pytest.raises(RuntimeError_, match="nvidia"):
        runtime.start(spec)
    assert docker_cli("ps", "-aq", "--filter", f"name={spec.name}").stdout.strip() == ""


def test_containers_are_hardened(runtime: DockerRuntime, base_image: str, port: int) -> None:
    handle = runtime.start(stub_spec(base_image, "hard", port))
    wait_answer(port)
    attrs = docker_cli(
        "inspect",
        "--format",
        "{{.HostConfig.Privileged}} {{json .HostConfig.CapDrop}} "
        "{{json .HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.PidsLimit}}",
        handle.ref,
    ).stdout.split()
    assert attrs == ["false", '["ALL"]', '["no-new-privileges:true"]', "true", "1024"]
    # the engine still runs and answers with a read-only root and no capabilities
    assert get_json(port)["Port"] == port
    runtime.stop(handle, timeout_s=2)
