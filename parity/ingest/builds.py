"""Build folders, the publish swap, rollback, pruning and the build lock.

Every build writes its warehouse, marts and dbt target into its own folder,
``<data>/builds/<id>/``; consumers read ``<data>/published``, a symlink to one build folder.
Publishing replaces that symlink with ``os.replace`` (one atomic rename: readers see the old
build or the new one, all marts together, never a mix), and ``<data>/previous`` keeps the build
it replaced for ``rollback``. A failed build never touches either link.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parity.config import Settings

INFO_FILE = "build.json"


class BuildError(RuntimeError):
    """A build cannot start, publish or roll back; the message says why and what is unchanged."""


@dataclass(frozen=True)
class BuildInfo:
    """What ``build.json`` records about one build folder."""

    build_id: str
    path: Path
    started_at: str
    finished_at: str | None
    status: str
    select: str | None
    base: str | None

    def describe(self) -> str:
        """'<id> from <time>' for messages."""
        return f"{self.build_id} from {self.finished_at or self.started_at}"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_info(build_dir: Path) -> BuildInfo | None:
    """The build's recorded metadata, or None when the folder has none (or it is unreadable)."""
    try:
        data = json.loads((build_dir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return BuildInfo(
        build_id=data.get("build_id", build_dir.name), path=build_dir,
        started_at=data.get("started_at", "?"), finished_at=data.get("finished_at"),
        status=data.get("status", "?"), select=data.get("select"), base=data.get("base"),
    )


def write_info(build_dir: Path, **fields: Any) -> None:
    """Merge `fields` into the build's ``build.json`` (written whole, then renamed into place)."""
    path = build_dir / INFO_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.update(fields)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def new_build(settings: Settings, select: str | None = None, base: Path | None = None) -> Path:
    """Create an empty, uniquely named build folder and record that it is building."""
    settings.builds_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        build_id = stamp if n == 0 else f"{stamp}-{n}"
        path = settings.builds_dir / build_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        write_info(path, build_id=build_id, started_at=now_iso(), finished_at=None, status="building",
                   select=select, base=str(base) if base else None, pid=os.getpid(), dir=str(path))
        return path
    raise BuildError(f"cannot find a free build folder name under {settings.builds_dir}")


def published(settings: Settings) -> BuildInfo | None:
    """The published build, or None before the first successful build."""
    return _linked(settings.published_dir)


def previous(settings: Settings) -> BuildInfo | None:
    """The build the published one replaced (the rollback target), if it still exists."""
    return _linked(settings.data_dir / "previous")


def _linked(link: Path) -> BuildInfo | None:
    if not link.is_symlink() and not link.exists():
        return None
    if not link.is_symlink():
        raise BuildError(f"{link} should be a symlink to a build folder, but it is a real "
                         f"{'folder' if link.is_dir() else 'file'}; move it away and build again")
    if not link.exists():
        return None  # dangling: the build folder was removed by hand
    target = link.resolve()
    return read_info(target) or BuildInfo(target.name, target, "?", None, "?", None, None)


def _point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target` in one atomic rename."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _link_target(settings: Settings, build_dir: Path) -> str:
    """Relative `builds/<id>` for a build inside this data folder (the folder stays movable)."""
    try:
        return str(build_dir.relative_to(settings.data_dir))
    except ValueError:
        return str(build_dir)


def publish(settings: Settings, build_dir: Path) -> BuildInfo | None:
    """Make `build_dir` the published build; the one it replaces becomes `previous`. Returns it."""
    write_info(build_dir, status="published", finished_at=now_iso())
    old = settings.published_dir
    replaced = published(settings)
    if replaced is not None and replaced.path != build_dir.resolve():
        # previous first: a crash between the two renames leaves previous == published (harmless)
        _point(settings.data_dir / "previous", os.readlink(old))
    _point(old, _link_target(settings, build_dir))
    return replaced


def rollback(settings: Settings) -> tuple[BuildInfo, BuildInfo]:
    """Swap published and previous; returns (now published, now previous)."""
    current, before = published(settings), previous(settings)
    if current is None:
        raise BuildError("nothing is published yet: run `make build` first")
    if before is None:
        raise BuildError(f"no previous build to roll back to; {current.describe()} stays published")
    current_target = os.readlink(settings.published_dir)
    _point(settings.published_dir, os.readlink(settings.data_dir / "previous"))
    _point(settings.data_dir / "previous", current_target)
    return before, current


def prune(settings: Settings, keep: int) -> list[Path]:
    """Delete build folders beyond the newest `keep`; the published and previous builds always stay."""
    if not settings.builds_dir.is_dir():
        return []
    pinned = {b.path.resolve() for b in (published(settings), previous(settings)) if b is not None}
    folders = sorted((p for p in settings.builds_dir.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
    kept = set(pinned)
    for folder in folders:
        if len(kept) >= max(keep, len(pinned)):
            break
        kept.add(folder.resolve())
    removed = [f for f in folders if f.resolve() not in kept]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


@contextmanager
def build_lock(settings: Settings, what: str) -> Iterator[None]:
    """Hold ``<data>/build.lock`` (an OS file lock, released if the process dies) for one build or
    rollback; a second one fails naming the pid and start time of the one running."""
    path = settings.data_dir / "build.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole build
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            raise BuildError(
                f"another build is running ({holder}); wait for it to finish. The lock is {path}; "
                "it is released when that process ends."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {what}, started {now_iso()}")
        handle.flush()
        yield
    finally:
        handle.close()


def elapsed(since: float) -> str:
    """Seconds since `since` (a time.monotonic() value), for progress lines."""
    return f"{time.monotonic() - since:.1f} s"
