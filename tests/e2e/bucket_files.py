"""The built-in bucket store's files on disk, for tests that tamper with delivered objects
behind Trailkeeper's back (no API can: trail files are write-once).

One object, one file: the magic `TKS3OBJ1`, a little-endian u32 header length, the JSON
header (key, size, MD5, times, lock, metadata), then the body. Edit them only while the
server is stopped: it rebuilds each bucket's index from these headers when it starts.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"TKS3OBJ1"


@dataclass
class ObjectFile:
    path: Path
    header: dict
    body: bytes

    @property
    def key(self) -> str:
        return self.header["key"]

    def save(self) -> None:
        """Writes the object back, with the header's size and MD5 made to match its body."""
        self.header["size"] = len(self.body)
        self.header["md5"] = hashlib.md5(self.body).hexdigest()
        header = json.dumps(self.header, separators=(",", ":")).encode()
        self.path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header + self.body)


def object_path(data_dir: Path, bucket: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return data_dir / "buckets" / bucket / "objects" / digest[:2] / digest


def read_object(data_dir: Path, bucket: str, key: str) -> ObjectFile:
    path = object_path(data_dir, bucket, key)
    raw = path.read_bytes()
    assert raw[:8] == MAGIC, f"{path} is not an object file"
    (length,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + length])
    assert header["key"] == key
    return ObjectFile(path, header, raw[12 + length :])


def copy_object(data_dir: Path, bucket: str, key: str, new_key: str) -> ObjectFile:
    """Places a byte-for-byte copy of an object (metadata included) under another key."""
    original = read_object(data_dir, bucket, key)
    copy = ObjectFile(object_path(data_dir, bucket, new_key), dict(original.header, key=new_key), original.body)
    copy.path.parent.mkdir(parents=True, exist_ok=True)
    copy.save()
    return copy
