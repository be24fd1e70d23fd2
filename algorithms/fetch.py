"""Downloaders: fetch a URL to a file on disk, streaming, with a size limit,
an MD5 computed on the way, resume after transient failures and progress
reports. One small interface, a registry keyed by URL scheme."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import HTTPError as TransportError

from facility.netpolicy import check_url_resolved

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Progress reports are throttled: a database write per chunk would cost more
# than the download on a fast link.
REPORT_EVERY_S = 1.0

Progress = Callable[[int, "int | None"], None]


class DownloadError(Exception):
    """`permanent` failures are not retried (404, too large, bad scheme)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Cancelled(Exception):
    """The transfer was replaced or deleted while it ran."""


@dataclass(frozen=True)
class Fetched:
    size: int
    md5: str


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    connect_timeout_s: float
    read_timeout_s: float
    attempts: int
    backoff_s: float
    verify_tls: bool = True


class Downloader(Protocol):
    def fetch(self, url: str, dest: Path, limits: FetchLimits, progress: Progress) -> Fetched: ...


def _md5_of_existing(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest, size


class HttpDownloader:
    """http:// and https:// with requests. A transfer cut short is resumed
    with a Range request when the server honours it, else started over."""

    def __init__(self, session_factory: Callable[[], requests.Session] = requests.Session) -> None:
        self.session_factory = session_factory

    def fetch(self, url: str, dest: Path, limits: FetchLimits, progress: Progress) -> Fetched:
        last_error = "no attempt made"
        for attempt in range(1, limits.attempts + 1):
            try:
                return self._attempt(url, dest, limits, progress)
            except DownloadError as error:
                if error.permanent:
                    raise
                last_error = str(error)
            if attempt < limits.attempts:
                delay = limits.backoff_s * (2 ** (attempt - 1))
                log.info(
                    "download of %s failed (%s); retry %d in %.1fs", url, last_error, attempt, delay
                )
                time.sleep(delay)
        raise DownloadError(
            f"gave up after {limits.attempts} attempts: {last_error}", permanent=False
        )

    def _attempt(self, url: str, dest: Path, limits: FetchLimits, progress: Progress) -> Fetched:
        try:
            check_url_resolved(url)
        except PermissionError as error:
            raise DownloadError(str(error), permanent=True) from None
        have = dest.stat().st_size if dest.exists() else 0
        # the file's own bytes: a server's on-the-fly compression would change
        # the MD5 and the byte offsets a resume counts on
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with self.session_factory() as session:
                response = session.get(
                    url,
                    headers=headers,
                    stream=True,
                    timeout=(limits.connect_timeout_s, limits.read_timeout_s),
                    verify=limits.verify_tls,
                    allow_redirects=True,
                )
                with response:
                    return self._receive(response, dest, have, limits, progress)
        except requests.exceptions.SSLError as error:
            raise DownloadError(f"TLS error: {error}", permanent=True) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise DownloadError(_connection_reason(error), permanent=False) from None
        except requests.exceptions.RequestException as error:
            raise DownloadError(f"download failed: {error}", permanent=False) from None

    def _receive(
        self,
        response: requests.Response,
        dest: Path,
        have: int,
        limits: FetchLimits,
        progress: Progress,
    ) -> Fetched:
        status = response.status_code
        if status == 416 and have:
            # our partial file is already whole (or the server changed it): start over
            dest.unlink(missing_ok=True)
            raise DownloadError("server refused the resume range", permanent=False)
        if status >= 500 or status == 429:
            raise DownloadError(f"server answered HTTP {status}", permanent=False)
        if status >= 400:
            raise DownloadError(f"server answered HTTP {status} {response.reason}", permanent=True)
        if status not in (200, 206):
            raise DownloadError(f"unexpected HTTP {status}", permanent=True)

        resuming = status == 206 and have > 0
        if resuming:
            digest, size = _md5_of_existing(dest)
        else:
            digest, size = hashlib.md5(usedforsecurity=False), 0
        length = response.headers.get("Content-Length")
        total = (size + int(length)) if length and length.isdigit() else None
        if total is not None and total > limits.max_bytes:
            raise DownloadError(
                f"file is {total} bytes, over the limit of {limits.max_bytes} bytes",
                permanent=True,
            )
        progress(size, total)
        reported = time.monotonic()
        with dest.open("ab" if resuming else "wb") as handle:
            try:
                # raw bytes as stored: a `Content-Encoding: gzip` on a .tar.gz
                # is not undone (iter_content would, and the MD5 would differ)
                for chunk in response.raw.stream(CHUNK, decode_content=False):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise DownloadError(
                            f"file is larger than the limit of {limits.max_bytes} bytes",
                            permanent=True,
                        )
                    handle.write(chunk)
                    digest.update(chunk)
                    if time.monotonic() - reported >= REPORT_EVERY_S:
                        progress(size, total)
                        reported = time.monotonic()
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                TransportError,
            ) as error:
                raise DownloadError(
                    f"connection lost after {size} bytes: {error}", permanent=False
                ) from None
        if total is not None and size < total:
            raise DownloadError(f"connection closed after {size} of {total} bytes", permanent=False)
        progress(size, size)
        return Fetched(size=size, md5=digest.hexdigest())


def _connection_reason(error: Exception) -> str:
    text = str(error)
    for needle, reason in (
        ("Name or service not known", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return f"unreachable: {reason}"
    return f"unreachable: {text[:300]}"


DOWNLOADERS: dict[str, Downloader] = {"http": HttpDownloader(), "https": HttpDownloader()}


def downloader_for(url: str) -> Downloader:
    scheme = urlsplit(url).scheme.lower()
    downloader = DOWNLOADERS.get(scheme)
    if downloader is None:
        raise DownloadError(f"URL scheme {scheme or '(none)'!r} is not supported", permanent=True)
    return downloader
