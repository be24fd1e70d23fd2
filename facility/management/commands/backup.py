"""Back the facility up into one folder (or a .tar.gz): the database as
Django fixtures (JSON lines, natural keys; works on SQLite and PostgreSQL),
the package store and the event snapshots, with a manifest of checksums.
`manage.py restore --from` puts it back into an empty facility
(docs/backup.md)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand

FORMAT = "facility-backup"
FORMAT_VERSION = 1
DATABASE_FILE = "database.jsonl"
MANIFEST_FILE = "manifest.json"

# Left out of the dump: rebuilt by `migrate` (content types, permissions),
# transient (sessions, the job queue and its results, heartbeats), or
# recreated when the facility starts (django-q2 schedules).
EXCLUDED = [
    "contenttypes",
    "auth.permission",
    "sessions",
    "django_q",
    "facility.heartbeat",
]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_trees() -> dict[str, Path]:
    """The folders a backup carries, by their name inside it."""
    return {
        "packages": Path(settings.PACKAGE_STORE),
        "snapshots": Path(settings.DATA_DIR) / "snapshots",
    }


def path_prefixes() -> dict[str, str]:
    """Where this facility keeps its files; rows hold absolute paths under
    them, which a restore into other folders rewrites."""
    return {
        "package_store": str(settings.PACKAGE_STORE),
        "snapshots": str(Path(settings.DATA_DIR) / "snapshots"),
        "data_dir": str(settings.DATA_DIR),
    }


def applied_migrations() -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)


class Command(TranslatedCommand):
    help = gettext_noop(
        "Back up the database, the package store and the snapshots into a folder "
        "(or a .tar.gz when --out ends so), with a manifest and checksums."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            required=True,
            help=gettext_noop(
                "new or empty folder, or a file name ending in .tar.gz / .tgz / .tar"
            ),
        )
        parser.add_argument(
            "--no-files",
            action="store_true",
            help=gettext_noop("the database only (the package store and snapshots are left out)"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"]).absolute()
        archive = out.name.endswith((".tar.gz", ".tgz", ".tar"))
        if archive:
            if out.exists():
                raise CommandError(_("%(path)s exists; choose a new file name") % {"path": out})
            with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
                folder = Path(scratch) / out.name.split(".")[0]
                manifest = self.write_backup(folder, with_files=not options["no_files"])
                partial = out.with_name(out.name + ".partial")
                gzip = out.name.endswith(("gz", ".tgz"))
                with tarfile.open(partial, "w:gz" if gzip else "w:") as tar:
                    tar.add(folder, arcname=folder.name)
                partial.replace(out)
        else:
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise CommandError(_("%(path)s exists and is not an empty folder") % {"path": out})
            manifest = self.write_backup(out, with_files=not options["no_files"])
        records = sum(manifest["database"]["records"].values())
        self.stdout.write(
            _("backup: %(records)d database records, %(files)d files (%(bytes)d bytes) in %(path)s")
            % {
                "records": records,
                "files": len(manifest["files"]),
                "bytes": sum(f["bytes"] for f in manifest["files"]),
                "path": out,
            }
        )

    def write_backup(self, folder: Path, *, with_files: bool) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        database = folder / DATABASE_FILE
        created_at = timezone.now()
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if connection.vendor == "postgresql" and outermost:
                # one snapshot of every table, whatever commits meanwhile
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            migrations = applied_migrations()
            call_command(
                "dumpdata",
                format="jsonl",
                natural_foreign=True,
                natural_primary=True,
                exclude=EXCLUDED,
                output=str(database),
                verbosity=0,
            )
        records: Counter[str] = Counter()
        with database.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    records[json.loads(line)["model"]] += 1

        files: list[dict[str, Any]] = []
        trees = file_trees() if with_files else {}
        for name, source in trees.items():
            target = folder / "files" / name
            copy_tree(source, target)
            for path in sorted(target.rglob("*")):
                if path.is_symlink():
                    files.append(
                        {
                            "path": path.relative_to(folder).as_posix(),
                            "symlink": os.readlink(path),
                        }
                    )
                elif path.is_file():
                    files.append(
                        {
                            "path": path.relative_to(folder).as_posix(),
                            "bytes": path.stat().st_size,
                            "sha256": file_sha256(path),
                        }
                    )
        for item in files:
            item.setdefault("bytes", 0)

        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": created_at.isoformat(),
            "host": socket.gethostname(),
            "database": {
                "vendor": connection.vendor,
                "file": DATABASE_FILE,
                "sha256": file_sha256(database),
                "bytes": database.stat().st_size,
                "records": dict(sorted(records.items())),
                "excluded": EXCLUDED,
            },
            "migrations": migrations,
            "paths": path_prefixes(),
            "trees": sorted(trees),
            "files": files,
        }
        (folder / MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return manifest
