"""Backup and restore (docs/backup.md): a populated facility is backed up
and restored into an empty one (its own database and data folder, in a
subprocess) with every package, service, task, event, delivery and history
row intact and every file identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from algorithms.choices import PackageStatus
from algorithms.models import AlgoFilePackage
from services.models import AlgoService
from tasks.choices import DeliveryState, RestartPolicy, TaskStatus
from tasks.models import AlgoTask, Delivery, TaskEvent, TaskEventType

from .conftest import ScratchFacility

# what the comparison covers: the domain tables and their history
COMPARED = [
    "algorithms",
    "services",
    "tasks",
    "compute",
    "facility.platformclient",
    "auth.user",
]
SNAPSHOT_BYTES = bytes(range(256)) * 40


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): _sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def populate() -> dict[str, Any]:
    store = Path(settings.PACKAGE_STORE)
    snapshots = Path(settings.DATA_DIR) / "snapshots"
    packages = []
    for number in (1, 2):
        package_id = f"pkg-{number}"
        content = store / package_id / "g1" / "content"
        (content / "bin").mkdir(parents=True)
        (content / "algo.yaml").write_text(f"name: alpha-{number}\nversion: '1.{number}'\n")
        (content / "bin" / "engine.py").write_text("print('engine')\n")
        (content / "model.bin").write_bytes(bytes(range(256)) * (100 * number))
        (content / "bin" / "run").symlink_to("engine.py")
        package = AlgoFilePackage.objects.create(
            package_id=package_id,
            url=f"http://127.0.0.1:9/{package_id}.tar.gz",
            md5="0" * 32,
            name=f"alpha-{number}",
            version=f"1.{number}",
            tags=["person", "门禁"],
            bin={"LocalUri": "bin/engine.py"},
            content_dir=str(content),
            unpacked_bytes=25600 * number,
        )
        package.status = PackageStatus.COMPLETE
        package.save()  # a second history row
        packages.append(package)
    service = AlgoService.objects.create(
        service_id="svc-1",
        package=packages[0],
        replicas=2,
        xpu_type="CPU",
        runtime="local",
        env=[{"Name": "MODE", "Value": "fast"}],
    )
    tasks = []
    for number in range(3):
        task = AlgoTask.objects.create(
            task_id=f"task-{number}",
            restart_policy=RestartPolicy.ALWAYS,
            task_info={"Labels": {"AlgoCaBinName": "alpha-1"}, "Number": number},
            algo_name="alpha-1",
            stream_url=f"rtsp://127.0.0.1:8554/cam{number}",
            requested_service=service if number else None,
            service=service,
            status=TaskStatus.RUNNING if number else TaskStatus.PENDING,
        )
        TaskEventType.objects.create(task=task, event_id="intrusion")
        tasks.append(task)
    now = timezone.now()
    for number in range(4):
        folder = snapshots / now.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        snap = folder / f"event-{number}.jpg"
        snap.write_bytes(SNAPSHOT_BYTES + bytes([number]))
        event = TaskEvent.objects.create(
            event_key=f"key-{number}",
            task_id=tasks[number % 3].task_id,
            event_id="intrusion",
            event_time=now - timedelta(seconds=number),
            service_id="svc-1",
            package_id="pkg-1",
            document={"EventID": "intrusion", "Objects": [{"Score": 0.5 + number / 10}]},
            snapshot_path=str(snap),
            snapshot_bytes=snap.stat().st_size,
        )
        Delivery.objects.create(
            event=event,
            target="http://127.0.0.1:9/results",
            state=DeliveryState.DELIVERED if number % 2 else DeliveryState.PENDING,
            attempts=number,
        )
    return {"packages": 2, "services": 1, "tasks": 3, "events": 4}


def _dump_here(tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "here.jsonl"
    call_command(
        "dumpdata",
        *COMPARED,
        format="jsonl",
        natural_foreign=True,
        natural_primary=True,
        output=str(out),
        verbosity=0,
    )
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _dump_there(scratch: ScratchFacility, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "there.jsonl"
    scratch.manage(
        "dumpdata",
        *COMPARED,
        "--format=jsonl",
        "--natural-foreign",
        "--natural-primary",
        f"--output={out}",
    )
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _canonical(records: list[dict[str, Any]], replace: list[tuple[str, str]]) -> list[str]:
    lines = []
    for record in records:
        text = json.dumps(record, sort_keys=True, ensure_ascii=False)
        for old, new in replace:
            text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
        lines.append(text)
    return sorted(lines)


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "tar.gz"])
def test_backup_restores_into_an_empty_facility(
    tmp_path: Path, scratch_facility: ScratchFacility, platform_token: str, archive: bool
) -> None:
    counts = populate()
    store, snapshots = Path(settings.PACKAGE_STORE), Path(settings.DATA_DIR) / "snapshots"
    out = tmp_path / ("backup.tar.gz" if archive else "backup")
    call_command("backup", out=str(out))
    assert out.exists()

    if not archive:
        manifest = json.loads((out / "manifest.json").read_text())
        records = manifest["database"]["records"]
        assert records["algorithms.algofilepackage"] == counts["packages"]
        assert records["services.algoservice"] == counts["services"]
        assert records["tasks.algotask"] == counts["tasks"]
        assert records["tasks.taskevent"] == counts["events"]
        assert records["tasks.delivery"] == 4
        assert records["algorithms.historicalalgofilepackage"] == 4
        assert records["tasks.historicalalgotask"] == 3
        assert "contenttypes.contenttype" not in records
        listed = {item["path"] for item in manifest["files"]}
        assert "files/packages/pkg-1/g1/content/model.bin" in listed
        assert "files/packages/pkg-1/g1/content/bin/run" in listed  # the symlink
        assert len([p for p in listed if p.startswith("files/snapshots/")]) == 4

    output = scratch_facility.manage("restore", "--from", str(out))
    assert "restore:" in output

    # every row intact, its paths moved to the new facility's folders
    new_data = scratch_facility.data_dir
    replace = [
        (str(store), str(new_data / "packages")),
        (str(snapshots), str(new_data / "snapshots")),
    ]
    here = _canonical(_dump_here(tmp_path), replace)
    there = _canonical(_dump_there(scratch_facility, tmp_path), [])
    assert len(there) == len(here)
    assert there == here

    # and every file identical
    assert _tree(new_data / "packages") == _tree(store)
    assert _tree(new_data / "snapshots") == _tree(snapshots)
    link = new_data / "packages" / "pkg-1" / "g1" / "content" / "bin" / "run"
    assert link.is_symlink() and link.read_text() == "print('engine')\n"

    # the restored facility reads them through its own paths and the API works
    checked = scratch_facility.python(
        "import django, json; django.setup()\n"
        "from pathlib import Path\n"
        "from tasks.models import TaskEvent\n"
        "from algorithms.models import AlgoFilePackage\n"
        "from facility.models import PlatformClient\n"
        "print(json.dumps({\n"
        " 'snapshots': sorted(Path(e.snapshot_path).stat().st_size"
        " for e in TaskEvent.objects.all()),\n"
        " 'content': [Path(p.content_dir, 'algo.yaml').is_file()"
        " for p in AlgoFilePackage.objects.all()],\n"
        " 'clients': PlatformClient.objects.count(),\n"
        "}))\n"
    )
    state = json.loads(checked)
    assert state["snapshots"] == sorted(len(SNAPSHOT_BYTES) + 1 for _ in range(4))
    assert state["content"] == [True, True]
    assert state["clients"] == 1


def test_restore_refuses_a_facility_with_data(
    tmp_path: Path, scratch_facility: ScratchFacility
) -> None:
    populate()
    out = tmp_path / "backup"
    call_command("backup", out=str(out), no_files=True)
    scratch_facility.manage("restore", "--from", str(out))
    again = scratch_facility.manage("restore", "--from", str(out), check=False)
    assert "restore needs an empty facility" in again


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    populate()
    out = tmp_path / "backup"
    call_command("backup", out=str(out))
    victim = next((out / "files" / "snapshots").rglob("*.jpg"))
    victim.write_bytes(b"bit rot")
    with pytest.raises(CommandError, match="damaged"):
        call_command("restore", "--from", str(out))
    shutil.rmtree(out / "files")
    with pytest.raises(CommandError, match="missing or damaged"):
        call_command("restore", "--from", str(out))


def test_backup_refuses_a_folder_with_content(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("backup", out=str(tmp_path / "busy"))
