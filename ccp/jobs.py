"""Background work of /CCP: loading engines (表18) and keeping workloads at
their Replicas (the `ccp` loop of facility/loops.py, and after each create or
scale). Safe to run twice; reconciling is serialised across processes by a
file lock, so two passes never both start the missing pods."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from algorithms import unpack
from algorithms.fetch import DownloadError, downloader_for
from algorithms.jobs import fetch_limits, unpack_limits
from algorithms.manifest import ManifestError, read_manifest
from ccp import actions, conf, kube_nodes
from ccp.backends import get_backend
from ccp.backends.base import BackendError
from ccp.choices import EngineState, FileType
from ccp.models import Engine, Workload

log = logging.getLogger(__name__)


@contextlib.contextmanager
def reconcile_lock() -> Iterator[None]:
    path = conf.engine_store() / "reconcile.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- engines -------------------------------------------------------------------------


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloader_for(url).fetch(url, dest, fetch_limits(), lambda done, total: None)


def _image_tar_of_package(url: str, work: Path) -> Path:
    """Download and unpack an algorithm package (the packages' safe path) and
    find the engine image tar its algo.yaml names."""
    archive = work / "package.archive"
    _download(url, archive)
    content = work / "content"
    unpack.extract(archive, content, unpack_limits())
    archive.unlink()
    manifest, root = read_manifest(content, settings.PACKAGE_MAX_MANIFEST_BYTES)
    if manifest.bin.get("Type") != "image":
        raise ManifestError(
            f"the package's Bin.Type is {manifest.bin.get('Type')!r}: an engine needs 'image'"
        )
    local = manifest.bin.get("LocalUri") or ""
    if local:
        path = (root / local).resolve()
        if not path.is_relative_to(content.resolve()) or not path.is_file():
            raise ManifestError(f"Bin.LocalUri {local!r} is not a file inside the package")
        return path
    remote = manifest.bin.get("RemoteUri") or ""
    if not actions.is_url(remote):
        raise ManifestError(
            "the package names no image file (Bin.LocalUri or an http(s) RemoteUri)"
        )
    path = work / "engine.tar"
    _download(remote, path)
    return path


def load_engine(package_id: str, generation: int) -> None:
    claimed = Engine.objects.filter(
        package_id=package_id, generation=generation, state=EngineState.PENDING
    ).update(state=EngineState.LOADING)
    if not claimed:
        return
    engine = Engine.objects.get(pk=package_id)
    work = conf.engine_store() / package_id / str(generation)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    image, reason = "", ""
    try:
        backend = get_backend()
        if engine.file_type == FileType.FILE_PACKAGE:
            tar = _image_tar_of_package(engine.url, work)
        elif actions.is_url(engine.url):
            tar = work / "engine.tar"
            _download(engine.url, tar)
        else:
            registry = actions.registry_of(engine.url)
            if not conf.pull_allowed(registry):
                raise BackendError(
                    f"pulling from {registry or 'Docker Hub'} is not allowed here "
                    "(setting CCP_PULL_REGISTRIES)"
                )
            image = backend.pull_image(engine.url, conf.registry_auth().get(registry))
        if not image:
            if not unpack.is_docker_image_archive(tar):
                raise ManifestError("the file is not a `docker save` image tar")
            image = backend.load_image(str(tar))
    except DownloadError as error:
        reason = f"download failed: {error}"
    except unpack.UnsafeArchive as error:
        reason = f"archive refused: {error}"
    except (ManifestError, BackendError) as error:
        reason = str(error)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # when no other generation is being loaded
    state = EngineState.FAILED if reason else EngineState.READY
    updated = Engine.objects.filter(
        package_id=package_id, generation=generation, state=EngineState.LOADING
    )
    for row in updated:  # save() so that the history records it
        row.state, row.reason, row.image = state, reason, image
        row.save()
    log.info("engine %s: %s %s", package_id, state, reason or image)


# -- workloads -----------------------------------------------------------------------


def _note(workload_id: int, reason: str) -> None:
    Workload.objects.filter(pk=workload_id).exclude(reason=reason).update(reason=reason)


def apply_workload(workload_id: int) -> None:
    workload = Workload.objects.filter(pk=workload_id).first()
    if workload is None:
        return
    try:
        with reconcile_lock():
            reason = get_backend(workload.backend).apply(actions.spec_of(workload))
    except BackendError as error:
        reason = str(error)
    _note(workload.pk, reason)


def reconcile_workloads() -> dict[str, int]:
    """One pass over every workload of every backend in use."""
    counts = {"workloads": 0, "unmet": 0}
    backends = set(Workload.objects.values_list("backend", flat=True)) | {conf.backend_name()}
    for name in sorted(backends):
        workloads = list(Workload.objects.filter(backend=name))
        try:
            backend = get_backend(name)
            available, _ = backend.is_available()
            if not available:
                continue
            with reconcile_lock():
                reasons = backend.reconcile([actions.spec_of(w) for w in workloads])
        except BackendError as error:
            log.warning("ccp backend %s: %s", name, error)
            continue
        for workload in workloads:
            reason = reasons.get((workload.namespace, workload.name), "")
            _note(workload.pk, reason)
            counts["workloads"] += 1
            counts["unmet"] += bool(reason)
    kube_nodes.sample()  # the cluster's nodes in the monitors, when it serves metrics
    return counts
