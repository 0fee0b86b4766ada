"""Rendered vector tiles kept on disk and, for the most recent ones, in memory.

A key names the layers' revisions, so a reload or an edit (which bumps the revision)
makes every older tile unreachable; `purge_layer` then deletes the stale files. Keys
never depend on the caller: visibility is checked before every lookup.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from portal.geo.tile_matrix import TileIndex

log = logging.getLogger(__name__)

PORTAL_FOLDER = "_portal"
MANIFEST = "layers.json"
DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
_ENTRY_OVERHEAD = 200
_LAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_GENERATION = re.compile(r"^r([0-9]+)-[0-9a-f]+$")


class LayerStamp(NamedTuple):
    """What a layer's tiles depend on: its id, its revision and how they are drawn."""

    layer_id: str
    revision: int
    variant: str


@dataclass(frozen=True)
class TileKey:
    """Names one cached tile: a layer tileset's (or the portal tileset's) stamps and z/x/y."""

    stamps: tuple[LayerStamp, ...]
    portal: bool
    tile: TileIndex

    @property
    def folder(self) -> tuple[str, str]:
        """Return the two folder names that hold this tile's generation."""
        if self.portal:
            digest = hashlib.sha256(json.dumps(sorted(self.stamps)).encode()).hexdigest()
            return (PORTAL_FOLDER, digest[:24])
        stamp = self.stamps[0]
        return (stamp.layer_id, f"r{stamp.revision}-{stamp.variant}")


def layer_tile_key(stamp: LayerStamp, tile: TileIndex) -> TileKey:
    """Return the key of one tile of one layer's tileset."""
    _check_stamp(stamp)
    return TileKey((stamp,), False, tile)


def portal_tile_key(stamps: Iterable[LayerStamp], tile: TileIndex) -> TileKey:
    """Return the key of one tile of the portal tileset drawn from these layers."""
    ordered = tuple(sorted(stamps))
    for stamp in ordered:
        _check_stamp(stamp)
    return TileKey(ordered, True, tile)


def _check_stamp(stamp: LayerStamp) -> None:
    if not _LAYER_ID.match(stamp.layer_id) or not re.fullmatch(r"[0-9a-f]+", stamp.variant):
        raise ValueError(f"cannot cache tiles under {stamp!r}")


@dataclass(frozen=True)
class CachedTile:
    """A rendered tile as kept: its bytes, its entity tag and whether it was capped."""

    data: bytes
    etag: str
    capped: bool


def tile_etag(data: bytes) -> str:
    """Return the strong entity tag of a tile's bytes, quoted as in an ETag header."""
    return f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


class TileCache:
    """Rendered tiles under one directory, with a bounded in-memory LRU of recent ones."""

    def __init__(self, directory: Path, *, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.directory = Path(directory)
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[TileKey, CachedTile] = OrderedDict()
        self._memory_used = 0
        self._lock = threading.Lock()
        self._known_folders: set[tuple[str, str]] = set()

    def path_of(self, key: TileKey, *, capped: bool = False) -> Path:
        """Return the file a tile is (or would be) kept in."""
        first, second = key.folder
        name = f"{key.tile.y}.capped.mvt" if capped else f"{key.tile.y}.mvt"
        return self.directory / first / second / str(key.tile.z) / str(key.tile.x) / name

    def get(self, key: TileKey) -> CachedTile | None:
        """Return a cached tile, from memory or else from disk, or None."""
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit
        for capped in (False, True):
            try:
                data = self.path_of(key, capped=capped).read_bytes()
            except OSError:
                continue
            found = CachedTile(data, tile_etag(data), capped)
            self._remember(key, found)
            return found
        return None

    def put(self, key: TileKey, data: bytes, *, capped: bool) -> CachedTile:
        """Keep a freshly rendered tile, and drop older generations of its layers."""
        stored = CachedTile(data, tile_etag(data), capped)
        self._remember(key, stored)
        if key.folder not in self._known_folders:
            self._start_generation(key)
        try:
            _write_atomically(self.path_of(key, capped=capped), data)
        except OSError as error:
            log.warning("could not write tile %s to the cache: %s", key, error)
        return stored

    def purge_layer(self, layer_id: str, *, keep_revision: int | None = None) -> int:
        """Delete a layer's cached tiles older than `keep_revision` (all when None).

        Portal tiles drawn from such revisions go too. Returns how many generations
        (folders) were deleted.
        """
        removed: list[tuple[str, str]] = []
        layer_dir = self.directory / layer_id
        for folder in _subfolders(layer_dir):
            match = _GENERATION.match(folder.name)
            revision = int(match.group(1)) if match else -1
            if keep_revision is None or revision < keep_revision:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append((layer_id, folder.name))
        for folder in _subfolders(self.directory / PORTAL_FOLDER):
            stamps = _read_manifest(folder)
            stale = stamps is None or any(
                stamp_id == layer_id and (keep_revision is None or revision < keep_revision)
                for stamp_id, revision in stamps
            )
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append((PORTAL_FOLDER, folder.name))
        self._forget(set(removed))
        return len(removed)

    def clear_memory(self) -> None:
        """Drop every tile kept in memory (the files stay)."""
        with self._lock:
            self._memory.clear()
            self._memory_used = 0

    def _start_generation(self, key: TileKey) -> None:
        for stamp in key.stamps:
            self.purge_layer(stamp.layer_id, keep_revision=stamp.revision)
        folder = self.directory.joinpath(*key.folder)
        if key.portal:
            manifest = [[stamp.layer_id, stamp.revision] for stamp in key.stamps]
            try:
                _write_atomically(folder / MANIFEST, json.dumps(manifest).encode())
            except OSError as error:
                log.warning("could not write the tile cache manifest %s: %s", folder, error)
                return
        else:
            self._purge_other_variants(key)
        self._known_folders.add(key.folder)

    def _purge_other_variants(self, key: TileKey) -> None:
        first, second = key.folder
        revision_prefix = f"r{key.stamps[0].revision}-"
        removed = set()
        for folder in _subfolders(self.directory / first):
            if folder.name.startswith(revision_prefix) and folder.name != second:
                shutil.rmtree(folder, ignore_errors=True)
                removed.add((first, folder.name))
        self._forget(removed)

    def _remember(self, key: TileKey, tile: CachedTile) -> None:
        size = len(tile.data) + _ENTRY_OVERHEAD
        if size > self.memory_bytes:
            return
        with self._lock:
            previous = self._memory.pop(key, None)
            if previous is not None:
                self._memory_used -= len(previous.data) + _ENTRY_OVERHEAD
            self._memory[key] = tile
            self._memory_used += size
            while self._memory_used > self.memory_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_used -= len(evicted.data) + _ENTRY_OVERHEAD

    def _forget(self, folders: set[tuple[str, str]]) -> None:
        if not folders:
            return
        self._known_folders -= folders
        with self._lock:
            for key in [key for key in self._memory if key.folder in folders]:
                evicted = self._memory.pop(key)
                self._memory_used -= len(evicted.data) + _ENTRY_OVERHEAD


def _subfolders(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_dir()]
    except OSError:
        return []


def _read_manifest(folder: Path) -> list[tuple[str, int]] | None:
    try:
        return [(str(i), int(r)) for i, r in json.loads((folder / MANIFEST).read_text())]
    except (OSError, ValueError, TypeError):
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
