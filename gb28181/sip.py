"""A small GB/T 28181 SIP platform (UDP): UAS for the devices' REGISTER (HTTP
digest, MD5) and MESSAGE (Keepalive, Catalog/DeviceInfo responses), UAC for
the Catalog/DeviceInfo queries and for INVITE/ACK/BYE of live video.

Single-threaded: `poll()` reads and handles datagrams in the calling thread
(database writes included); `serve_forever()` loops it, retransmits requests
and sweeps devices offline. `invite()`/`bye()` may be called from another
thread of the same process."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import re
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from gb28181 import devices, manscdp
from gb28181.media import RtpReceiver
from gb28181.models import Device

log = logging.getLogger(__name__)

USER_AGENT = "facility-gb28181"
COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "l": "Content-Length",
    "c": "Content-Type",
    "m": "Contact",
    "s": "Subject",
    "k": "Supported",
}
REASONS = {
    100: "Trying",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    481: "Call/Transaction Does Not Exist",
    500: "Server Internal Error",
    501: "Not Implemented",
}
NONCE_TTL_S = 300
T1 = 0.5
TRANSACTION_TIMEOUT_S = 32 * T1
_ID20 = re.compile(r"^\d{20}$")


class SipError(ValueError):
    pass


# --- messages --------------------------------------------------------------------


@dataclass
class SipMessage:
    method: str = ""  # requests
    uri: str = ""
    status: int = 0  # responses
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def set(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.get("CSeq").strip().partition(" ")
        try:
            return int(number), method.strip().upper()
        except ValueError:
            raise SipError(f"bad CSeq {self.get('CSeq')!r}") from None

    def to_bytes(self) -> bytes:
        if self.is_request:
            lines = [f"{self.method} {self.uri} SIP/2.0"]
        else:
            lines = [f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status, '')}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def parse_message(data: bytes) -> SipMessage:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = data.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    msg = SipMessage()
    if start.startswith("SIP/2.0 "):
        parts = start.split(" ", 2)
        try:
            msg.status = int(parts[1])
        except (IndexError, ValueError):
            raise SipError(f"bad status line {start!r}") from None
        msg.reason = parts[2] if len(parts) > 2 else ""
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            raise SipError(f"bad request line {start!r}")
        msg.method, msg.uri = parts[0].upper(), parts[1]
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation
            name, value = msg.headers[-1]
            msg.headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipError(f"bad header line {line!r}")
        name = name.strip()
        msg.headers.append((COMPACT.get(name.lower(), name), value.strip()))
    length = msg.get("Content-Length")
    if length:
        try:
            n = int(length)
        except ValueError:
            raise SipError(f"bad Content-Length {length!r}") from None
        if n > len(rest):
            raise SipError("body shorter than Content-Length")
        rest = rest[:n]
    msg.body = rest
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not msg.get(required):
            raise SipError(f"no {required} header")
    return msg


def parse_addr(value: str) -> tuple[str, dict[str, str]]:
    """The URI and parameters of a From/To/Contact value."""
    if "<" in value:
        uri = value[value.index("<") + 1 : value.index(">")] if ">" in value else ""
        tail = value[value.index(">") + 1 :] if ">" in value else ""
    else:
        uri, _, tail = value.partition(";")
        tail = ";" + tail if tail else ""
    params = {}
    for part in tail.split(";"):
        if part.strip():
            key, _, val = part.strip().partition("=")
            params[key.lower()] = val
    return uri.strip(), params


def uri_user(uri: str) -> str:
    """The user part of sip:user@host."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def via_params(value: str) -> dict[str, str]:
    params = {}
    for part in value.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        params[key.lower()] = val
    return params


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


# --- digest (RFC 2617, MD5) ------------------------------------------------------

_AUTH_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]+)')


def parse_digest(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {
        m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2)
        for m in _AUTH_PARAM.finditer(rest)
    }


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_response(
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str = "",
    cnonce: str = "",
    qop: str = "",
) -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def make_nonce(now: float | None = None) -> str:
    stamp = f"{int(now if now is not None else time.time()):x}"
    mac = hmac.new(settings.SECRET_KEY.encode(), stamp.encode(), hashlib.sha256).hexdigest()
    return stamp + mac[:16]


def nonce_fresh(nonce: str) -> bool:
    stamp = nonce[:-16]
    try:
        issued = int(stamp, 16)
    except ValueError:
        return False
    mac = hmac.new(settings.SECRET_KEY.encode(), stamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac[:16], nonce[-16:]) and 0 <= time.time() - issued < NONCE_TTL_S


def gb_date() -> str:
    """The Date header GB/T 28181 devices set their clock from."""
    now = timezone.localtime()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


# --- transactions and sessions ---------------------------------------------------


@dataclass
class ClientTransaction:
    request: SipMessage
    addr: tuple[str, int]
    on_final: Callable[[SipMessage | None], None] | None = None
    started: float = field(default_factory=time.monotonic)
    next_retransmit: float = 0.0
    interval: float = T1
    provisional: bool = False
    response: SipMessage | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class PlaySession:
    """One live stream of a channel: INVITE → 200 → ACK … BYE."""

    device_id: str
    channel_id: str
    call_id: str
    ssrc: str
    receiver: RtpReceiver
    addr: tuple[str, int]
    from_tag: str
    to_header: str = ""
    remote_target: str = ""
    cseq: int = 1
    state: str = "inviting"  # inviting | playing | failed | ended
    answer: str = ""
    error: str = ""
    changed: threading.Event = field(default_factory=threading.Event)


class SipServer:
    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host if host is not None else settings.GB28181_SIP_HOST
        bind_port = port if port is not None else settings.GB28181_SIP_PORT
        self.platform_id = settings.GB28181_SIP_ID
        self.realm = settings.GB28181_REALM
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, bind_port))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.sock, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._transactions: dict[str, ClientTransaction] = {}
        self.sessions: dict[str, PlaySession] = {}
        self._sn = itertools.count(1)
        self._ssrc = itertools.count(1)
        self._catalogs: dict[tuple[str, str], set[str]] = {}
        self._last_sweep = 0.0

    # --- the loop

    def close(self) -> None:
        for session in list(self.sessions.values()):
            session.receiver.close()
        self._selector.close()
        self.sock.close()

    def poll(self, timeout: float = 0.2) -> int:
        """Handle what arrives within `timeout` seconds; retransmit due requests."""
        handled = 0
        if self._selector.select(timeout):
            while True:
                try:
                    data, addr = self.sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                self.handle(data, addr)
                handled += 1
        self._tick()
        return handled

    def serve_until(self, predicate: Callable[[], Any], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(0.05, left))
        return True

    def serve_forever(self, stop: threading.Event, sweep_every_s: float = 1.0) -> None:
        log.info(
            "gb28181 SIP platform %s listening on udp %s:%s", self.platform_id, self.host, self.port
        )
        while not stop.is_set():
            self.poll(0.2)
            if time.monotonic() - self._last_sweep >= sweep_every_s:
                self._last_sweep = time.monotonic()
                if not connection.in_atomic_block:
                    close_old_connections()
                try:
                    devices.sweep_offline()
                except Exception:
                    log.exception("gb28181 offline sweep failed")

    def handle(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # CRLF keepalive
        try:
            msg = parse_message(data)
        except SipError as exc:
            log.warning("gb28181 bad SIP from %s:%s: %s", addr[0], addr[1], exc)
            return
        try:
            if msg.is_request:
                self._on_request(msg, addr)
            else:
                self._on_response(msg)
        except Exception:
            log.exception("gb28181 handling %s from %s failed", msg.method or msg.status, addr)
            if msg.is_request and msg.method != "ACK":
                self.respond(msg, addr, 500)

    def _send(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        self.sock.sendto(msg.to_bytes(), addr)

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            items = list(self._transactions.items())
        for branch, tx in items:
            if now - tx.started > TRANSACTION_TIMEOUT_S:
                with self._lock:
                    self._transactions.pop(branch, None)
                self._finish(tx, None)
            elif not tx.provisional and now >= tx.next_retransmit:
                self._send(tx.request, tx.addr)
                tx.interval = min(tx.interval * 2, 4.0)
                tx.next_retransmit = now + tx.interval

    # --- server side

    def respond(
        self,
        request: SipMessage,
        addr: tuple[str, int],
        status: int,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str = "",
    ) -> None:
        response = SipMessage(status=status)
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in request.get_all(name):
                if name == "To" and status > 100 and "tag" not in parse_addr(value)[1]:
                    value = f"{value};tag={new_tag()}"
                response.headers.append((name, value))
        response.headers.append(("User-Agent", USER_AGENT))
        response.headers += headers or []
        if body:
            response.headers.append(("Content-Type", content_type))
        response.body = body
        self._send(response, addr)

    def _on_request(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        if msg.method == "REGISTER":
            self._on_register(msg, addr)
        elif msg.method == "MESSAGE":
            self._on_message(msg, addr)
        elif msg.method == "BYE":
            session = self.sessions.get(msg.get("Call-ID"))
            if session is None:
                self.respond(msg, addr, 481)
                return
            self.respond(msg, addr, 200)
            self._end(session, "ended", "device sent BYE")
        elif msg.method == "ACK":
            return
        elif msg.method == "OPTIONS":
            self.respond(msg, addr, 200, [("Allow", "REGISTER, MESSAGE, INVITE, ACK, BYE")])
        else:
            self.respond(msg, addr, 405, [("Allow", "REGISTER, MESSAGE, ACK, BYE, OPTIONS")])

    def _challenge(self, msg: SipMessage, addr: tuple[str, int], stale: bool = False) -> None:
        value = f'Digest realm="{self.realm}", nonce="{make_nonce()}", algorithm=MD5'
        if stale:
            value += ", stale=TRUE"
        self.respond(msg, addr, 401, [("WWW-Authenticate", value)])

    def _on_register(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        device_id = uri_user(parse_addr(msg.get("From"))[0])
        if not _ID20.match(device_id):
            self.respond(msg, addr, 400)
            return
        password = settings.GB28181_PASSWORD
        if not password:
            log.warning("gb28181 REGISTER of %s refused: GB28181_PASSWORD is not set", device_id)
            self.respond(msg, addr, 403)
            return
        auth = msg.get("Authorization")
        if not auth:
            self._challenge(msg, addr)
            return
        params = parse_digest(auth)
        if (
            params.get("username") != device_id
            or params.get("realm") != self.realm
            or params.get("algorithm", "MD5").upper() != "MD5"
        ):
            self.respond(msg, addr, 403)
            return
        if not nonce_fresh(params.get("nonce", "")):
            self._challenge(msg, addr, stale=True)
            return
        expected = digest_response(
            device_id,
            self.realm,
            password,
            "REGISTER",
            params.get("uri", ""),
            params.get("nonce", ""),
            params.get("nc", ""),
            params.get("cnonce", ""),
            params.get("qop", ""),
        )
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            log.warning("gb28181 REGISTER of %s from %s: wrong password", device_id, addr[0])
            self.respond(msg, addr, 403)
            return
        expires_text = msg.get("Expires") or parse_addr(msg.get("Contact"))[1].get("expires", "")
        try:
            expires = int(expires_text) if expires_text else 3600
        except ValueError:
            self.respond(msg, addr, 400)
            return
        if expires <= 0:
            devices.unregistered(device_id)
            self.respond(msg, addr, 200, [("Expires", "0"), ("Date", gb_date())])
            log.info("gb28181 device %s unregistered", device_id)
            return
        devices.registered(device_id, addr[0], addr[1], "UDP", expires)
        headers = [("Contact", msg.get("Contact")), ("Expires", str(expires)), ("Date", gb_date())]
        self.respond(msg, addr, 200, [(k, v) for k, v in headers if v])
        log.info("gb28181 device %s registered from %s:%s", device_id, addr[0], addr[1])
        self.query(device_id, "Catalog", addr)
        self.query(device_id, "DeviceInfo", addr)

    def _on_message(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        try:
            root = manscdp.parse(msg.body)
        except manscdp.ManscdpError as exc:
            log.warning("gb28181 MESSAGE from %s: %s", addr[0], exc)
            self.respond(msg, addr, 400)
            return
        cmd = manscdp.text(root, "CmdType")
        device_id = manscdp.text(root, "DeviceID")
        sender = uri_user(parse_addr(msg.get("From"))[0])
        if root.tag == "Notify" and cmd == "Keepalive":
            ok = devices.keepalive(sender or device_id, addr[0], addr[1])
            self.respond(msg, addr, 200 if ok else 404)
            return
        if not Device.objects.filter(device_id=sender, online=True).exists():
            self.respond(msg, addr, 404)
            return
        self.respond(msg, addr, 200)
        if root.tag == "Response" and cmd == "Catalog":
            total, items = manscdp.catalog_items(root)
            devices.catalog(sender, items)
            self._catalog_done(sender, manscdp.text(root, "SN"), total, items)
        elif root.tag == "Response" and cmd == "DeviceInfo":
            devices.device_info(
                sender,
                manscdp.text(root, "DeviceName"),
                manscdp.text(root, "Manufacturer"),
                manscdp.text(root, "Model"),
                manscdp.text(root, "Firmware"),
            )

    def _catalog_done(
        self, device_id: str, sn: str, total: int, items: list[dict[str, Any]]
    ) -> None:
        """When all SumNum items of one query have arrived, drop the channels the
        device no longer lists."""
        seen = self._catalogs.setdefault((device_id, sn), set())
        seen.update(item["channel_id"] for item in items)
        if total and len(seen) >= total:
            del self._catalogs[(device_id, sn)]
            from gb28181.models import Channel

            Channel.objects.filter(device__device_id=device_id).exclude(
                channel_id__in=seen
            ).delete()

    # --- client side

    def _request(
        self,
        method: str,
        target_id: str,
        addr: tuple[str, int],
        body: bytes = b"",
        content_type: str = "",
        headers: list[tuple[str, str]] | None = None,
        call_id: str | None = None,
        cseq: int = 1,
        from_tag: str | None = None,
        to: str | None = None,
        uri: str | None = None,
    ) -> SipMessage:
        msg = SipMessage(method=method, uri=uri or f"sip:{target_id}@{addr[0]}:{addr[1]}")
        msg.headers = [
            ("Via", f"SIP/2.0/UDP {self.host}:{self.port};rport;branch={new_branch()}"),
            ("From", f"<sip:{self.platform_id}@{self.realm}>;tag={from_tag or new_tag()}"),
            ("To", to or f"<sip:{target_id}@{self.realm}>"),
            ("Call-ID", call_id or f"{secrets.token_hex(10)}@{self.host}"),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", "70"),
            ("User-Agent", USER_AGENT),
        ]
        msg.headers += headers or []
        if body:
            msg.headers.append(("Content-Type", content_type))
        msg.body = body
        return msg

    def send(
        self,
        msg: SipMessage,
        addr: tuple[str, int],
        on_final: Callable[[SipMessage | None], None] | None = None,
    ) -> ClientTransaction:
        branch = via_params(msg.get("Via")).get("branch", "")
        tx = ClientTransaction(msg, addr, on_final)
        tx.next_retransmit = time.monotonic() + T1
        if msg.method != "ACK":
            with self._lock:
                self._transactions[branch] = tx
        self._send(msg, addr)
        return tx

    def _on_response(self, msg: SipMessage) -> None:
        branch = via_params(msg.get("Via")).get("branch", "")
        with self._lock:
            tx = self._transactions.get(branch)
            if tx is None:
                return
            if msg.status < 200:
                tx.provisional = True
                return
            del self._transactions[branch]
        self._finish(tx, msg)

    def _finish(self, tx: ClientTransaction, response: SipMessage | None) -> None:
        tx.response = response
        tx.done.set()
        if tx.on_final is not None:
            tx.on_final(response)

    def device_addr(self, device_id: str) -> tuple[str, int]:
        device = Device.objects.filter(device_id=device_id, online=True).first()
        if device is None or not device.port:
            raise LookupError(f"GB/T 28181 device {device_id} is not online")
        return device.host, device.port

    def query(
        self, device_id: str, cmd_type: str, addr: tuple[str, int] | None = None
    ) -> ClientTransaction:
        """Send a MANSCDP <Query> (Catalog, DeviceInfo, DeviceStatus…); the device's
        answer comes later as its own MESSAGE."""
        addr = addr or self.device_addr(device_id)
        body = manscdp.build("Query", cmd_type, next(self._sn), device_id)
        msg = self._request("MESSAGE", device_id, addr, body, "Application/MANSCDP+xml")
        return self.send(msg, addr)

    def invite(
        self,
        device_id: str,
        channel_id: str,
        tcp: bool = False,
        on_frame: Callable[[Any], None] | None = None,
        on_data: Callable[[bytes], None] | None = None,
    ) -> PlaySession:
        """Ask a channel for live video (PS/90000 over RTP, UDP or TCP passive):
        decoded frames go to `on_frame`, or the PS bytes to `on_data`."""
        addr = self.device_addr(device_id)
        media_host = settings.GB28181_MEDIA_HOST or self.host
        receiver = RtpReceiver(media_host, tcp=tcp, on_frame=on_frame, on_data=on_data)
        receiver.start()
        ssrc = f"0{self.realm[3:8]}{next(self._ssrc) % 10000:04d}"
        proto = "TCP/RTP/AVP" if tcp else "RTP/AVP"
        sdp_lines = [
            "v=0",
            f"o={channel_id} 0 0 IN IP4 {media_host}",
            "s=Play",
            f"c=IN IP4 {media_host}",
            "t=0 0",
            f"m=video {receiver.port} {proto} 96",
            "a=recvonly",
            "a=rtpmap:96 PS/90000",
        ]
        if tcp:
            sdp_lines += ["a=setup:passive", "a=connection:new"]
        sdp_lines.append(f"y={ssrc}")
        sdp = ("\r\n".join(sdp_lines) + "\r\n").encode()
        from_tag = new_tag()
        msg = self._request(
            "INVITE",
            channel_id,
            addr,
            sdp,
            "APPLICATION/SDP",
            headers=[
                ("Contact", f"<sip:{self.platform_id}@{self.host}:{self.port}>"),
                ("Subject", f"{channel_id}:{ssrc},{self.platform_id}:0"),
            ],
            from_tag=from_tag,
        )
        session = PlaySession(
            device_id, channel_id, msg.get("Call-ID"), ssrc, receiver, addr, from_tag
        )
        self.sessions[session.call_id] = session

        def answered(response: SipMessage | None) -> None:
            if response is None or response.status >= 300:
                reason = f"{response.status} {response.reason}" if response else "no answer"
                self._end(session, "failed", f"INVITE: {reason}")
                return
            session.to_header = response.get("To")
            contact = parse_addr(response.get("Contact"))[0]
            session.remote_target = contact or msg.uri
            session.answer = response.body.decode("utf-8", errors="replace")
            ack = self._request(
                "ACK",
                channel_id,
                addr,
                call_id=session.call_id,
                from_tag=from_tag,
                to=session.to_header,
                uri=session.remote_target,
            )
            self.send(ack, addr)
            if session.state != "inviting":  # stopped while the device was answering
                session.state = "playing"
                self.bye(session)
                return
            session.state = "playing"
            session.changed.set()

        self.send(msg, addr, answered)
        return session

    def bye(self, session: PlaySession) -> ClientTransaction | None:
        """End a stream: BYE in its dialog, close the receiver."""
        if session.state != "playing":
            self._end(session, "ended", "stopped")
            return None
        session.cseq += 1
        msg = self._request(
            "BYE",
            session.channel_id,
            session.addr,
            call_id=session.call_id,
            cseq=session.cseq,
            from_tag=session.from_tag,
            to=session.to_header,
            uri=session.remote_target,
        )
        tx = self.send(msg, session.addr)
        self._end(session, "ended", "stopped")
        return tx

    def _end(self, session: PlaySession, state: str, why: str) -> None:
        session.state, session.error = state, why
        session.receiver.finish()
        self.sessions.pop(session.call_id, None)
        session.changed.set()
        log.info("gb28181 %s/%s %s: %s", session.device_id, session.channel_id, state, why)
