"""Where media bytes live. A local folder by default; the interface allows object storage."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Protocol


class MediaStore(Protocol):
    async def put(self, data: bytes, *, suffix: str) -> str: ...

    async def get(self, key: str) -> bytes: ...

    def path_of(self, key: str) -> Path | None: ...


class LocalMediaStore:
    """Content-addressed files under a folder: ``ab/cd/<sha256><suffix>``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("media key outside the store")
        return path

    async def put(self, data: bytes, *, suffix: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        safe_suffix = "".join(ch for ch in suffix if ch.isalnum() or ch == ".")[:10]
        key = f"{digest[:2]}/{digest[2:4]}/{digest}{safe_suffix}"
        path = self._path(key)
        if not path.exists():
            await asyncio.to_thread(_write_atomically, path, data)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    def path_of(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.exists() else None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
