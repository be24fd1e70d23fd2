"""A GB/T 28181 camera for the tests (UDP on 127.0.0.1): registers with digest,
sends keepalives, answers Catalog/DeviceInfo queries, and answers INVITE with
RTP/PS (PS muxed by PyAV's `mpeg` muxer from a real clip) over UDP or TCP.

Its messages are written out here by hand and its digest computed on its own,
so the platform's code is checked against an independent peer; only parsing
what it receives borrows gb28181.sip.parse_message."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from gb28181.sip import SipMessage, parse_message

CLIP = Path(__file__).resolve().parents[2] / ".cache" / "media" / "vtest_8s.mp4"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Channel:
    channel_id: str
    name: str
    status: str = "ON"


def ps_frames(clip: Path, loops: int = 1) -> Iterator[tuple[int, bytes]]:
    """(90 kHz timestamp, PS bytes) per video frame of the clip, muxed as MPEG-PS;
    `loops` times in a row with growing timestamps (0: for ever), as a live
    camera's stream never starts over."""
    loop = 0
    offset_s = 0.0
    while loops <= 0 or loop < loops:
        duration_s = 0.0
        for ts_s, chunk in _ps_once(clip, offset_s):
            duration_s = max(duration_s, ts_s - offset_s)
            yield int(ts_s * 90000), chunk
        offset_s += duration_s + 0.1  # the last frame's own duration (10 fps)
        loop += 1


def _ps_once(clip: Path, offset_s: float) -> Iterator[tuple[float, bytes]]:
    import av

    out_buf = io.BytesIO()
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        shift = int(offset_s / stream.time_base)
        out = av.open(out_buf, "w", format="mpeg")
        ostream = out.add_stream_from_template(stream)
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        chunks = []
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            for filtered in bsf.filter(packet):
                filtered.stream = ostream
                if shift:
                    filtered.pts = (filtered.pts or 0) + shift
                    filtered.dts = (filtered.dts or 0) + shift
                ts = float((filtered.pts or 0) * stream.time_base)  # mux rescales pts
                start = out_buf.tell()
                out.mux(filtered)
                chunks.append((ts, start))
        out.close()
    data = out_buf.getvalue()
    # each frame's bytes: from where its mux started to where the next one's did
    bounds = [start for _, start in chunks] + [len(data)]
    for (ts, _), begin, end in zip(chunks, bounds, bounds[1:], strict=False):
        if end > begin:
            yield ts, data[begin:end]


def rtp_packets(
    frames: Iterator[tuple[int, bytes]], ssrc: int, mtu: int = 1400, realtime: bool = False
) -> Iterator[bytes]:
    """RTP packets of the frames; `realtime` paces them by their timestamps, as
    a camera sends them."""
    seq = 0
    start = time.monotonic()
    first: int | None = None
    for ts, payload in frames:
        if realtime:
            first = ts if first is None else first
            delay = start + (ts - first) / 90000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pieces = [payload[i : i + mtu] for i in range(0, len(payload), mtu)]
        for n, piece in enumerate(pieces):
            marker = 0x80 if n == len(pieces) - 1 else 0
            header = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
            yield header + piece
            seq += 1


@dataclass
class Stream:
    call_id: str
    host: str
    port: int
    tcp: bool
    ssrc: int
    stop: threading.Event = field(default_factory=threading.Event)
    sent_packets: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class DeviceSimulator:
    def __init__(
        self,
        platform: tuple[str, int],
        device_id: str = "34020000001320000001",
        password: str = "12345678",
        platform_id: str = "34020000002000000001",
        realm: str = "3402000000",
        channels: list[Channel] | None = None,
        split_catalog: bool = True,
        clip: Path = CLIP,
        live: bool = False,
    ) -> None:
        """`live`: stream the clip in real time, over and over, until BYE
        (otherwise once, as fast as loopback takes it)."""
        self.platform = platform
        self.device_id = device_id
        self.password = password
        self.platform_id = platform_id
        self.realm = realm
        self.channels = channels or [
            Channel("34020000001310000001", "大门"),
            Channel("34020000001310000002", "Parking lot", "OFF"),
        ]
        self.split_catalog = split_catalog
        self.clip = clip
        self.live = live
        self.invites: list[SipMessage] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received: list[SipMessage] = []
        self.responses: dict[str, Future[SipMessage]] = {}
        self.streams: dict[str, Stream] = {}
        self.byes = 0
        self._cseq = 0
        self._sn = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        for stream in self.streams.values():
            stream.stop.set()
        self._thread.join(2)
        self.sock.close()

    # --- sending

    def _send(self, text: str, body: bytes = b"", addr: tuple[str, int] | None = None) -> None:
        head = text.strip().replace("\n", "\r\n") + f"\r\nContent-Length: {len(body)}\r\n\r\n"
        self.sock.sendto(head.encode() + body, addr or self.platform)

    def _request(
        self,
        method: str,
        call_id: str,
        extra: str = "",
        body: bytes = b"",
        ctype: str = "Application/MANSCDP+xml",
    ) -> Future[SipMessage]:
        self._cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(6)
        future: Future[SipMessage] = Future()
        self.responses[branch] = future
        uri = f"sip:{self.platform_id}@{self.realm}"
        to_user = self.device_id if method == "REGISTER" else self.platform_id
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={branch}",
            f"From: <sip:{self.device_id}@{self.realm}>;tag=dev{self.port}",
            f"To: <sip:{to_user}@{self.realm}>",
            f"Call-ID: {call_id}",
            f"CSeq: {self._cseq} {method}",
            "Max-Forwards: 70",
            f"Contact: <sip:{self.device_id}@127.0.0.1:{self.port}>",
            "User-Agent: test-ipc",
        ]
        if extra:
            lines.append(extra)
        if body:
            lines.append(f"Content-Type: {ctype}")
        self._send("\n".join(lines), body)
        return future

    def register(self, expires: int = 3600, timeout: float = 5) -> Future[int]:
        """REGISTER without credentials, then (on 401) with digest; resolves to
        the final status code. Call while the platform is being polled."""
        result: Future[int] = Future()
        call_id = secrets.token_hex(8) + "@127.0.0.1"

        def run() -> None:
            try:
                first = self._request("REGISTER", call_id, f"Expires: {expires}").result(timeout)
                if first.status != 401:
                    result.set_result(first.status)
                    return
                challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', first.get("WWW-Authenticate")))
                uri = f"sip:{self.platform_id}@{self.realm}"
                ha1 = md5(f"{self.device_id}:{challenge['realm']}:{self.password}")
                response = md5(f"{ha1}:{challenge['nonce']}:{md5(f'REGISTER:{uri}')}")
                auth = (
                    f'Authorization: Digest username="{self.device_id}", '
                    f'realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
                    f'uri="{uri}", response="{response}", algorithm=MD5'
                )
                second = self._request("REGISTER", call_id, f"Expires: {expires}\n{auth}")
                result.set_result(second.result(timeout).status)
            except Exception as exc:
                result.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return result

    def keepalive(self) -> Future[SipMessage]:
        self._sn += 1
        body = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n'
            "<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n"
            f"<SN>{self._sn}</SN>\r\n<DeviceID>{self.device_id}</DeviceID>\r\n"
            "<Status>OK</Status>\r\n</Notify>\r\n"
        ).encode("gb2312")
        return self._request("MESSAGE", secrets.token_hex(8), body=body)

    # --- receiving

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = parse_message(data)
            self.received.append(msg)
            if not msg.is_request:
                branch = msg.get("Via").split("branch=")[1].split(";")[0]
                future = self.responses.pop(branch, None)
                if future is not None and msg.status >= 200:
                    future.set_result(msg)
                continue
            self._on_request(msg, addr)

    def _reply(
        self,
        msg: SipMessage,
        addr: tuple[str, int],
        status: int,
        reason: str,
        extra: str = "",
        body: bytes = b"",
    ) -> None:
        to = msg.get("To")
        if "tag=" not in to:
            to += f";tag=dev{secrets.token_hex(3)}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in msg.get_all("Via")]
        lines += [f"From: {msg.get('From')}", f"To: {to}", f"Call-ID: {msg.get('Call-ID')}"]
        lines += [f"CSeq: {msg.get('CSeq')}", "User-Agent: test-ipc"]
        if extra:
            lines.append(extra)
        self._send("\n".join(lines), body, addr)

    def _on_request(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        if msg.method == "MESSAGE":
            self._reply(msg, addr, 200, "OK")
            body = msg.body.decode("gb18030")
            sn = re.search(r"<SN>(\d+)</SN>", body)
            if "<CmdType>Catalog</CmdType>" in body and sn:
                self._send_catalog(sn.group(1))
            elif "<CmdType>DeviceInfo</CmdType>" in body and sn:
                self._send_device_info(sn.group(1))
        elif msg.method == "INVITE":
            self._on_invite(msg, addr)
        elif msg.method == "ACK":
            stream = self.streams.get(msg.get("Call-ID"))
            if stream is not None:
                threading.Thread(target=self._stream, args=(stream,), daemon=True).start()
        elif msg.method == "BYE":
            self.byes += 1
            stream = self.streams.get(msg.get("Call-ID"))
            if stream is not None:
                stream.stop.set()
            self._reply(msg, addr, 200 if stream else 481, "OK" if stream else "No Call")

    def _send_catalog(self, sn: str) -> None:
        groups = [[c] for c in self.channels] if self.split_catalog else [self.channels]
        for group in groups:
            items = "".join(
                f"<Item>\r\n<DeviceID>{c.channel_id}</DeviceID>\r\n<Name>{c.name}</Name>\r\n"
                f"<Manufacturer>TestCam</Manufacturer>\r\n<Model>IPC-1</Model>\r\n"
                f"<ParentID>{self.device_id}</ParentID>\r\n<Status>{c.status}</Status>\r\n</Item>\r\n"
                for c in group
            )
            body = (
                '<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n'
                f"<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n"
                f"<DeviceID>{self.device_id}</DeviceID>\r\n<SumNum>{len(self.channels)}</SumNum>\r\n"
                f'<DeviceList Num="{len(group)}">\r\n{items}</DeviceList>\r\n</Response>\r\n'
            ).encode("gb2312")
            self._request("MESSAGE", secrets.token_hex(8), body=body)

    def _send_device_info(self, sn: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\r\n<Response>\r\n'
            f"<CmdType>DeviceInfo</CmdType>\r\n<SN>{sn}</SN>\r\n"
            f"<DeviceID>{self.device_id}</DeviceID>\r\n<DeviceName>测试摄像机</DeviceName>\r\n"
            "<Result>OK</Result>\r\n<Manufacturer>TestCam</Manufacturer>\r\n"
            "<Model>IPC-1</Model>\r\n<Firmware>V1.0</Firmware>\r\n<Channel>2</Channel>\r\n"
            "</Response>\r\n"
        ).encode()
        self._request("MESSAGE", secrets.token_hex(8), body=body)

    def _on_invite(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        self.invites.append(msg)
        sdp = msg.body.decode()
        host = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
        media = re.search(r"^m=video (\d+) (\S+) ", sdp, re.M)
        ssrc = re.search(r"^y=(\d+)", sdp, re.M)
        channel = msg.uri.split(":")[1].split("@")[0]
        if not (host and media and ssrc and "PS/90000" in sdp) or channel not in {
            c.channel_id for c in self.channels
        }:
            self._reply(msg, addr, 488, "Not Acceptable Here")
            return
        tcp = media.group(2).upper().startswith("TCP")
        stream = Stream(
            msg.get("Call-ID"), host.group(1), int(media.group(1)), tcp, int(ssrc.group(1))
        )
        self.streams[stream.call_id] = stream
        answer = (
            f"v=0\r\no={channel} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\nm=video {40000 + self.port % 1000} {media.group(2)} 96\r\n"
            + ("a=setup:active\r\na=connection:new\r\n" if tcp else "")
            + f"a=sendonly\r\na=rtpmap:96 PS/90000\r\ny={ssrc.group(1)}\r\nf=\r\n"
        ).encode()
        self._reply(
            msg,
            addr,
            200,
            "OK",
            f"Contact: <sip:{channel}@127.0.0.1:{self.port}>\nContent-Type: APPLICATION/SDP",
            answer,
        )

    def _stream(self, stream: Stream) -> None:
        """Send the clip as RTP/PS (once, or live until BYE)."""
        try:
            frames = ps_frames(self.clip, loops=0 if self.live else 1)
            packets = rtp_packets(frames, stream.ssrc, realtime=self.live)
            if stream.tcp:
                with socket.create_connection((stream.host, stream.port), timeout=5) as conn:
                    for packet in packets:
                        if stream.stop.is_set():
                            break
                        conn.sendall(struct.pack("!H", len(packet)) + packet)
                        stream.sent_packets += 1
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                    for packet in packets:
                        if stream.stop.is_set():
                            break
                        out.sendto(packet, (stream.host, stream.port))
                        stream.sent_packets += 1
                        time.sleep(0.0005)  # loopback buffers are small
        finally:
            stream.done.set()
