"""Reading files in chunks: hashing and streaming whatever their size, in constant memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int


def read_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(chunk_size):
            yield block


def sha256_file(path: Path) -> FileDigest:
    """Hex sha256 and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    for block in read_chunks(path):
        digest.update(block)
        size += len(block)
    return FileDigest(digest.hexdigest(), size)
