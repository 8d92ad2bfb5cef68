/* limits.h -- every limit the decoders of untrusted bytes enforce, with its reason.
 *
 * Decoders check these while parsing, before they allocate: a hostile length field
 * costs nothing but the bytes already received. Values marked "default" can be changed
 * per node on the command line; the others are protocol or safety ceilings.
 */
#ifndef ATOLL_PROTO_LIMITS_H
#define ATOLL_PROTO_LIMITS_H

/* Pomelo package header: type (1) + body length (3, big-endian). */
#define ATOLL_PKG_HEADER_LEN 4

/* Largest body the 24-bit length field can express. */
#define ATOLL_PKG_BODY_CEILING 16777215u

/* Default largest package body a node accepts (--max-package). Game messages are tens
 * to hundreds of bytes and the largest handshake reply seen in practice is 1.5 KiB;
 * 64 KiB leaves room for big state requests while keeping what one connection can
 * make the server buffer small. */
#define ATOLL_PKG_BODY_DEFAULT_MAX 65536u

/* Largest client handshake body. Real clients send under 200 bytes (the optional RSA
 * public key makes it about 600); the JSON tree built from it is bounded by this. */
#define ATOLL_HANDSHAKE_MAX 4096u

/* A message id is a uint32 in LEB128: at most 5 bytes; a 6th continuation byte or a
 * value past 2^32-1 is malformed. */
#define ATOLL_MSG_ID_MAX_BYTES 5

/* An uncompressed route has a one-byte length: at most 255 bytes of UTF-8. */
#define ATOLL_ROUTE_MAX 255u

/* Nesting depth accepted in JSON bodies and handshakes: deeper input is rejected so a
 * "[[[[[..." body cannot exhaust the stack of any later parser. */
#define ATOLL_JSON_MAX_DEPTH 64

/* HTTP upgrade request: the whole request head (request line + headers). Browsers send
 * about 500 bytes; cookies can make it a few KiB. */
#define ATOLL_HTTP_HEAD_MAX 8192u
/* Header lines in the upgrade request. */
#define ATOLL_HTTP_MAX_HEADERS 64

/* RFC 6455 5.5: control frames carry at most 125 bytes and are never fragmented. */
#define ATOLL_WS_CONTROL_MAX 125u
/* Fragments in one WebSocket message: a message cut into 1-byte frames would cost a
 * header each; more than this many is treated as abuse. */
#define ATOLL_WS_MAX_FRAGMENTS 1024

#endif /* ATOLL_PROTO_LIMITS_H */
