"""Files: read in chunks (hashing and streaming whatever their size, in constant memory), and
written atomically (every file the plugin writes goes through `atomic_writer`)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside `path`, then rename over it: readers never see half a
    file, and a failure (an exception inside the block) leaves `path` as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # a crash after the rename never leaves an empty file
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace `path` with `content` (text as UTF-8, newlines as given) in one step."""
    with atomic_writer(path) as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
