"""Payloads a broker can deliver that no profile accepts, one of every class the MQTT driver
must count as malformed (and go on): for tests and bench/fuzz.py.

Each is malformed exactly once for a device of the `generic-json-sensor` profile on its state
topic (`BAD_STATE`) or availability topic (`BAD_AVAILABILITY`).
"""

from __future__ import annotations

MIB = 1024 * 1024

BAD_STATE: dict[str, bytes] = {
    "nested array": b"[" * 100_000 + b"]" * 100_000,
    "nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nested just past the parser's limit": b'{"temperature":' + b"[" * 1100 + b"]" * 1100 + b"}",
    "5000-digit number": b"9" * 5000,
    "5000-digit field": b'{"temperature": ' + b"9" * 5000 + b"}",
    "float overflow": b'{"temperature": 1e999}',
    "NaN": b'{"temperature": NaN}',
    "Infinity": b'{"temperature": Infinity}',
    "-Infinity": b'{"humidity": -Infinity}',
    "bare NaN": b"NaN",
    "list for an object": b"[1, 2, 3]",
    "string for an object": b'"a string"',
    "null": b"null",
    "true": b"true",
    "list field": b'{"temperature": [1, 2]}',
    "object field": b'{"temperature": {"c": 3}}',
    "text field": b'{"temperature": "warm"}',
    "bad timestamp": b'{"ts": "yesterday", "temperature": 3.5}',
    "huge timestamp": b'{"ts": 1' + b"0" * 400 + b', "temperature": 3.5}',
    "16 MB body": b'{"temperature": 1, "pad": "' + b"x" * (16 * MIB) + b'"}',
    "invalid UTF-8": b'{"temperature": "\xff\xfe"}',
    "invalid UTF-8 bytes": b"\xc3\x28\xa0\xa1",
    "empty": b"",
    "truncated": b'{"temperature": 3',
    "binary": bytes(range(256)),
}

BAD_AVAILABILITY: dict[str, bytes] = {
    "neither online nor offline": b"maybe",
    "empty availability": b"",
    "invalid UTF-8 availability": b"\xff",
}
