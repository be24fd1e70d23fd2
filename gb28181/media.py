"""Receiving a GB/T 28181 live stream: RTP (payload type 96, PS/90000) over UDP,
or over TCP with RFC 4571 2-byte length framing (the platform listens:
a=setup:passive); the payloads, put back in sequence order, are an MPEG-2
Program Stream that FFmpeg's `mpeg` demuxer (PyAV) splits into frames."""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

REORDER_WINDOW = 32


def rtp_payload(packet: bytes) -> tuple[int, int, bool, bytes] | None:
    """(sequence, timestamp, marker, payload) of an RTP packet, None if it is not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    padding, extension, csrc_count = packet[0] & 0x20, packet[0] & 0x10, packet[0] & 0x0F
    marker = bool(packet[1] & 0x80)
    seq, timestamp = struct.unpack("!HI", packet[2:8])
    offset = 12 + 4 * csrc_count
    if extension:
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack("!H", packet[offset + 2 : offset + 4])[0]
    end = len(packet) - (packet[-1] if padding else 0)
    if offset > end:
        return None
    return seq, timestamp, marker, packet[offset:end]


class PsStream:
    """A blocking, read-only file object for PyAV, fed with PS bytes."""

    def __init__(self, read_timeout_s: float = 10.0) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._buffer = b""
        self._eof = False
        self.read_timeout_s = read_timeout_s

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.put(data)

    def finish(self) -> None:
        self._chunks.put(None)

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._eof:
            try:
                chunk = self._chunks.get(timeout=self.read_timeout_s)
            except queue.Empty:
                self._eof = True  # the stream stalled: end the demuxer
                break
            if chunk is None:
                self._eof = True
            else:
                self._buffer = chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class Reorderer:
    """Puts RTP payloads back in sequence order (a small window; a gap that
    persists past it is skipped)."""

    def __init__(self, out: Callable[[bytes], None]) -> None:
        self.out = out
        self.expected: int | None = None
        self.held: dict[int, bytes] = {}
        self.lost = 0

    def push(self, seq: int, payload: bytes) -> None:
        if self.expected is None:
            self.expected = seq
        if (seq - self.expected) & 0xFFFF >= 0x8000:
            return  # late duplicate
        self.held[seq] = payload
        while self.expected in self.held:
            self.out(self.held.pop(self.expected))
            self.expected = (self.expected + 1) & 0xFFFF
        if len(self.held) > REORDER_WINDOW:
            self.flush()

    def flush(self) -> None:
        while self.held:
            assert self.expected is not None
            while self.expected not in self.held:
                self.lost += 1
                self.expected = (self.expected + 1) & 0xFFFF
            self.out(self.held.pop(self.expected))
            self.expected = (self.expected + 1) & 0xFFFF


class RtpReceiver:
    """Listens on a fresh port, reassembles the PS and decodes its video with
    PyAV in a second thread; `frames` counts decoded frames, `on_frame` gets
    each (an av.VideoFrame). With `on_data` the PS bytes, in order, go there
    instead and nothing is decoded here (the relay hands them to engines)."""

    def __init__(
        self,
        host: str,
        tcp: bool = False,
        on_frame: Callable[[Any], None] | None = None,
        read_timeout_s: float = 10.0,
        on_data: Callable[[bytes], None] | None = None,
    ) -> None:
        self.tcp = tcp
        self.on_frame = on_frame
        self.on_data = on_data
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, kind)
        if tcp:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((host, 0))
        if tcp:
            self.sock.listen(1)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.stream = PsStream(read_timeout_s)
        self.reorder = Reorderer(self._payload)
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.error = ""
        self.width = self.height = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.decoded = threading.Event()

    def _payload(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.on_data is not None:
            self.on_data(data)
        else:
            self.stream.feed(data)

    def start(self) -> None:
        targets = [(self._receive, "rtp-receive")]
        if self.on_data is None:
            targets.append((self._decode, "ps-decode"))
        else:
            self.decoded.set()  # nothing to drain here
        for target, name in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _packet(self, packet: bytes) -> None:
        parsed = rtp_payload(packet)
        if parsed is None:
            return
        self.packets += 1
        self.reorder.push(parsed[0], parsed[3])

    def _receive(self) -> None:
        try:
            if self.tcp:
                self._receive_tcp()
            else:
                while not self._stop.is_set():
                    try:
                        packet = self.sock.recv(65535)
                    except TimeoutError:
                        continue
                    self._packet(packet)
        except OSError as exc:
            if not self._stop.is_set():
                self.error = f"receive: {exc}"
        finally:
            self.reorder.flush()
            self.stream.finish()

    def _receive_tcp(self) -> None:
        conn = None
        while conn is None and not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
        if conn is None:
            return
        conn.settimeout(0.2)
        buffer = b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                buffer += data
                while len(buffer) >= 2:
                    (length,) = struct.unpack("!H", buffer[:2])
                    if len(buffer) < 2 + length:
                        break
                    self._packet(buffer[2 : 2 + length])
                    buffer = buffer[2 + length :]

    def _decode(self) -> None:
        import av

        try:
            with av.open(
                self.stream,
                mode="r",
                format="mpeg",
                options={"probesize": "262144", "analyzeduration": "2000000"},
            ) as container:
                if not container.streams.video:
                    self.error = "no video stream in the PS"
                    return
                for packet in container.demux(video=0):
                    for frame in packet.decode():
                        self.frames += 1
                        self.width, self.height = frame.width, frame.height
                        if self.on_frame is not None:
                            self.on_frame(frame)
        except Exception as exc:  # a broken stream ends this session, not the server
            self.error = f"decode: {exc}"
            log.warning("gb28181 PS decode failed: %s", exc)
        finally:
            self.decoded.set()

    def finish(self, timeout: float = 5.0) -> None:
        """Stop receiving, let the decoder drain what arrived, close."""
        self._stop.set()
        self.decoded.wait(timeout)
        self.sock.close()

    def close(self) -> None:
        self._stop.set()
        self.stream.finish()
        self.sock.close()
