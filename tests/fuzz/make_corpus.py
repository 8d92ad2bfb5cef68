#!/usr/bin/env python3
"""make_corpus.py -- regenerates the seed corpora of the Pomelo codec fuzz targets and of
the wire decoder of mail between nodes, and of the login and resume token decoders.

Writes tests/fuzz/corpus/{package,message,handshake,json,client_reply}/ from the test
vectors of the protocol reference (section 11.1, the section 11.2 live-server transcript),
the error cases of sections 5.2 and 9 and the replies of a real atoll node, and
tests/fuzz/corpus/resume_token/ from tokens made here as src/area/token.h says, and
tests/fuzz/corpus/wire/ from frames written here after the format in src/node/wire.h
(one valid frame of every kind, a stream of them, and the ways a frame can be bad), and
tests/fuzz/corpus/jwt/ from tokens signed here (good ones, each way a token is refused,
and inputs for the target's re-signing and JSON modes), and tests/fuzz/corpus/link/ from
node-link HELLOs signed here after the layout in src/cluster/link_codec.c (good ones and
each way one is refused), operations on a sealed stream, chunk plaintexts and round-trip
rules, and tests/fuzz/corpus/admin/ from requests to the admin API (every route, each
way one is refused), one small file per case, named after what it holds. Deterministic: running it twice gives the
same files. It only writes the files it names (overwriting them), so crash reproducers
added by hand under other names stay.

Usage: tests/fuzz/make_corpus.py   (from anywhere; paths are relative to this file)
"""
import base64
import hashlib
import hmac
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def h(s):
    return bytes.fromhex(s.replace("|", " "))


def pkg(t, body=b""):
    return bytes([t, (len(body) >> 16) & 255, (len(body) >> 8) & 255, len(body) & 255]) + body


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def msg(flag, mid=None, route=None, code=None, body=b""):
    out = bytes([flag])
    if mid is not None:
        out += varint(mid)
    if code is not None:
        out += bytes([code >> 8, code & 255])
    elif route is not None:
        out += bytes([len(route)]) + route
    return out + body


ENTRY = b"connector.entryHandler.entry"
UID = b'{"uid":"u1"}'
CHAT = b'{"msg":"hello","from":"u1"}'
OK_MSG = b'{"code":200,"msg":"game server is ok."}'

HS_UNITY = b'{"sys":{"version":"0.3.0","type":"unity-socket"},"user":{}}'
HS_JS = b'{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{},"protoVersion":0}}'
HS_LIB = b'{"sys":{"type":"desktop","version":"0.3.5-release"}}'
HS_PROBE = b'{"sys":{"type":"probe-tcp","version":"0.0.1","protoVersion":0},"user":{}}'
HS_JS_USER = (b'{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{},"protoVersion":0},'
              b'"user":{"token":"abc"}}')
HS_LIB_CACHED = (b'{"sys":{"protoVersion":"jtlUgEgNhsJZ2b9aaqdKrg==","dictVersion":'
                 b'"ljFCGHsr0+bapAJQgumwIQ==","type":"desktop","version":"0.3.5-release"}}')

ROUTES = [b"chat.chatHandler.empty", b"chat.chatHandler.fail", b"chat.chatHandler.pos",
          b"chat.chatHandler.send", b"connector.entryHandler.entry",
          b"connector.entryHandler.fail", b"connector.entryHandler.kickme", b"onChat"]


def json_obj(pairs):
    return b"{" + b",".join(b'"%s":%s' % (k, v) for k, v in pairs) + b"}"


DICT = json_obj([(r, b"%d" % (i + 1)) for i, r in enumerate(ROUTES)])
C2R = json_obj([(b"%d" % (i + 1), b'"%s"' % r) for i, r in enumerate(ROUTES)])
# Our handshake reply for the section 11.2 server (the captured one minus "protos").
REPLY_DICT = (b'{"code":200,"sys":{"heartbeat":3,"dict":' + DICT + b',"routeToCode":' + DICT +
              b',"codeToRoute":' + C2R + b',"dictVersion":"ljFCGHsr0+bapAJQgumwIQ==",'
              b'"useDict":true}}')
PROTOS = (b'{"server":{"onPos":{"x":{"option":"required","type":"uInt32","tag":1},'
          b'"y":{"option":"required","type":"sInt32","tag":2},"name":{"option":"optional",'
          b'"type":"string","tag":3},"path":{"option":"repeated","type":"uInt32","tag":4},'
          b'"__messages":{},"__tags":{"1":"x","2":"y","3":"name","4":"path"}}},'
          b'"version":"jtlUgEgNhsJZ2b9aaqdKrg=="}')

# ---- message layer: section 11.1 vectors, the transcript, and malformed ones ----------

MESSAGES = {
    "request-id1-route": msg(0x00, 1, ENTRY, body=UID),
    "request-id1-code1": msg(0x01, 1, code=1, body=UID),
    "response-id1": msg(0x04, 1, body=OK_MSG),
    "notify": msg(0x02, route=b"chat.chatHandler.send", body=b'{"content":"hi"}'),
    "push-onchat": msg(0x06, route=b"onChat", body=CHAT),
    "push-code5": msg(0x07, code=5, body=CHAT),
    "request-id300": msg(0x00, 300, ENTRY, body=UID),
    "response-id268435456-empty": h("04 80 80 80 80 01"),
    "response-id2147483647-empty": h("04 ff ff ff ff 07"),
    "response-id4294967295": h("04 ff ff ff ff 0f 7b 7d"),
    "request-empty-route": msg(0x00, 1, b"", body=UID),
    "request-id2-empty-object": msg(0x00, 2, ENTRY, body=b"{}"),
    "response-gzip-flag": h("14 01 7b 22 75 69 64 22 3a 22 75 31 22 7d"),
    "push-utf8-body": msg(0x06, route=b"onChat", body='{"msg":"你好"}'.encode()),
    "request-code999": h("01 ae 02 03 e7 7b 7d"),
    "request-protobuf-body": h("01 02 00 03 08 ac 02 10 03 1a 02 61 62 20 02 01 02"),
    "push-protobuf-onpos": msg(0x06, route=b"onPos",
                               body=h("08 ac 02 10 03 1a 01 70 20 03 01 02 ac 02")),
    "request-nodots": msg(0x00, 8, b"nodots", body=b"{}"),
    "request-utf8-route": msg(0x00, 9, "a.b.é😀".encode(), body=b"{}"),
    "request-noncanonical-id": h("00 81 00 01 61 7b 7d"),
    # malformed (section 9 and the decoder's limits)
    "bad-id-6-bytes": h("04 80 80 80 80 80 01 7b 7d"),
    "bad-id-over-uint32": h("04 80 80 80 80 10"),
    "bad-route-past-end": h("00 01 05 61 62"),
    "bad-route-overlong": h("00 01 02 c0 80 7b 7d"),
    "bad-route-surrogate": h("06 03 ed a0 80 7b 7d"),
    "bad-route-truncated-utf8": h("06 02 e4 bd"),
    "bad-compressed-response": h("05 01 7b 7d"),
    "bad-type-4": h("08 01 00"),
    "bad-high-bits": h("26 00 7b 7d"),
    "empty": b"",
}

# ---- package layer: byte 0 body limit (>= 240: default), byte 1 chunk seed, stream ----

C2S = [
    pkg(1, HS_PROBE), pkg(2), pkg(4, MESSAGES["request-id1-route"]),
    pkg(4, h("01 02 00 04") + b'{"content":"hi"}'),
    pkg(4, msg(0x00, 3, b"chat.chatHandler.fail", body=b"{}")),
    pkg(4, MESSAGES["request-nodots"]),
    pkg(4, msg(0x02, route=b"chat.chatHandler.send", body=b'{"content":"via notify"}')),
    pkg(4, msg(0x00, 300, ENTRY, body=b"{}")), pkg(4, h("01 ae 02 03 e7 7b 7d")), pkg(3),
]
S2C = [
    pkg(1, REPLY_DICT), pkg(3), pkg(4, msg(0x04, 1, body=OK_MSG)),
    pkg(4, msg(0x04, 2, body=b'{"code":200}')),
    pkg(4, msg(0x07, code=8, body=b'{"msg":"hi","from":"u1"}')),
    pkg(4, msg(0x04, 3, body=b'{"code":500}')), pkg(4, msg(0x04, 9, body=b"{}")),
    pkg(5, b'{"reason":"kick"}'),
]


def stream(limit, seed, *pkgs):
    return bytes([limit, seed]) + b"".join(pkgs)


DEF = 0xFF
PACKAGES = {
    "hs-unity": stream(DEF, 0, pkg(1, HS_UNITY)),
    "hs-jsclient": stream(DEF, 1, pkg(1, HS_JS)),
    "hs-libpomelo2": stream(DEF, 2, pkg(1, HS_LIB)),
    "hs-reply-heartbeat": stream(DEF, 3, pkg(1, b'{"code":200,"sys":{"heartbeat":3}}')),
    "hs-error-500-501": stream(DEF, 4, pkg(1, b'{"code":500}'), pkg(1, b'{"code":501}')),
    "ack-heartbeat": stream(DEF, 5, pkg(2), pkg(3)),
    "kick": stream(DEF, 6, pkg(5, b'{"reason":"kick"}')),
    "request-route": stream(DEF, 7, pkg(4, MESSAGES["request-id1-route"])),
    "request-code": stream(DEF, 8, pkg(4, MESSAGES["request-id1-code1"])),
    "response": stream(DEF, 9, pkg(4, MESSAGES["response-id1"])),
    "notify": stream(DEF, 10, pkg(4, MESSAGES["notify"])),
    "push": stream(DEF, 11, pkg(4, MESSAGES["push-onchat"])),
    "batch-two-pushes": stream(DEF, 12, pkg(4, msg(0x06, route=b"onChat", body=b'{"a":1}')),
                               pkg(4, msg(0x06, route=b"onChat", body=b'{"a":2}'))),
    "transcript-c2s": stream(DEF, 13, *C2S),
    "transcript-s2c": stream(DEF, 31, *S2C),
    "transcript-c2s-small-limit": stream(64, 17, *C2S),
    "header-70000": stream(DEF, 14, h("04 01 11 70") + b"\x00" * 16),
    "header-ceiling": stream(DEF, 15, h("04 ff ff ff")),
    "limit-exact": stream(2, 16, pkg(4, b"{}"), pkg(4, b"{}x")),
    "bad-type-0": stream(DEF, 18, pkg(3), h("00 00 00 00")),
    "bad-type-6": stream(DEF, 19, pkg(2), h("06 00 00 02 7b 7d")),
    "bad-type-ff": stream(DEF, 20, h("ff ff ff ff")),
    "http-request": stream(DEF, 21, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "partial-header": stream(DEF, 22, pkg(3), h("04 00")),
    "partial-body": stream(DEF, 23, pkg(4, MESSAGES["push-onchat"])[:20]),
    "data-bad-messages": stream(DEF, 24, pkg(4, MESSAGES["bad-id-6-bytes"]),
                                pkg(4, MESSAGES["bad-route-overlong"]),
                                pkg(4, MESSAGES["bad-compressed-response"]), pkg(4)),
    "data-gzip-flag": stream(DEF, 25, pkg(4, MESSAGES["response-gzip-flag"])),
    "empty-stream": stream(DEF, 26),
}

# ---- handshake bodies ---------------------------------------------------------------

HANDSHAKES = {
    "unity": HS_UNITY,
    "jsclient": HS_JS,
    "libpomelo2": HS_LIB,
    "probe-tcp": HS_PROBE,
    "jsclient-user": HS_JS_USER,
    "libpomelo2-cached": HS_LIB_CACHED,
    "jsclient-rsa": (b'{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{"rsa_n":"a5f3",'
                     b'"rsa_e":"10001"},"protoVersion":0}}'),
    "no-sys": b'{"user":{}}',
    "sys-false": b'{"sys":false}',
    "sys-zero": b'{"sys":0}',
    "sys-empty-string": b'{"sys":""}',
    "sys-null": b'{"sys":null}',
    "sys-true": b'{"sys":true}',
    "not-json": b"not json",
    "top-level-array": b'[{"sys":{}}]',
    "top-level-string": b'"sys"',
    "empty": b"",
    "trailing-comma": b'{"sys":{},}',
    "big-numbers": b'{"sys":{"protoVersion":123456789012345678901234567890},"user":{"n":1e400}}',
    "lone-surrogate": b'{"sys":{"type":"\\ud800"}}',
    "nul-escape": b'{"sys":{"type":"a\\u0000b"},"\\u0000":1}',
    "unicode": '{"sys":{"type":"你好","version":"😀"}}'.encode(),
    "duplicate-keys": b'{"sys":0,"sys":{"type":"t"}}',
    "whitespace": b' \r\n\t{ "sys" : { "type" : "t" } } \n',
    "depth-64": b'{"sys":' + b"[" * 63 + b"]" * 63 + b"}",
    "depth-65": b'{"sys":' + b"[" * 64 + b"]" * 64 + b"}",
    "long-fields": b'{"sys":{"type":"' + b"t" * 100 + b'","dictVersion":"' + b"d" * 100 + b'"}}',
}

# ---- handshake replies, as the client decodes them (fuzz_client_reply) --------------

# The section 11.2 reply of Pomelo 2.2.7 with dictionary and protobuf, byte for byte.
ONPOS = (b'{"x":{"option":"required","type":"uInt32","tag":1},"y":{"option":"required",'
         b'"type":"sInt32","tag":2},"name":{"option":"optional","type":"string","tag":3},'
         b'"path":{"option":"repeated","type":"uInt32","tag":4},"__messages":{},'
         b'"__tags":{"1":"x","2":"y","3":"name","4":"path"}}')
REPLY_POMELO = (REPLY_DICT[:-2] + b',"protos":{"server":{"onPos":' + ONPOS + b'},"client":'
                b'{"chat.chatHandler.pos":' + ONPOS + b'},"version":"jtlUgEgNhsJZ2b9aaqdKrg=="},'
                b'"useProto":true}}')
assert len(REPLY_POMELO) == 1452

# What build/atoll (game echo) answers: full dictionary, then to a client that has it.
ATOLL_ROUTES = [b"echo.broadcast", b"echo.echo", b"echo.kick", b"echo.push", b"gate.entry",
                b"onPush", b"onChat"]
ATOLL_DICT = json_obj([(r, b"%d" % (i + 1)) for i, r in enumerate(ATOLL_ROUTES)])
ATOLL_C2R = json_obj([(b"%d" % (i + 1), b'"%s"' % r) for i, r in enumerate(ATOLL_ROUTES)])


def reply(sys_body, code=b"200"):
    return b'{"code":' + code + b',"sys":{' + sys_body + b"}}"


REPLIES = {
    "atoll-dict": reply(b'"heartbeat":3,"dict":' + ATOLL_DICT + b',"routeToCode":' + ATOLL_DICT +
                        b',"codeToRoute":' + ATOLL_C2R +
                        b',"dictVersion":"kskyedCBnMtKTyzcZvLvwA==","useDict":true'),
    "atoll-dict-cached": reply(b'"heartbeat":3,"useDict":true'),
    "atoll-no-dict": reply(b'"heartbeat":10'),
    "atoll-empty-dict": reply(b'"heartbeat":3,"dict":{},"routeToCode":{},"codeToRoute":{},'
                              b'"dictVersion":"mZFLkyvTelC5g8XnyQrpOw==","useDict":true'),
    "pomelo-dict-protos": REPLY_POMELO,
    "pomelo-no-heartbeat": reply(b""),
    "code-500": b'{"code":500}',
    "code-501": b'{"code":501}',
    "code-string": b'{"code":200,"code":"200","sys":{"heartbeat":3}}',  # the last key wins
    "missing-sys": b'{"code":200}',
    "sys-array": b'{"code":200,"sys":[{"heartbeat":3}]}',
    "dict-only": reply(b'"dict":{"chat.chatHandler.send":4,"onChat":8}'),
    "dict-fallback": reply(b'"routeToCode":[1],"dict":{"a.b":1},"codeToRoute":"x"'),
    "dict-not-object": reply(b'"dict":[["a.b",1]],"routeToCode":null,"codeToRoute":[1,2]'),
    "huge-codes": reply(b'"routeToCode":{"a":0,"b":-1,"c":65535,"d":65536,"e":4294967297,'
                        b'"f":1.5,"g":"3","h":9223372036854775807,"i":true},'
                        b'"codeToRoute":{"0":"x","65535":"y","65536":"z"," 7":"w","+8":"v",'
                        b'"09":"u","9a":"t","-1":"s","":"r","99999999999999999999":"q","10":3}'),
    "duplicate-codes": reply(b'"routeToCode":{"a":1,"b":1,"c":2},'
                             b'"codeToRoute":{"2":"d","1":"e","3":"f","3":"g"}'),
    "duplicate-routes": reply(b'"routeToCode":{"a":5,"b":2},"codeToRoute":{"1":"a","3":"b",'
                              b'"4":"a","9":"c"}'),
    "many-codes-descending": reply(b'"routeToCode":' + json_obj(
        [(b"r%d" % i, b"%d" % (200 - i)) for i in range(100)])),
    "escaped-routes": reply(b'"routeToCode":{"a\"b":1,"\u00e9":2,"\ud83d\ude00":3,'
                            b'"":4},"codeToRoute":{"5":"a\\b","6":"x\/y"}'),
    "nul-in-route": reply(b'"codeToRoute":{"1":"a\u0000b"}'),
    "not-json": b"not json",
    "empty": b"",
    "top-level-array": b'[{"code":200,"sys":{}}]',
    "deep-nesting": reply(b'"heartbeat":3,"dict":{"a":1,"x":' + b"[" * 2100 + b"]" * 2100 +
                          b"}"),
    "heartbeat-0": reply(b'"heartbeat":0,"dict":{"a":1}'),
    "heartbeat-minus-1": reply(b'"heartbeat":-1'),
    "heartbeat-1e9": reply(b'"heartbeat":1e9'),
    "heartbeat-string": reply(b'"heartbeat":"3"'),
    "heartbeat-limits": reply(b'"heartbeat":86399.99,"dict":{"a":1}'),
}

# ---- JSON texts (and non-JSON) --------------------------------------------------------

JSONS = {
    "object": b'{"uid":"u1"}',
    "response": OK_MSG,
    "chat": CHAT,
    "empty-object": b"{}",
    "empty-array": b"[]",
    "numbers": b"[0,-0,1.5e10,-1.0E-2,1E+2,123456789012345678901234567890,1e400,-1e-400]",
    "literals": b"[true,false,null]",
    "escapes": b'["\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\ud83d\\ude00"]',
    "lone-surrogates": b'["\\ud800","\\udc00","\\u0000"]',
    "utf8": '{"msg":"你好 😀 é"}'.encode(),
    "scalar-string": b'"s"',
    "scalar-number": b" 42 ",
    "handshake-reply-dict": REPLY_DICT,
    "protos": PROTOS,
    "depth-64": b"[" * 64 + b"]" * 64,
    "depth-65": b"[" * 65 + b"]" * 65,
    "depth-mixed": b'{"a":[{"b":[{"c":[]}]}]}',
    "bad-trailing-comma": b"[1,2,]",
    "bad-leading-zero": b"[01]",
    "bad-escape": b'"\\x41"',
    "bad-control-char": b'"a\x01b"',
    "bad-not-json": b"not json",
    "bad-overlong-utf8": b'"\xc0\x80"',
    "bad-surrogate-utf8": b'"\xed\xa0\x80"',
    "bad-truncated-utf8": b'"\xe4\xbd"',
    "bad-bom": b"\xef\xbb\xbf{}",
    "bad-unclosed": b'{"a":[1,{"b":"c"',
    "protobuf-bytes": h("08 ac 02 10 03 1a 02 61 62 20 02 01 02"),
    "utf8-edges": "\u007f\u0080\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff".encode(),
    "empty": b"",
}

# ---- wire frames (src/node/wire.h): mail between nodes ---------------------------------
# Written from the format as wire.h states it, independently of wire.c's encoder, so the
# replay (ctest fuzz.wire) also checks that the two agree. The kind byte is the index in
# atoll__mail_type (wire_test pins the numbers); fields go in bit order.

WIRE_KINDS = ["stop", "bind", "bound", "unbind", "kick", "broadcast", "sess_out", "sess_push",
              "area_create", "area_enter", "area_req", "area_leave", "area_fence",
              "area_move_in", "area_call", "area_reply", "sess_route", "link", "dir_answer",
              "dir_invalidate", "area_resume"]
WIRE_FIELDS = ["session", "request", "flags", "route", "status", "worker", "area", "area_old",
               "call_id", "type", "uid", "reason", "from", "value", "shared", "sessions",
               "data", "payload", "epoch"]


def le(v, n):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def wire_field(name, v):
    if name in ("session", "area", "call_id", "epoch"):
        return le(v, 8)
    # An address is u16 worker then u16 node: a worker given as one little-endian u32
    # below 65536 is that worker of node 0, the node the fuzz target decodes as.
    if name in ("request", "status", "worker"):
        return le(v, 4)
    if name in ("route", "type"):
        return le(v, 2)
    if name == "flags":  # (bits: 1 reply, 2 forwarded; msg_type)
        return bytes(v)
    if name == "area_old":  # (area_old, worker_old)
        return le(v[0], 8) + le(v[1], 4)
    # A counted field is its bytes (or ids), or (count, bytes) for a count that lies.
    count, v = v if isinstance(v, tuple) else (len(v), v)
    if name == "uid":
        return le(count, 2) + v
    if name in ("reason", "from"):
        return bytes([count]) + v
    if name == "sessions":
        return le(count, 4) + b"".join(le(x, 8) for x in v)
    return le(count, 4) + v  # value, shared, data, payload


def cut(frame, n):
    """The frame's record cut to its first n bytes, with the length saying so."""
    return le(n, 4) + frame[4:4 + n]


def wire(kind, fields, version=1, extra_bits=0, trailing=b""):
    """One frame: u32 length, then the record. fields maps a field name to its value;
    an int kind is written as is (for kinds that do not exist)."""
    bits, body = extra_bits, b""
    for i, name in enumerate(WIRE_FIELDS):
        if name in fields:
            bits |= 1 << i
            body += wire_field(name, fields[name])
    k = kind if isinstance(kind, int) else WIRE_KINDS.index(kind)
    rec = bytes([version, k]) + le(bits, 4) + body + trailing
    return le(len(rec), 4) + rec


W_BIND = {"session": 0x100000001, "request": 42, "flags": (1, 0), "uid": b"player-1",
          "value": b'{"uid":"player-1","token":"t"}'}
W_EVERY = {"session": 1, "request": 2, "flags": (3, 255), "route": 3, "status": -4,
           "worker": 3, "area": 5, "area_old": (6, 3), "call_id": 7, "type": 2,
           "uid": b"u" * 128, "reason": b"r" * 47, "from": b"f" * 64,
           "value": b'{"k":[true,false,null,1.5,-7,"\\u00e9"]}', "shared": b"shared",
           "sessions": [8, 9], "data": b"area request body", "payload": b"payload",
           "epoch": 2**64 - 1}
WIRE_VALID = {
    "bind": wire("bind", W_BIND),
    "bound": wire("bound", dict(W_BIND, flags=(0, 0), request=0)),
    "unbind": wire("unbind", {"session": 3, "uid": b"u"}),
    "kick": wire("kick", {"session": 77, "reason": b"kicked by the game"}),
    "broadcast": wire("broadcast", {"shared": bytes([4, 0, 0, 5, 6, 2]) + b"on\x00"}),
    "sess-out": wire("sess_out", {"data": le(1, 8) + le(3, 4) + b"a\x00c"}),
    "sess-out-no-fields": wire("sess_out", {}),
    "sess-push": wire("sess_push", {"shared": b"push bytes", "sessions": [1, 2**64 - 1, 0]}),
    "area-create": wire("area_create", {"worker": 1, "call_id": 2, "type": 1,
                                        "from": b"room:1", "value": b'{"size":4}'}),
    "dir-answer": wire("dir_answer", {"status": -7, "worker": 2, "area": (1 << 52) | 77,
                                      "call_id": 1, "type": 2, "from": b"room:1", "epoch": 9}),
    "dir-answer-enoent": wire("dir_answer", {"status": -6, "call_id": 1, "from": b"nope"}),
    "dir-invalidate": wire("dir_invalidate", {"from": b"room:1", "epoch": 9}),
    "area-enter": wire("area_enter", {"session": 5, "request": 6, "flags": (1, 0), "area": 9,
                                      "type": 2, "uid": b"p", "from": b"room:lobby",
                                      "value": b"{}"}),
    "area-req": wire("area_req", {"session": 5, "request": 7, "flags": (2, 1), "route": 65535,
                                  "area": 2, "data": b'{"x":1,"y":-2}'}),
    "area-req-notify": wire("area_req", {"session": 5, "flags": (0, 1), "route": 3, "area": 2,
                                         "data": b"{}"}),
    "area-leave": wire("area_leave", {"session": 8, "area": 3}),
    "area-fence": wire("area_fence", {"session": 8, "area": 3}),
    "area-move-in": wire("area_move_in", {"session": 9, "area": 4, "area_old": (3, 1),
                                          "payload": b'player-9 {"hp":3}'}),
    "area-call": wire("area_call", {"route": 12, "worker": 0, "area": 5, "call_id": 99,
                                    "from": b"area-1", "value": b'[1,"two",{"three":3}]'}),
    "area-call-send": wire("area_call", {"worker": 3, "area": 5}),
    "area-reply": wire("area_reply", {"status": -110, "call_id": 99, "value": b'{"code":500}'}),
    "sess-route": wire("sess_route", {"session": 10, "worker": 3, "area": 6, "area_old": (5, 2),
                                      "type": 2, "data": bytes([4, 0, 0, 3, 4, 1]) + b"{}"}),
    "area-resume": wire("area_resume", {"session": 11, "area": 7, "uid": b"alice",
                                        "data": bytes(range(16)), "status": 1}),
    "every-field": wire("area_move_in", W_EVERY),
}
WIRES = dict(WIRE_VALID)
WIRES.update({
    "stream-every-kind": b"".join(WIRE_VALID.values()),
    # JSON null with a space: decodes to no value, like "null" (it used not to round-trip).
    "value-null-text": wire("area_reply", {"call_id": 1, "value": b" null"}),
    "truncated": WIRE_VALID["every-field"][:100],  # incomplete: its length says more
    "bad-version": wire("kick", {"session": 1}, version=2),
    "bad-kind-stop": wire("stop", {}),
    "bad-kind-link": wire("link", {"data": wire("kick", {"session": 1})}),
    "bad-kind-21": wire(21, {}),
    "bad-resume-without-uid": wire("area_resume", {"session": 1, "area": 1, "data": b"n"}),
    "bad-field-bit-19": wire("kick", {"session": 1}, extra_bits=1 << 19),
    "bad-invalidate-without-epoch": wire("dir_invalidate", {"from": b"room:1"}),
    "bad-create-without-id": wire("area_create", {"type": 1}),
    "bad-bind-without-uid": wire("bind", {"session": 1}),
    "bad-session-zero": wire("kick", {"session": 0}),
    "bad-uid-empty": wire("unbind", {"session": 1, "uid": b""}),
    "bad-uid-nul": wire("unbind", {"session": 1, "uid": b"a\x00b"}),
    "bad-uid-129": wire("unbind", {"session": 1, "uid": b"u" * 129}),
    "bad-reason-48": wire("kick", {"session": 1, "reason": b"r" * 48}),
    "bad-from-65": wire("area_call", {"worker": 0, "area": 1, "from": b"f" * 65}),
    "bad-type-3": wire("sess_route", {"session": 1, "type": 3}),
    "bad-worker-4": wire("area_call", {"worker": 4, "area": 1}),
    "bad-worker-old-4": wire("sess_route", {"session": 1, "area_old": (2, 4)}),
    "bad-sessions-over-max": wire("sess_push", {"shared": b"p",
                                                "sessions": ((1 << 20) + 1, [1])}),
    "bad-record-empty": le(0, 4),
    "bad-record-5-bytes": cut(WIRE_VALID["kick"], 5),
    "bad-record-ends-in-fixed-fields": cut(WIRE_VALID["every-field"], 20),
    "bad-record-ends-in-uid-count": cut(WIRE_VALID["every-field"], 6 + 54 + 1),
    "bad-record-ends-before-data-count": wire("sess_out", {}, extra_bits=1 << 16),
})
# Each count one more than the record holds, and the next frame right behind (which must
# not be read as the rest of this one).
for name, kind, fields in [
        ("uid", "unbind", {"session": 1, "uid": (3, b"ab")}),
        ("reason", "kick", {"session": 1, "reason": (3, b"ab")}),
        ("from", "area_call", {"worker": 0, "area": 1, "from": (3, b"ab")}),
        ("value", "area_reply", {"call_id": 1, "value": (3, b"{}")}),
        ("shared", "broadcast", {"shared": (3, b"ab")}),
        ("sessions", "sess_push", {"shared": b"p", "sessions": (2, [1])}),
        ("data", "sess_out", {"data": (5, b"body")}),
        ("payload", "area_move_in", {"session": 1, "area": 1, "payload": (3, b"ab")})]:
    WIRES["bad-%s-past-record" % name] = wire(kind, fields) + wire("kick", {"session": 1})
WIRES.update({
    "bad-frame-max": le((16 << 20) + 1, 4) + bytes([1, 4]),
    "bad-trailing-byte": wire("kick", {"session": 1}, trailing=b"\x00"),
    "bad-value-not-json": wire("area_reply", {"call_id": 1, "value": b'{"a":}'}),
    "bad-flags-bit": wire("area_req", {"session": 1, "flags": (4, 0), "area": 1}),
    "bad-payload-nul": wire("area_move_in", {"session": 1, "area": 1, "payload": b"a\x00"}),
})


# ---- resume tokens (src/area/token.h), under the fuzz target's fixed key 00 01 .. 1f ----

def resume_token(uid, nonce, key=bytes(range(32))):
    import hashlib
    import hmac
    mac = hmac.new(key, nonce + uid, hashlib.sha256).digest()[:16]
    return b"1" + nonce.hex().encode() + mac.hex().encode() + uid


NONCE = bytes(range(16))
TOKENS = {
    "ok-alice": resume_token(b"alice", NONCE),
    "ok-utf8-uid": resume_token("joueur-é".encode(), NONCE),
    "ok-uid-128": resume_token(b"u" * 128, b"\xff" * 16),
    "ok-digits": resume_token(b"42", bytes(16)),
    "bad-uid-129": resume_token(b"u" * 129, NONCE),
    "bad-guest": resume_token(b"~0123456789abcdef", NONCE),
    "bad-uid-nul": resume_token(b"a\x00b", NONCE),
    "bad-version": b"2" + resume_token(b"alice", NONCE)[1:],
    "bad-upper-hex": resume_token(b"alice", NONCE)[:1] + resume_token(b"alice", NONCE)[1:65].upper() + b"alice",
    "bad-mac": resume_token(b"alice", NONCE)[:64] + b"0alice",
    "bad-other-key": resume_token(b"alice", NONCE, key=b"k" * 32),
    "bad-head-only": resume_token(b"alice", NONCE)[:65],
    "bad-not-hex": b"1" + b"g" * 64 + b"alice",
    "empty": b"",
}


# ---- jwt: login tokens (fuzz_jwt.c) -----------------------------------------------------
# Byte 0 is the target's options (bits 0-1: 0 token as sent, 1 re-signed by the target,
# 2 "header NUL payload" encoded and signed by the target, 3 payload under the usual
# header; bit 2: the node names the audience "game"; bits 3-4: leeway 0, 1, 60, 3600 s).
# Tokens of mode 0 are signed here with the target's secret (Python's hmac, apart from
# both the node's decoder and the C minter), so the corpus also checks that they agree.
JWT_SECRET = b"fuzz-jwt-secret-0123456789abcdef"
JWT_NOW = 1700000000
RAW, RESIGN, PARTS, PAYLOAD = 0, 1, 2, 3
AUD, LEEWAY_1, LEEWAY_60, LEEWAY_3600 = 4, 8, 16, 24


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jws(header, payload, secret=JWT_SECRET):
    signed = b64u(header) + b"." + b64u(payload)
    return signed + b"." + b64u(hmac.new(secret, signed, hashlib.sha256).digest())


HS256 = b'{"alg":"HS256","typ":"JWT"}'
GOOD = b'{"sub":"alice","exp":%d}' % (JWT_NOW + 60)
A1 = (b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      b".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
      b".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")


def jwt(opt, token):
    return bytes([opt]) + token


def with_sig_char(token, c):
    return token[:-1] + c


JWTS = {
    "good": jwt(RAW, jws(HS256, GOOD)),
    "good-no-typ": jwt(RAW, jws(b'{"alg":"HS256"}', GOOD)),
    "good-kid-and-claims": jwt(RAW, jws(b'{"kid":"k1","alg":"HS256","typ":"JWT"}',
                                        b'{"iss":"web","iat":1699999990,"jti":"j","sub":"bob",'
                                        b'"exp":1700000060,"nbf":1699999990,"x":{"y":[1,2]}}')),
    "good-aud-string": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":"game"}')),
    "good-aud-array": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":["web","game"]}')),
    "good-exp-real": jwt(RAW, jws(HS256, b'{"sub":"a","exp":1.70000006e9}')),
    "good-sub-128": jwt(RAW, jws(HS256, b'{"sub":"' + b"u" * 128 + b'","exp":1700000060}')),
    "good-sub-utf8": jwt(RAW, jws(HS256, '{"sub":"\u00e9l\u00e8ve","exp":1700000060}'.encode())),
    "leeway-expired-30s": jwt(RAW | LEEWAY_60, jws(HS256, b'{"sub":"a","exp":1699999970}')),
    "leeway-nbf-30s": jwt(RAW | LEEWAY_60, jws(HS256, b'{"sub":"a","exp":1700000060,"nbf":1700000030}')),
    "rfc7515-a1": jwt(RAW, A1),
    "rfc7515-a1-resigned": jwt(RESIGN, A1),
    "bad-expired": jwt(RAW, jws(HS256, b'{"sub":"a","exp":1700000000}')),
    "bad-nbf": jwt(RAW | LEEWAY_1, jws(HS256, b'{"sub":"a","exp":1700000060,"nbf":1700000002}')),
    "bad-aud-other": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":"web"}')),
    "bad-aud-missing": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060}')),
    "bad-aud-unasked": jwt(RAW, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":"game"}')),
    "bad-aud-types": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":["game",1]}')),
    "bad-aud-many": jwt(RAW | AUD, jws(HS256, b'{"sub":"a","exp":1700000060,"aud":[' +
                                       b",".join(b'"a%d"' % i for i in range(33)) + b"]}")),
    "bad-sub-missing": jwt(RAW, jws(HS256, b'{"exp":1700000060}')),
    "bad-sub-guest": jwt(RAW, jws(HS256, b'{"sub":"~0000000000000001","exp":1700000060}')),
    "bad-sub-129": jwt(RAW, jws(HS256, b'{"sub":"' + b"u" * 129 + b'","exp":1700000060}')),
    "bad-sub-number": jwt(RAW, jws(HS256, b'{"sub":42,"exp":1700000060}')),
    "bad-sub-nul": jwt(RAW, jws(HS256, b'{"sub":"a\u0000b","exp":1700000060}')),
    "bad-sub-twice": jwt(RAW, jws(HS256, b'{"sub":"a","sub":"admin","exp":1700000060}')),
    "bad-exp-missing": jwt(RAW, jws(HS256, b'{"sub":"a"}')),
    "bad-exp-string": jwt(RAW, jws(HS256, b'{"sub":"a","exp":"1800000000"}')),
    "bad-alg-none": jwt(RAW, b64u(b'{"alg":"none"}') + b"." + b64u(GOOD) + b"."),
    "bad-alg-none-signed": jwt(RAW, jws(b'{"alg":"none"}', GOOD)),
    "bad-alg-hs384": jwt(RAW, jws(b'{"alg":"HS384","typ":"JWT"}', GOOD)),
    "bad-alg-rs256": jwt(RAW, jws(b'{"alg":"RS256"}', GOOD)),
    "bad-alg-twice": jwt(RAW, jws(b'{"alg":"none","alg":"HS256"}', GOOD)),
    "bad-typ": jwt(RAW, jws(b'{"alg":"HS256","typ":"JWS"}', GOOD)),
    "bad-crit": jwt(RAW, jws(b'{"alg":"HS256","crit":["b64"],"b64":false}', GOOD)),
    "bad-secret": jwt(RAW, jws(HS256, GOOD, b"another secret, 32 bytes long...")),
    "bad-sig-cut": jwt(RAW, jws(HS256, GOOD)[:-1]),
    "bad-sig-noncanonical": jwt(RAW, with_sig_char(jws(HS256, GOOD), b"Z")),
    "bad-sig-plus": jwt(RAW, jws(HS256, GOOD)[:-2] + b"+A"),
    "bad-padding": jwt(RAW, b64u(HS256) + b"==." + b64u(GOOD) + b".AAAA"),
    "bad-header-not-json": jwt(RAW, jws(b"not json", GOOD)),
    "bad-payload-array": jwt(RAW, jws(HS256, b"[1,2]")),
    "bad-payload-deep": jwt(RAW, jws(HS256, b'{"sub":"a","exp":1700000060,"x":' + b"[" * 16 +
                                     b"]" * 16 + b"}")),
    "bad-header-long": jwt(RAW, jws(b'{"alg":"HS256","kid":"' + b"k" * 500 + b'"}', GOOD)),
    "bad-too-long": jwt(RAW, jws(HS256, b'{"sub":"a","exp":1700000060,"p":"' + b"x" * 3020 + b'"}')),
    "bad-shape-two": jwt(RAW, b"eyJhbGciOiJIUzI1NiJ9.e30"),
    "bad-shape-four": jwt(RAW, jws(HS256, GOOD) + b".AAAA"),
    "bad-shape-empty": jwt(RAW, b""),
    "bad-shape-dots": jwt(RAW, b".."),
    "resigned-payload-changed": jwt(RESIGN, b64u(HS256) + b"." +
                                    b64u(b'{"sub":"mallory","exp":1700000060}') + b".AAAA"),
    "parts-good": jwt(PARTS, HS256 + b"\x00" + GOOD),
    "parts-alg-none": jwt(PARTS, b'{"alg":"none"}\x00' + GOOD),
    "parts-aud": jwt(PARTS | AUD | LEEWAY_3600,
                     HS256 + b'\x00{"sub":"a","exp":1699999000,"nbf":1700003000,"aud":["game"]}'),
    "payload-good": jwt(PAYLOAD, GOOD),
    "payload-claims": jwt(PAYLOAD | AUD, b'{"sub":"z","exp":1e300,"nbf":-1e300,"aud":"game",'
                                         b'"iat":0,"extra":[null,true,{"k":"v"}]}'),
    "payload-dup": jwt(PAYLOAD, b'{"sub":"a","exp":1700000060,"exp":1}'),
    "payload-not-json": jwt(PAYLOAD, b'{"sub":"a",'),
}


# ---- link: node links (fuzz_link.c, src/cluster/link_codec.c) --------------------------
# Byte 0 is the target's mode (bits 0-1: 0 HELLO, 1 chunks, 2 records, 3 round trip) and
# its option (HELLO: bit 2 re-MAC; chunks: bit 2 the responder sends; records: bits 2-4
# the node's workers). HELLOs are made here after the layout of link_codec.c's top
# comment, with the target's secret, BLAKE2b and HMAC-SHA-512-256 from Python's hashlib
# (apart from libsodium), so an initiator's HELLO made here must be taken by the
# codec's responder, and the replay checks that the two agree.
LINK_SECRET = b"fuzz-link-secret-0123456789abcdef"
LINK_KEY = hashlib.blake2b(b"atoll-link-v1" + LINK_SECRET, digest_size=32).digest()
LINK_PK = hashlib.sha256(b"a public key for the corpus").digest()  # not of small order
HELLO_AS_IS, HELLO_REMAC = 0x00, 0x04
CHUNKS_I, CHUNKS_R = 0x01, 0x05
RECORDS = 0x02
ROUND_TRIP = 0x03


def link_hello(role, node, name, pk=LINK_PK, prefix=b"", key=LINK_KEY, version=1,
               magic=b"ATOLLNK1"):
    body = magic + bytes([version, role]) + le(node, 2) + bytes([len(name) & 255]) + name + pk
    return body + hmac.new(key, prefix + body, hashlib.sha512).digest()[:32]


def records(nworkers):
    return RECORDS | (nworkers << 2)


def rec_mail(worker, frame):
    return b"\x01" + le(worker, 2) + frame


def rec_ping(kind, t):
    return bytes([kind]) + le(t, 8)


# Chunk operations (fuzz_link.c, mode 1): the low 2 bits of an op byte say what, the
# rest is its argument.
def op_seal(data):
    assert len(data) < 64
    return bytes([len(data) << 2]) + data


def op_raw(data):
    assert len(data) < 64
    return bytes([len(data) << 2 | 1]) + data


def op_flip(bit, at):
    return bytes([bit << 2 | 2]) + le(at, 2)


OP_REPLAY = bytes([1 << 2 | 3])


def op_cut(n):
    return bytes([(2 * n) << 2 | 3])


# Round-trip records (mode 3): a rule byte (kind 1 + b % 3, direction bit 2, end of
# chunk bit 3), then a MAIL's worker byte, length byte and body, or a PING's u64.
def rule_byte(kind, direction, last):
    return next(b for b in range(256)
                if 1 + b % 3 == kind and (b >> 2) & 1 == direction and (b >> 3) & 1 == last)


def rt_mail(direction, last, worker, body):
    return bytes([rule_byte(1, direction, last), worker, len(body)]) + body


def rt_ping(kind, direction, last, t):
    return bytes([rule_byte(kind, direction, last)]) + le(t, 8)


KICK_FRAME = WIRE_VALID["kick"]
PING_9 = rec_ping(2, 9)
HELLO_I = link_hello(1, 7, b"alpha")
LINKS = {
    "hello-initiator": bytes([HELLO_AS_IS]) + HELLO_I,
    "hello-initiator-then-header": bytes([HELLO_AS_IS]) + HELLO_I + bytes(24),
    "hello-initiator-longest": bytes([HELLO_AS_IS]) + link_hello(1, 4095, b"n" * 63),
    "hello-initiator-remac": bytes([HELLO_REMAC]) + link_hello(1, 1, b"a", key=bytes(32)),
    "hello-responder-remac": bytes([HELLO_REMAC]) + link_hello(2, 9, b"beta", key=bytes(32)),
    "hello-cut": bytes([HELLO_AS_IS]) + HELLO_I[:40],
    # Incomplete after each field of the head, which is judged as it comes.
    "hello-prefix-magic": bytes([HELLO_AS_IS]) + HELLO_I[:8],
    "hello-prefix-version": bytes([HELLO_AS_IS]) + HELLO_I[:9],
    "hello-prefix-role": bytes([HELLO_AS_IS]) + HELLO_I[:10],
    "hello-prefix-node": bytes([HELLO_AS_IS]) + HELLO_I[:12],
    "hello-remac-empty": bytes([HELLO_REMAC]),
    "hello-bad-http": bytes([HELLO_AS_IS]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "hello-bad-first-bytes": bytes([HELLO_AS_IS]) + b"GET",
    "hello-bad-magic": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"alpha", magic=b"ATOLLNK2"),
    "hello-bad-version": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"alpha", version=2),
    "hello-bad-role": bytes([HELLO_AS_IS]) + link_hello(3, 7, b"alpha"),
    "hello-bad-node-0": bytes([HELLO_AS_IS]) + link_hello(1, 0, b"alpha"),
    "hello-bad-node-4096": bytes([HELLO_AS_IS]) + link_hello(1, 4096, b"alpha"),
    "hello-bad-name-empty": bytes([HELLO_AS_IS]) + link_hello(1, 7, b""),
    "hello-bad-name-64": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"n" * 64),
    "hello-bad-name-nul": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"al\x00ha"),
    "hello-bad-key-small-order": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"alpha", pk=bytes(32)),
    "hello-bad-other-secret": bytes([HELLO_AS_IS]) + link_hello(1, 7, b"alpha", key=bytes(32)),
    "hello-bad-mac-over-nothing-else": bytes([HELLO_AS_IS]) + link_hello(2, 9, b"beta"),
    "chunks-empty": bytes([CHUNKS_I]),
    "chunks-three": bytes([CHUNKS_I]) + op_seal(PING_9) + op_seal(rec_ping(3, 10) + PING_9) +
    op_seal(b""),
    "chunks-responder": bytes([CHUNKS_R]) + op_seal(PING_9) + op_seal(b"x" * 63),
    "chunks-flipped-bit": bytes([CHUNKS_I]) + op_seal(PING_9) + op_seal(PING_9) +
    op_flip(5, 40),
    "chunks-flipped-length": bytes([CHUNKS_I]) + op_seal(PING_9) + op_flip(3, 0),
    "chunks-replayed": bytes([CHUNKS_I]) + op_seal(PING_9) + OP_REPLAY + op_seal(PING_9),
    "chunks-cut": bytes([CHUNKS_I]) + op_seal(PING_9) + op_seal(PING_9) + op_cut(5),
    "chunks-too-long": bytes([CHUNKS_I]) + op_seal(PING_9) + op_raw(le((17 << 20) + 18, 4)),
    "chunks-longest-length": bytes([CHUNKS_I]) + op_raw(le((17 << 20) + 17, 4)),
    "chunks-shorter-than-a-tag": bytes([CHUNKS_I]) + op_raw(le(16, 4) + bytes(16)),
    "chunks-garbage-then-sealed": bytes([CHUNKS_R]) + op_raw(le(26, 4) + bytes(26)) +
    op_seal(PING_9),
    "records-every-kind": bytes([records(4)]) + rec_mail(1, KICK_FRAME) + PING_9 +
    rec_ping(3, 2**64 - 1),
    "records-empty-frame": bytes([records(4)]) + rec_mail(3, le(0, 4)),
    "records-no-workers": bytes([records(0)]) + rec_mail(0, KICK_FRAME),
    "records-bad-kind": bytes([records(4)]) + PING_9 + b"\x04" + bytes(8),
    "records-bad-worker-4": bytes([records(4)]) + rec_mail(4, KICK_FRAME),
    "records-bad-frame-over-max": bytes([records(4)]) + rec_mail(0, le((16 << 20) + 1, 4)),
    "records-bad-frame-past-end": bytes([records(4)]) + rec_mail(0, le(10, 4) + bytes(9)),
    "records-bad-cut-ping": bytes([records(4)]) + PING_9[:5],
    "records-bad-cut-mail-length": bytes([records(4)]) + rec_mail(0, b"\x00\x00"),
    "records-bad-mail-kind-only": bytes([records(4)]) + b"\x01",
    "records-bad-ping-kind-only": bytes([records(4)]) + b"\x02",
    "records-empty": bytes([records(4)]),
    "round-trip-both-ways": bytes([ROUND_TRIP]) + rt_mail(0, 0, 1, KICK_FRAME[4:]) +
    rt_ping(2, 0, 1, 12345) + rt_ping(3, 1, 0, 12345) + rt_mail(1, 1, 3, b"") +
    rt_mail(0, 1, 2, b"x" * 200),
    "round-trip-empty": bytes([ROUND_TRIP]),
    "round-trip-one-chunk": bytes([ROUND_TRIP]) + rt_ping(2, 0, 0, 1) + rt_ping(2, 0, 0, 2) +
    rt_mail(0, 0, 0, b"abc"),
}


# ---- admin: requests to the admin API's parser (tests/fuzz/fuzz_admin.c) --------------
# "METHOD PATH\nBODY": every route as an operator's client sends it, and each way a
# request is refused (404, 405, 400 for the path's arguments and for the body, 413,
# 414), one case a file.


def admin(method, path, body=b""):
    return method + b" " + path + b"\n" + body


ADMINS = {
    "healthz": admin(b"GET", b"/healthz"),
    "metrics": admin(b"GET", b"/metrics"),
    "status": admin(b"GET", b"/v1/status"),
    "areas": admin(b"GET", b"/v1/areas"),
    "players": admin(b"GET", b"/v1/areas/room-1/players"),
    "players-encoded": admin(b"GET", b"/v1/areas/room%2F1%20caf%C3%a9/players"),
    "move": admin(b"POST", b"/v1/areas/room-1/move", b'{"node":"a2"}'),
    "move-number": admin(b"POST", b"/v1/areas/room-1/move", b' { "node" : 12 } '),
    "pin": admin(b"POST", b"/v1/areas/lobby:1/pin", b'{"node":"area-node.2_b"}'),
    "unpin": admin(b"DELETE", b"/v1/areas/lobby:1/pin"),
    "drain": admin(b"POST", b"/v1/nodes/a2/drain"),
    "drain-stop": admin(b"POST", b"/v1/nodes/a2/drain", b'{"stop":true}'),
    "drain-empty-object": admin(b"POST", b"/v1/nodes/a2/drain", b"{}"),
    "drain-status": admin(b"GET", b"/v1/nodes/4095/drain"),
    "area-64-bytes": admin(b"GET", b"/v1/areas/" + b"%41" * 64 + b"/players"),
    "bad-404-root": admin(b"GET", b"/"),
    "bad-404-trailing-slash": admin(b"GET", b"/v1/status/"),
    "bad-404-encoded-fixed-segment": admin(b"GET", b"/%76%31/status"),
    "bad-404-empty-segment": admin(b"GET", b"/v1/areas//players"),
    "bad-404-extra-segment": admin(b"GET", b"/v1/areas/x/players/y"),
    "bad-405-post-status": admin(b"POST", b"/v1/status", b"{}"),
    "bad-405-put-pin": admin(b"PUT", b"/v1/areas/x/pin"),
    "bad-405-delete-drain": admin(b"DELETE", b"/v1/nodes/a/drain"),
    "bad-400-short-escape": admin(b"GET", b"/v1/areas/room%2/players"),
    "bad-400-nul": admin(b"GET", b"/v1/areas/a%00b/players"),
    "bad-400-quote": admin(b"GET", b"/v1/areas/a%22b/players"),
    "bad-400-not-utf8": admin(b"GET", b"/v1/areas/%FF%C3/players"),
    "bad-400-area-65-bytes": admin(b"GET", b"/v1/areas/" + b"x" * 65 + b"/players"),
    "bad-400-node-space": admin(b"POST", b"/v1/nodes/a%20b/drain"),
    "bad-400-no-body": admin(b"POST", b"/v1/areas/r/move"),
    "bad-400-not-json": admin(b"POST", b"/v1/areas/r/move", b"node=a2"),
    "bad-400-array": admin(b"POST", b"/v1/areas/r/move", b'["a2"]'),
    "bad-400-unknown-member": admin(b"POST", b"/v1/areas/r/move", b'{"node":"a2","now":true}'),
    "bad-400-duplicate": admin(b"POST", b"/v1/areas/r/pin", b'{"node":"a","node":"b"}'),
    "bad-400-node-zero": admin(b"POST", b"/v1/areas/r/move", b'{"node":0}'),
    "bad-400-node-nul": admin(b"POST", b"/v1/areas/r/move", b'{"node":"a\\u0000b"}'),
    "bad-400-stop-string": admin(b"POST", b"/v1/nodes/a/drain", b'{"stop":"yes"}'),
    "bad-400-body-on-get": admin(b"GET", b"/v1/status", b"{}"),
    "bad-413-body": admin(b"POST", b"/v1/areas/r/move", b'{"node":"a2"}' + b" " * 65536),
    "bad-414-path": admin(b"GET", b"/" + b"x" * 1024),
    "bad-no-space": b"GET\n",
    "bad-empty": b"",
}

# ---- snapshots: a moving area's bytes (fuzz_snapshot.c, src/area/migrate.c) -------------
# Written from the format migrate.c states, independently of its encoder. References to
# code ({module, offset}) depend on where the fuzz target's program is loaded: these
# snapshots carry no timer and no call, or one whose reference names a module that
# does not exist (refused), so each file means the same thing in every process.

def snap_player(uid, data=b"{}", session=7, worker=0, flags=1, resume=0):
    return (le(session, 8) + le(worker, 4) + le(len(uid), 2) + uid + bytes(16) +
            bytes([flags]) + le(0, 8) + le(5, 8) + le(resume, 8) + le(len(data), 4) + data)


def snapshot(state=b"{}", players=(), cmds=(), timers=b"", ntimers=0, calls=b"", ncalls=0,
             version=1, due_ns=0, trailing=b""):
    return (bytes([version]) + le(0, 8) + le(3, 8) + le(len(state), 4) + state +
            le(12, 8) + le(due_ns, 8) + le(0, 8) + le(ntimers, 4) + timers +
            le(len(players), 4) + b"".join(players) + le(len(cmds), 4) + b"".join(cmds) +
            le(ncalls, 4) + calls + trailing)


REQ = wire("area_req", {"area": 9, "session": 7, "request": 3, "route": 1, "data": b"{}"})
NO_MODULE_REF = bytes([1, 4]) + b"nope" + le(16, 8)

SNAPSHOTS = {
    "empty": snapshot(),
    "state": snapshot(state=b'{"score":[1,2,3],"name":"arena"}'),
    "players": snapshot(players=[snap_player(b"u1", b'{"level":3}'),
                                 snap_player(b"u2", b'{"__atoll_rq":{"s":7,"n":2,"a":[[2,"{}"]]}}',
                                             flags=3, resume=1500)]),
    "commands": snapshot(cmds=[REQ, REQ]),
    "tick-due": snapshot(due_ns=40000000),
    "bad-version": snapshot(version=2),
    "bad-state-array": snapshot(state=b"[]"),
    "bad-due-far": snapshot(due_ns=3601 * 10**9),
    "bad-uid-empty": snapshot(players=[snap_player(b"")]),
    "bad-flags": snapshot(players=[snap_player(b"u1", flags=4)]),
    "bad-data-array": snapshot(players=[snap_player(b"u1", b"[]")]),
    "bad-worker": snapshot(players=[snap_player(b"u1", worker=256)]),
    "bad-command-kind": snapshot(cmds=[wire("kick", {"session": 1})]),
    "bad-timer-module": snapshot(timers=le(1, 8) + le(10, 8) + le(0, 8) + NO_MODULE_REF +
                                 bytes([0]), ntimers=1),
    "bad-timer-null": snapshot(timers=le(1, 8) + le(10, 8) + le(0, 8) + bytes([0, 0]), ntimers=1),
    "bad-call-module": snapshot(calls=le(1, 8) + le(10, 8) + le(1, 2) + bytes([0, 3]) + b"t-1" +
                                NO_MODULE_REF + bytes([0]), ncalls=1),
    "bad-trailing": snapshot(trailing=b"x"),
    "bad-many-players": snapshot()[:-12] + le(1 << 20, 4) + le(0, 4) + le(0, 4),
    "bad-cut": snapshot(players=[snap_player(b"u1")])[:-9],
}


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for fname, data in sorted(files.items()):
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


def main():
    write("package", PACKAGES)
    write("message", MESSAGES)
    write("handshake", HANDSHAKES)
    write("json", JSONS)
    write("client_reply", REPLIES)
    write("wire", WIRES)
    write("resume_token", TOKENS)
    write("jwt", JWTS)
    write("link", LINKS)
    write("admin", ADMINS)
    write("snapshot", SNAPSHOTS)


if __name__ == "__main__":
    main()
