"""The two DER primitives the certificate profile needs (OCTET STRING, UTF8String)."""

from __future__ import annotations


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def octet_string(data: bytes) -> bytes:
    return b"\x04" + _length(len(data)) + data


def utf8_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"\x0c" + _length(len(data)) + data
