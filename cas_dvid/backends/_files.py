"""Small file-writing helpers the file backend's objects, refs and packs share."""

from __future__ import annotations

import os

from cas_dvid.backends.abc import BytesLike, Parts

_IOV = 512  # NOTE: writev takes at most IOV_MAX (1,024) buffers a call


def write_all(fd: int, parts: Parts) -> None:
    """Write every part to ``fd`` with as few ``writev`` calls as the kernel allows."""
    # PERF: parts go to writev as they are; only a short write's remainder is sliced.
    todo: list[BytesLike] = [p for p in parts if len(p)]
    while todo:
        batch = todo[:_IOV]
        n = os.writev(fd, batch)
        done = 0
        while done < len(batch):
            part = batch[done]
            size = part.nbytes if isinstance(part, memoryview) else len(part)
            if n < size:
                break
            n -= size
            done += 1
        del todo[:done]
        if todo and n:
            todo[0] = memoryview(todo[0]).cast("B")[n:]


def parts_size(parts: Parts) -> int:
    """Return the bytes ``parts`` hold (memoryviews count their ``nbytes``)."""
    return sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts)


def fsync_dir(path: str) -> None:
    """Make a directory's new entries durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: str, *, fsync: bool) -> None:
    """Create a folder (and its parents); with ``fsync``, make its entry durable too."""
    os.makedirs(path, exist_ok=True)
    if fsync:
        fsync_dir(os.path.dirname(path))


def write_new(path: str, parts: Parts, *, fsync: bool) -> None:
    """Create ``path`` (its folder too if missing) holding ``parts``; fsync it if asked.

    The name must be new (a ``.partial`` name): an existing file is an error.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        make_dir(os.path.dirname(path), fsync=fsync)
        fd = os.open(path, flags, 0o644)
    try:
        write_all(fd, parts)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
