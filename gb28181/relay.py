"""The engines' way into GB/T 28181 channels: a small HTTP relay served by
`manage.py run_gb28181` (docs/gb28181.md).

Engines only open URLs (PyAV), and a camera only streams to the platform that
INVITEd it, so a task's `gb28181://<DeviceID>/<ChannelID>` is sent to its
engine as `http://<relay>/gb28181/<DeviceID>/<ChannelID>`. The first GET of a
channel INVITEs it through the SIP server; the MPEG-PS carried by its RTP is
streamed, unchanged, as the chunked body of every GET of that channel (one
INVITE however many tasks watch it); when the last reader goes (the task
was paused, deleted or moved: its engine closes the input) the relay sends
BYE. FFmpeg's probe recognises the PS by its pack headers, so engines need
no format hint.

The facility side (web, workers) only rewrites URLs and words failures: the
app registers `engine_url` and `explain` as the `gb28181` stream source of
tasks/streams.py. It never talks SIP itself."""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import connections

from gb28181.models import Channel, Device

log = logging.getLogger(__name__)

# RTP payloads that start an MPEG-PS unit (pack header, system header, PSM or
# a video PES), and the parameter sets that open a GOP: H.264 SPS (any
# nal_ref_idc) or H.265 VPS. Emulation prevention keeps 00 00 01 out of NAL
# payloads, so finding one is reliable.
_UNIT_STARTS = {0xBA, 0xBB, 0xBC, *range(0xE0, 0xF0)}
_GOP_MARKS = (
    b"\x00\x00\x01\x67",
    b"\x00\x00\x01\x47",
    b"\x00\x00\x01\x27",
    b"\x00\x00\x01\x40\x01",
)
# How long a GET waits for the device to answer the INVITE (the SIP
# transaction itself gives up after 16 s).
ANSWER_TIMEOUT_S = 20.0
# A playing channel that sends nothing for this long is dropped (BYE); its
# readers' bodies end, and engines reconnect, which INVITEs again.
STALL_S = 10.0
# A write to a reader that blocks this long ends it
WRITE_TIMEOUT_S = 30.0
# RTP payloads (~1.4 kB) queued for one reader before it counts as too slow
MAX_QUEUED = 16384
# The current GOP is kept (up to this size) for readers that join a running
# feed: they start at its parameter sets, decodable from the first byte.
GOP_MAX_BYTES = 8 * 1024 * 1024
_PATH = re.compile(r"^/gb28181/(\d{20})/(\d{20})/?$")
_ID20 = re.compile(r"^\d{20}$")


# --- the facility side: what engines are sent ----------------------------------


def parse_url(url: str) -> tuple[str, str, bool] | None:
    """(DeviceID, ChannelID, RTP over TCP) of a gb28181:// URL; None for any
    other scheme. The IDs are not checked here (see `channel_problem`)."""
    if not url[:10].lower().startswith("gb28181://"):
        return None
    parts = urlsplit(url)
    tcp = parse_qs(parts.query).get("transport", [""])[0].lower() == "tcp"
    return parts.netloc, parts.path.strip("/"), tcp


def relay_url(device_id: str, channel_id: str, tcp: bool = False) -> str:
    host, port = settings.GB28181_RELAY_HOST, settings.GB28181_RELAY_PORT
    url = f"http://{host}:{port}/gb28181/{device_id}/{channel_id}"
    return url + ("?transport=tcp" if tcp else "")


def engine_url(url: str) -> str:
    """The URL an engine opens for a task's stream URL."""
    parsed = parse_url(url)
    return relay_url(*parsed) if parsed is not None else url


def channel_problem(device_id: str, channel_id: str) -> str:
    """Why a channel cannot be played, as far as the database knows; ""
    when nothing is known against it."""
    if not (_ID20.match(device_id) and _ID20.match(channel_id)):
        return "not a gb28181://<20-digit DeviceID>/<20-digit ChannelID> URL"
    device = Device.objects.filter(device_id=device_id).first()
    if device is None:
        return f"GB/T 28181 device {device_id} has never registered with the facility"
    if not device.online:
        return f"GB/T 28181 device {device_id} is offline"
    channels = Channel.objects.filter(device=device)
    # an IPC may be asked for its own ID; an NVR's channels come from its Catalog
    if (
        channel_id != device_id
        and channels.exists()
        and not channels.filter(channel_id=channel_id).exists()
    ):
        return f"GB/T 28181 device {device_id} lists no channel {channel_id} in its Catalog"
    return ""


def explain(stream_url: str, reason: str) -> str:
    """An engine's failure Reason for a gb28181:// task, said in GB/T 28181
    terms: the engine itself only saw the relay answer an HTTP error."""
    if not reason:
        return reason
    parsed = parse_url(stream_url)
    if parsed is None:
        return reason
    problem = channel_problem(parsed[0], parsed[1])
    return f"{problem} ({reason})" if problem else reason


# --- the run_gb28181 side: the relay itself --------------------------------------


def starts_unit(data: bytes) -> bool:
    return len(data) > 3 and data.startswith(b"\x00\x00\x01") and data[3] in _UNIT_STARTS


def opens_gop(data: bytes) -> bool:
    return starts_unit(data) and any(mark in data for mark in _GOP_MARKS)


class Reader:
    """One GET: the PS payloads waiting to be written to it."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=MAX_QUEUED)
        self.synced = False
        self.overflow = False

    def offer(self, data: bytes) -> None:
        if not self.synced:
            # a joiner with no GOP to start from starts at a unit boundary
            if not starts_unit(data):
                return
            self.synced = True
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            self.overflow = True  # the engine stopped reading: end its body


class Feed:
    """One INVITE dialog shared by every reader of a channel."""

    def __init__(self, key: tuple[str, str, bool]) -> None:
        self.key = key
        self.readers: set[Reader] = set()
        self.session: Any = None  # gb28181.sip.PlaySession
        self.error = ""
        self.last_data = time.monotonic()
        self.published = 0
        self._gop: list[bytes] | None = None
        self._gop_bytes = 0
        self._lock = threading.Lock()

    def publish(self, data: bytes) -> None:
        """RTP payloads in order (called in the receiver's thread)."""
        self.last_data = time.monotonic()
        self.published += 1
        with self._lock:
            if opens_gop(data):
                self._gop, self._gop_bytes = [data], len(data)
            elif self._gop is not None:
                self._gop.append(data)
                self._gop_bytes += len(data)
                if self._gop_bytes > GOP_MAX_BYTES:
                    self._gop = None
            readers = list(self.readers)
        for reader in readers:
            reader.offer(data)

    def add(self, reader: Reader) -> None:
        with self._lock:
            for data in self._gop or []:
                reader.synced = True
                reader.offer(data)
            self.readers.add(reader)

    def remove(self, reader: Reader) -> bool:
        """True when it was the last reader."""
        with self._lock:
            self.readers.discard(reader)
            return not self.readers

    def wait_playing(self, timeout: float) -> str:
        """Empty once the device streams; else why not."""
        deadline = time.monotonic() + timeout
        while not self.error:
            session = self.session
            if session is not None and session.state == "playing":
                if not self.published:  # the stall clock starts when the device answers
                    self.last_data = time.monotonic()
                return ""
            if session is not None and session.state in ("failed", "ended"):
                return session.error or session.state
            left = deadline - time.monotonic()
            if left <= 0:
                return "the device did not answer the INVITE"
            if session is not None:
                session.changed.wait(min(left, 0.5))
            else:
                time.sleep(min(left, 0.05))
        return self.error

    def ended(self) -> str:
        """Why readers must stop now, or ""."""
        session = self.session
        if session is None or session.state in ("failed", "ended"):
            return (session.error if session is not None else "") or "the stream ended"
        if session.state == "playing" and time.monotonic() - self.last_data > STALL_S:
            return f"no media for {STALL_S:.0f} s"
        return ""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    relay: Relay


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gb28181 relay %s: " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        try:
            self._get()
        finally:
            connections.close_all()  # this thread's; the next GET gets a new thread

    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _get(self) -> None:
        parts = urlsplit(self.path)
        match = _PATH.match(parts.path)
        if match is None:
            self._answer(404, "not a /gb28181/<DeviceID>/<ChannelID> path")
            return
        tcp = parse_qs(parts.query).get("transport", [""])[0].lower() == "tcp"
        relay = self.server.relay
        feed, reader = relay.join(match.group(1), match.group(2), tcp)
        why = "the reader left"
        try:
            error = feed.wait_playing(ANSWER_TIMEOUT_S)
            if error:
                why = error
                # 404: FFmpeg words it "Not Found"; the facility explains it (`explain`)
                self._answer(404 if "not online" in error else 502, error)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/MP2P")  # RFC 3555's name for MPEG-PS
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            why = self._stream(feed, reader)
        finally:
            relay.leave(feed, reader, why)

    def _stream(self, feed: Feed, reader: Reader) -> str:
        """Write the PS until the feed or the reader ends; returns why."""
        ended = ""
        # a reader that stops reading but keeps the connection must not block us
        self.connection.settimeout(WRITE_TIMEOUT_S)
        while not ended:
            if reader.overflow:
                return "the reader fell too far behind"
            try:
                first = reader.queue.get(timeout=0.5)
            except queue.Empty:
                ended = feed.ended()
                if self._client_gone():
                    return "the reader left"
                continue
            pieces, size = [first], len(first)
            while size < 65536:
                try:
                    piece = reader.queue.get_nowait()
                except queue.Empty:
                    break
                pieces.append(piece)
                size += len(piece)
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (size, b"".join(pieces)))
            except OSError:
                return "the reader left"
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
        return ended

    def _client_gone(self) -> bool:
        """The engine closed its end (it sends nothing after the request)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class Relay:
    """Serves GET /gb28181/<DeviceID>/<ChannelID>[?transport=tcp] on
    host:port, playing channels through `sip` (a gb28181.sip.SipServer)."""

    def __init__(self, sip: Any, host: str | None = None, port: int | None = None) -> None:
        self.sip = sip
        self.feeds: dict[tuple[str, str, bool], Feed] = {}
        self._lock = threading.Lock()
        address = (
            host if host is not None else settings.GB28181_RELAY_HOST,
            port if port is not None else settings.GB28181_RELAY_PORT,
        )
        self.httpd = _HttpServer(address, _Handler)
        self.httpd.relay = self
        self.host, self.port = address[0], self.httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self.invites = 0

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.2,), name="gb28181-relay", daemon=True
        )
        self._thread.start()
        log.info("gb28181 relay on http://%s:%s/gb28181/", self.host, self.port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            feeds, self.feeds = list(self.feeds.values()), {}
        for feed in feeds:
            self._stop(feed, "the relay stopped")

    def join(self, device_id: str, channel_id: str, tcp: bool) -> tuple[Feed, Reader]:
        """A new reader of the channel, INVITEing it if nobody watches it yet."""
        key = (device_id, channel_id, tcp)
        reader = Reader()
        with self._lock:
            feed = self.feeds.get(key)
            # a feed the device ended (BYE, stall) is replaced, not joined
            starting = feed is None or (feed.session is not None and bool(feed.ended()))
            if starting:
                feed = self.feeds[key] = Feed(key)
            assert feed is not None
            feed.add(reader)
        if starting:
            try:
                self.invites += 1
                feed.session = self.sip.invite(device_id, channel_id, tcp, on_data=feed.publish)
                feed.last_data = time.monotonic()
            except LookupError as error:  # not registered / offline
                feed.error = str(error)
            except Exception as error:
                log.exception("gb28181 relay: INVITE %s/%s failed", device_id, channel_id)
                feed.error = f"INVITE failed: {error}"
        return feed, reader

    def leave(self, feed: Feed, reader: Reader, why: str) -> None:
        """A GET ended; the last one of a feed ends its dialog (BYE)."""
        with self._lock:
            last = feed.remove(reader)
            if last and self.feeds.get(feed.key) is feed:
                del self.feeds[feed.key]
        if last:
            self._stop(feed, why)

    def _stop(self, feed: Feed, why: str) -> None:
        session = feed.session
        if session is not None and session.state in ("inviting", "playing"):
            log.info("gb28181 relay: BYE %s/%s: %s", feed.key[0], feed.key[1], why)
            self.sip.bye(session)
