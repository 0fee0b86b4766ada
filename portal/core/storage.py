"""File storage for uploads, harvested originals and photos: one small interface."""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from portal.core.errors import InvalidInput, NotFound, PayloadTooLarge

CHUNK = 1024 * 1024
_KEY_PART = re.compile(r"^[A-Za-z0-9._\-\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]+$")


@dataclass(frozen=True)
class StoredFile:
    """What was stored: its key, size and SHA-256."""

    key: str
    size: int
    sha256: str


class Storage(Protocol):
    """Where files live; a local folder here, an S3-compatible store when scaled out."""

    def save(self, stream: BinaryIO, *, key: str, max_bytes: int) -> StoredFile:
        """Store a stream under `key`, refusing more than `max_bytes`."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open a stored file for reading."""
        ...

    def local_path(self, key: str) -> Path:
        """Return a local path of a stored file (for GDAL and converters)."""
        ...

    def delete(self, key: str) -> None:
        """Remove a stored file, if present."""
        ...


def safe_file_name(name: str) -> str:
    """Reduce an uploaded file name to a safe last path component."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    cleaned = "".join(ch if _KEY_PART.match(ch) else "_" for ch in base)[:120]
    if not cleaned or set(cleaned) <= {"_", "."}:
        raise InvalidInput(f"file name {name!r} has no usable characters")
    return cleaned


class LocalStorage:
    """Files under a folder (PORTAL_DATA_DIR), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def save(self, stream: BinaryIO, *, key: str, max_bytes: int) -> StoredFile:
        """Copy a stream to `key` via a temporary file, hashing and counting as it goes."""
        target = self.local_path(key, must_exist=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"the file is larger than the limit of {max_bytes:,} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredFile(key, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        """Open a stored file for reading."""
        return self.local_path(key).open("rb")

    def local_path(self, key: str, *, must_exist: bool = True) -> Path:
        """Resolve a key inside the root, refusing anything that escapes it."""
        parts = key.split("/")
        if not parts or any(p in ("", ".", "..") or not _KEY_PART.match(p) for p in parts):
            raise InvalidInput(f"invalid storage key {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput(f"invalid storage key {key!r}")
        if must_exist and not path.is_file():
            raise NotFound(f"stored file {key!r} is missing")
        return path

    def delete(self, key: str) -> None:
        """Remove a stored file, if present."""
        self.local_path(key, must_exist=False).unlink(missing_ok=True)

    def copy_in(self, source: Path, *, key: str, max_bytes: int) -> StoredFile:
        """Store a local file."""
        with source.open("rb") as stream:
            return self.save(stream, key=key, max_bytes=max_bytes)


__all__ = ["LocalStorage", "Storage", "StoredFile", "safe_file_name"]
