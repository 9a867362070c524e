"""GB/T 28181 wire formats: SIP parsing and framing, digest auth, MANSCDP in GB2312, RTP and the UDP reorder
buffer, the SDP offer."""

from __future__ import annotations

import random

import pytest
from jifang.gb28181 import manscdp, rtp, sip
from jifang.gb28181.media import SsrcPool, answered_ssrc, sdp_offer
from jifang.gb28181.sip import SipError

REGISTER = (b"REGISTER sip:33100200002000000001@3310020000 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1\r\n"
            b"From: <sip:33100200001180000001@3310020000>;tag=abc\r\n"
            b"To: <sip:33100200001180000001@3310020000>\r\n"
            b"Call-ID: 42@10.0.0.5\r\nCSeq: 1 REGISTER\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n")


def test_parse_register_and_build_response_with_to_tag() -> None:
    message = sip.parse(REGISTER)
    assert message.method == "REGISTER" and message.cseq == (1, "REGISTER")
    assert sip.user_of(message.header("from") or "") == "33100200001180000001"
    answer = sip.parse(sip.response(message, 401, [("WWW-Authenticate", 'Digest realm="x"')]).to_bytes())
    assert answer.status == 401 and answer.call_id == "42@10.0.0.5"
    assert sip.tag_of(answer.header("to") or "") and sip.tag_of(answer.header("from") or "") == "abc"


@pytest.mark.parametrize("junk", [b"\x00" * 65536, b"HELLO\r\n\r\n", b"REGISTER sip:x SIP/2.0\r\nbroken\r\n\r\n",
                                  REGISTER.replace(b"Content-Length: 0", b"Content-Length: 99")])
def test_malformed_messages_raise_sip_error(junk: bytes) -> None:
    with pytest.raises(SipError):
        sip.parse(junk)


def test_tcp_framer_splits_by_content_length_across_reads() -> None:
    body = b"<Notify/>"
    message = REGISTER.replace(b"Content-Length: 0", b"Content-Length: %d" % len(body)) + body
    stream = message * 3
    framer = sip.StreamFramer()
    got = []
    for start in range(0, len(stream), 37):
        got += framer.feed(stream[start:start + 37])
    assert len(got) == 3 and all(m.body == body for m in got)


@pytest.mark.parametrize("qop", ["auth", ""])
def test_digest_matches_rfc2617(qop: str) -> None:
    challenge = {"realm": "3310020000", "nonce": "n1", "qop": qop}
    header = sip.authorization_header(challenge, "dev", "pw", "REGISTER", "sip:p@d")
    params = sip.parse_digest(header)
    expected = sip.digest_response("dev", "3310020000", "pw", "REGISTER", "sip:p@d", "n1", params.get("qop", ""),
                                   params.get("nc", ""), params.get("cnonce", ""))
    assert params["response"] == expected
    assert ("qop" in params) == bool(qop)
    assert expected != sip.digest_response("dev", "3310020000", "wrong", "REGISTER", "sip:p@d", "n1",
                                           params.get("qop", ""), params.get("nc", ""), params.get("cnonce", ""))


def test_manscdp_catalog_in_gb2312() -> None:
    items = [manscdp.ChannelItem("33100200001320000011", "东门", "Hik", "DS", "33100200001180000001", "ON", 1)]
    body = manscdp.catalog_response(7, "33100200001180000001", 4, items)
    assert "东门".encode("gb18030") in body
    parsed = manscdp.parse(body)
    assert (parsed.root, parsed.cmd, parsed.sn, parsed.sum_num) == ("Response", "Catalog", 7, 4)
    assert parsed.items[0].name == "东门" and parsed.items[0].ptz_type == 1


def test_manscdp_refuses_entities() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Notify><CmdType>&a;</CmdType></Notify>'
    with pytest.raises(SipError):
        manscdp.parse(bomb)


def test_rtp_round_trip_and_rfc4571_framing() -> None:
    packets = [rtp.build(seq, seq * 3600, 123, bytes([seq & 0xFF]) * 10) for seq in (65534, 65535, 0)]
    deframer = rtp.TcpDeframer()
    stream = b"".join(rtp.frame(p) for p in packets)
    got = deframer.feed(stream[:5]) + deframer.feed(stream[5:])
    assert [rtp.parse(p).seq for p in got] == [65534, 65535, 0]
    assert rtp.parse(got[0]).ssrc == 123 and rtp.parse(got[0]).payload == bytes([254]) * 10
    with pytest.raises(rtp.RtpError):
        rtp.parse(b"\x00" * 20)


def test_reorder_buffer_restores_order_and_counts_loss() -> None:
    rng = random.Random(7)
    seqs = [(60000 + i) & 0xFFFF for i in range(3000)]
    sent = [s for s in seqs if rng.random() > 0.005]  # 0.5 % loss
    lost = len(seqs) - len(sent)
    for i in range(len(sent) - 1):  # 2 % swapped with the next one
        if rng.random() < 0.02:
            sent[i], sent[i + 1] = sent[i + 1], sent[i]
    buffer = rtp.ReorderBuffer(capacity=16)
    out = []
    for seq in sent:
        out += [p.seq for p in buffer.push(rtp.RtpPacket(seq, 0, 1, 96, False, b""))]
    out += [p.seq for p in buffer.flush()]
    assert out == [s for s in seqs if s in set(sent)]
    assert buffer.reordered > 0 and buffer.late == 0
    assert lost - 1 <= buffer.lost <= lost  # a loss in the buffer's last window is only seen at flush


def test_sdp_offer_and_unique_ssrcs() -> None:
    pool = SsrcPool("3310020000")
    first, second = pool.allocate(), pool.allocate()
    assert first != second and len(first) == 10 and first.startswith("0")
    offer = sdp_offer("33100200002000000001", "127.0.0.1", 30000, first, "tcp").decode()
    for line in ("s=Play", "m=video 30000 TCP/RTP/AVP 96", "a=recvonly", "a=rtpmap:96 PS/90000", "a=setup:passive",
                 f"y={first}"):
        assert line in offer.splitlines()
    assert "m=video 30000 RTP/AVP 96" in sdp_offer("p", "h", 30000, first, "udp").decode()
    assert answered_ssrc(offer.encode()) == first
