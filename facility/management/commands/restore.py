"""Restore a backup made by `manage.py backup` into an EMPTY facility: check
every checksum, migrate the database, refuse when it already holds data,
load the records (paths rewritten to this facility's folders), then copy the
package store and the snapshots back (docs/backup.md)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand
from facility.management.commands.backup import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    file_sha256,
    file_trees,
    path_prefixes,
)


def rewrite(value: Any, prefixes: list[tuple[str, str]]) -> Any:
    """`value` with every string under an old folder moved to the new one."""
    if isinstance(value, str):
        for old, new in prefixes:
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
        return value
    if isinstance(value, list):
        return [rewrite(item, prefixes) for item in value]
    if isinstance(value, dict):
        return {key: rewrite(item, prefixes) for key, item in value.items()}
    return value


class Command(TranslatedCommand):
    help = gettext_noop(
        "Restore a backup (folder or .tar.gz from `manage.py backup`) into an empty facility."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="source", required=True, help=gettext_noop("backup folder or archive")
        )
        parser.add_argument(
            "--no-files", action="store_true", help=gettext_noop("restore the database only")
        )
        parser.add_argument(
            "--allow-migration-mismatch",
            action="store_true",
            help=gettext_noop(
                "load even when this release's migrations differ from the backup's "
                "(normally: restore with the release that made it, then upgrade)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = Path(options["source"]).absolute()
        if not source.exists():
            raise CommandError(_("%(path)s does not exist") % {"path": source})
        if source.is_dir():
            self.restore(source, options)
            return
        with tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(source) as tar:
                tar.extractall(scratch, filter="data")
            found = [p.parent for p in Path(scratch).glob(f"*/{MANIFEST_FILE}")]
            if len(found) != 1:
                raise CommandError(
                    _("%(path)s: no single backup folder with %(manifest)s")
                    % {"path": source, "manifest": MANIFEST_FILE}
                )
            self.restore(found[0], options)

    # --- steps -------------------------------------------------------------

    def restore(self, folder: Path, options: dict[str, Any]) -> None:
        manifest = self.read_manifest(folder)
        self.verify(folder, manifest)
        self.check_backup_migrations(manifest, allow=options["allow_migration_mismatch"])
        with_files = not options["no_files"]
        if with_files:
            self.check_empty_folders(manifest)
        call_command("migrate", interactive=False, verbosity=0)
        self.check_empty_database(manifest)
        loaded = self.load(folder, manifest)
        copied = self.copy_files(folder, manifest) if with_files else 0
        self.stdout.write(
            _(
                "restore: %(records)d database records and %(files)d files from %(path)s "
                "(backup of %(created)s)"
            )
            % {
                "records": loaded,
                "files": copied,
                "path": folder,
                "created": manifest["created_at"],
            }
        )

    def read_manifest(self, folder: Path) -> dict[str, Any]:
        path = folder / MANIFEST_FILE
        if not path.is_file():
            raise CommandError(
                _("%(path)s: no %(manifest)s; not a backup")
                % {"path": folder, "manifest": MANIFEST_FILE}
            )
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise CommandError(
                _(
                    "%(path)s: backup format %(format)r version %(version)r; "
                    "this release reads %(ours)s"
                )
                % {
                    "path": folder,
                    "format": manifest.get("format"),
                    "version": manifest.get("format_version"),
                    "ours": f"{FORMAT} {FORMAT_VERSION}",
                }
            )
        return manifest

    def verify(self, folder: Path, manifest: dict[str, Any]) -> None:
        bad: list[str] = []
        database = folder / manifest["database"]["file"]
        if not database.is_file() or file_sha256(database) != manifest["database"]["sha256"]:
            bad.append(manifest["database"]["file"])
        for item in manifest["files"]:
            path = folder / item["path"]
            if "symlink" in item:
                if not path.is_symlink() or os.readlink(path) != item["symlink"]:
                    bad.append(item["path"])
            elif not path.is_file() or file_sha256(path) != item["sha256"]:
                bad.append(item["path"])
        if bad:
            raise CommandError(
                _("%(count)d file(s) of the backup are missing or damaged (checksum): %(files)s")
                % {"count": len(bad), "files": ", ".join(bad[:10])}
            )

    def check_backup_migrations(self, manifest: dict[str, Any], *, allow: bool) -> None:
        loader = MigrationLoader(None, ignore_no_migrations=True)
        known = {app for app, _ in loader.disk_migrations}
        ours: dict[str, list[str]] = {}
        for app, name in sorted(loader.disk_migrations):
            ours.setdefault(app, []).append(name)
        theirs = {app: names for app, names in manifest["migrations"].items() if app in known}
        unknown = sorted(
            f"{app}.{name}"
            for app, names in theirs.items()
            for name in names
            if name not in ours.get(app, [])
        )
        if unknown:
            raise CommandError(
                _(
                    "the backup comes from a newer release (migrations this one lacks: "
                    "%(migrations)s); restore it with that release"
                )
                % {"migrations": ", ".join(unknown[:10])}
            )
        missing = sorted(
            f"{app}.{name}"
            for app, names in ours.items()
            for name in names
            if name not in theirs.get(app, [])
        )
        if missing and not allow:
            raise CommandError(
                _(
                    "the backup comes from an older release (it lacks migrations "
                    "%(migrations)s): restore it with the release that made it, then upgrade "
                    "(docs/upgrade.md), or pass --allow-migration-mismatch"
                )
                % {"migrations": ", ".join(missing[:10])}
            )

    def check_empty_folders(self, manifest: dict[str, Any]) -> None:
        for name, target in file_trees().items():
            if name in manifest["trees"] and target.is_dir() and any(target.iterdir()):
                raise CommandError(
                    _("%(path)s is not empty; restore needs an empty facility") % {"path": target}
                )

    def check_empty_database(self, manifest: dict[str, Any]) -> None:
        busy = []
        for label in manifest["database"]["records"]:
            model = apps.get_model(label)
            if model._default_manager.using(connection.alias).exists():
                busy.append(label)
        if busy:
            raise CommandError(
                "the database already holds data (" + ", ".join(busy[:10]) + "); "
                "restore needs an empty facility: a new database and FACILITY_DATA_DIR"
            )

    def load(self, folder: Path, manifest: dict[str, Any]) -> int:
        here = path_prefixes()
        pairs = [
            (manifest["paths"][key], here[key])
            for key in ("package_store", "snapshots", "data_dir")
            if manifest["paths"].get(key) and manifest["paths"][key] != here[key]
        ]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        count = 0
        with tempfile.TemporaryDirectory() as scratch:
            fixture = Path(scratch) / "restore.jsonl"
            with (
                (folder / manifest["database"]["file"]).open(encoding="utf-8") as source,
                fixture.open("w", encoding="utf-8") as target,
            ):
                for line in source:
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if pairs:
                        record["fields"] = rewrite(record["fields"], pairs)
                    target.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
            if count:
                call_command("loaddata", str(fixture), verbosity=0)
        return count

    def copy_files(self, folder: Path, manifest: dict[str, Any]) -> int:
        copied = 0
        for name, target in file_trees().items():
            if name not in manifest["trees"]:
                continue
            source = folder / "files" / name
            target.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            copied += sum(
                1 for item in manifest["files"] if item["path"].startswith(f"files/{name}/")
            )
        return copied
