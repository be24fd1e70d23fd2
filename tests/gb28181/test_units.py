from __future__ import annotations

import struct
from typing import Any

import pytest

from gb28181 import manscdp
from gb28181.media import PsStream, Reorderer, rtp_payload
from gb28181.sip import (
    SipError,
    digest_response,
    make_nonce,
    nonce_fresh,
    parse_addr,
    parse_digest,
    parse_message,
    uri_user,
)


def test_parse_request_with_compact_headers_and_body() -> None:
    data = (
        b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK1\r\n"
        b"f: <sip:34020000001320000001@3402000000>;tag=1\r\n"
        b"t: <sip:34020000002000000001@3402000000>\r\n"
        b"i: abc\r\nCSeq: 20 MESSAGE\r\nc: Application/MANSCDP+xml\r\n"
        b"l: 5\r\n\r\nhello, and more"
    )
    msg = parse_message(data)
    assert (msg.method, msg.cseq, msg.body) == ("MESSAGE", (20, "MESSAGE"), b"hello")
    assert msg.get("content-type") == "Application/MANSCDP+xml"
    uri, params = parse_addr(msg.get("From"))
    assert uri_user(uri) == "34020000001320000001" and params["tag"] == "1"


@pytest.mark.parametrize(
    "data",
    [b"garbage\r\n\r\n", b"SIP/2.0 abc OK\r\n\r\n", b"REGISTER sip:x SIP/2.0\r\nVia: x\r\n\r\n"],
)
def test_parse_rejects_broken_messages(data: bytes) -> None:
    with pytest.raises(SipError):
        parse_message(data)


def test_digest_matches_rfc_2617_example() -> None:
    params = parse_digest(
        'Digest username="Mufasa", realm="testrealm@host.com", qop=auth, nc=00000001'
    )
    assert params["username"] == "Mufasa" and params["nc"] == "00000001"
    response = digest_response(
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "00000001",
        "0a4f113b",
        "auth",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_nonce_expires_and_cannot_be_forged(settings: Any) -> None:
    assert nonce_fresh(make_nonce())
    assert not nonce_fresh(make_nonce(now=0))
    nonce = make_nonce()
    assert not nonce_fresh(nonce[:-1] + ("0" if nonce[-1] != "0" else "1"))
    assert not nonce_fresh("not-a-nonce")


def test_manscdp_decodes_by_declared_encoding() -> None:
    gb = '<?xml version="1.0" encoding="GB2312"?><Notify><Name>大门</Name></Notify>'
    assert manscdp.text(manscdp.parse(gb.encode("gb2312")), "Name") == "大门"
    utf = '<?xml version="1.0" encoding="UTF-8"?><Notify><Name>大门</Name></Notify>'
    assert manscdp.text(manscdp.parse(utf.encode()), "Name") == "大门"
    with pytest.raises(manscdp.ManscdpError):
        manscdp.parse(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    built = manscdp.parse(manscdp.build("Query", "Catalog", 7, "34020000001320000001"))
    assert [manscdp.text(built, t) for t in ("CmdType", "SN")] == ["Catalog", "7"]


def test_rtp_payload_skips_csrc_extension_and_padding() -> None:
    header = struct.pack("!BBHII", 0xB1, 0xE0, 65535, 9000, 1)  # P, X, 1 CSRC, M, PT 96
    packet = header + b"CSRC" + struct.pack("!HH", 0xBEDE, 1) + b"EXTN" + b"PS" + b"\x00\x02"
    assert rtp_payload(packet) == (65535, 9000, True, b"PS")
    assert rtp_payload(b"\x00" * 12) is None


def test_reorderer_restores_order_across_wraparound() -> None:
    out: list[bytes] = []
    r = Reorderer(out.append)
    for seq in (65534, 0, 65535, 1, 0):  # out of order, wraps, one duplicate
        r.push(seq, str(seq).encode())
    assert out == [b"65534", b"65535", b"0", b"1"]


def test_ps_stream_reads_what_was_fed_then_eof() -> None:
    s = PsStream(read_timeout_s=1)
    s.feed(b"abc")
    s.feed(b"de")
    s.finish()
    assert s.read(2) + s.read(5) + s.read(5) == b"abcde"
    assert s.read(5) == b""
