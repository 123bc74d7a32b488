"""The model registry on disk: versioned entries, checksums, an atomic `current` pointer.

Layout under `settings.registry_dir` (training writes it, serving reads it through this module):

    <model>/v0001/model.json        xgboost's own JSON format (never pickle)
                 /calibrator.json   calibration as plain parameters (isotonic knots or Platt a, b)
                 /metadata.json     feature service, exact feature list, prepare spec, metrics, ...
                 /MODEL_CARD.md
                 /checksums.json    sha256 of the files above (verified on every load)
                 /created.json      creation time: the only file that differs between two
                                    identical trainings, so it is kept out of the checksums
    <model>/current.json            {"version": "v0002", "history": ["v0001", "v0002"], ...}

A version is written into a temporary directory, fsynced and renamed into place, and the pointer
is replaced with os.replace, so an interrupted write never changes what is current. Only the
production model (xgboost) is stored: the other compared models exist to justify it and are
never served, so persisting them would add artefacts (and pickle) without a reader.

Storage only: the loaded xgboost model and its calibrator are in `parity.models.loaded`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FORMAT = 1
MODEL_FILE = "model.json"
CALIBRATOR_FILE = "calibrator.json"
METADATA_FILE = "metadata.json"
CARD_FILE = "MODEL_CARD.md"
CHECKSUMS_FILE = "checksums.json"
CREATED_FILE = "created.json"
POINTER_FILE = "current.json"
AUDIT_FILE = "audit.jsonl"  # append-only: who moved the pointer, when, from what to what, why
REQUIRED_FILES = (MODEL_FILE, CALIBRATOR_FILE, METADATA_FILE, CARD_FILE)
VERSION_RE = re.compile(r"^v(\d{4,})\Z")  # \Z: no trailing newline
# a model's folder name: a plain name, never a path ("churn", "segments", "churn_eu")
MODEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")

# service name -> its live (name, feast dtype) features in service order
LiveSchema = Callable[[str], Sequence[tuple[str, str]]]


class RegistryError(RuntimeError):
    """A registry entry or pointer is missing, corrupt or cannot be written."""


class PromotionError(RegistryError):
    """A version may not become current (e.g. its features differ from the live service)."""


def dumps(data: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no NaN), so equal content gives equal bytes."""
    return (json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n").encode()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(root: Path) -> str:
    """The checked-out commit of the repository at `root`, read from .git files; "unknown" if none."""
    try:
        git = root / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        common = git / "commondir"
        base = (git / common.read_text().strip()).resolve() if common.exists() else git
        for candidate in (git / ref, base / ref):
            if candidate.exists():
                return candidate.read_text().strip()
        for line in (base / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError):
        pass
    return "unknown"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on a model's pointer (promote/rollback are read-modify-write)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_dir(registry_dir: Path, model: str) -> Path:
    """`<registry>/<model>` for a plain model name; anything path-like is refused."""
    if not isinstance(model, str) or not MODEL_RE.match(model):
        raise RegistryError(f"invalid model name {model!r}: a plain name (letters, digits, '_', '-'; "
                            "starting with a letter), not a path")
    return registry_dir / model


def entry_dir(registry_dir: Path, model: str, version: str) -> Path:
    """`<registry>/<model>/<version>` for a registry version name (v0001, ...); paths refused."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise RegistryError(f"invalid version {version!r}: registry versions are named vNNNN (e.g. v0002)")
    return model_dir(registry_dir, model) / version


def list_versions(registry_dir: Path, model: str) -> list[str]:
    """Complete versions of a model, oldest first (temporary directories are ignored)."""
    folder = model_dir(registry_dir, model)
    if not folder.is_dir():
        return []
    found = [p.name for p in folder.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda name: int(VERSION_RE.match(name).group(1)))


def write_version(registry_dir: Path, model: str, files: Mapping[str, bytes]) -> str:
    """Atomically add a new version holding `files`; returns its name (v0001, v0002, ...)."""
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise RegistryError(f"a registry entry needs {missing}")
    reserved = [name for name in (CHECKSUMS_FILE, CREATED_FILE) if name in files]
    if reserved or any("/" in name or name.startswith(".") for name in files):
        raise RegistryError(f"invalid entry file names {sorted(files)}")
    folder = model_dir(registry_dir, model)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    checksums = {name: sha256_bytes(data) for name, data in sorted(files.items())}
    for name, data in files.items():
        _write_synced(tmp / name, data)
    _write_synced(tmp / CHECKSUMS_FILE, dumps(checksums))
    created = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write_synced(tmp / CREATED_FILE, dumps(created))
    _fsync_dir(tmp)
    for _ in range(100):  # another writer may take the same number: retry with the next one
        versions = list_versions(registry_dir, model)
        number = int(VERSION_RE.match(versions[-1]).group(1)) + 1 if versions else 1
        target = folder / f"v{number:04d}"
        if target.exists():
            continue
        try:
            os.rename(tmp, target)
        except OSError:
            continue
        _fsync_dir(folder)
        return target.name
    raise RegistryError(f"could not allocate a version under {folder}")


def read_pointer(registry_dir: Path, model: str) -> dict[str, Any] | None:
    """The `current` pointer ({"version", "history", ...}) or None if nothing was promoted."""
    path = model_dir(registry_dir, model) / POINTER_FILE
    if not path.exists():
        return None
    try:
        pointer = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RegistryError(f"current pointer {path} is unreadable: {err}") from None
    if not isinstance(pointer, dict) or "version" not in pointer or not pointer.get("history"):
        raise RegistryError(f"current pointer {path} lacks version/history")
    names = [pointer["version"], *pointer["history"]]
    bad = [name for name in names if not isinstance(name, str) or not VERSION_RE.match(name)]
    if bad or pointer["version"] != pointer["history"][-1]:
        raise RegistryError(f"current pointer {path} names invalid versions {bad or names[-1:]}")
    return pointer


def _write_pointer(
    registry_dir: Path, model: str, history: list[str], action: str
) -> dict[str, Any]:
    folder = model_dir(registry_dir, model)
    pointer = {
        "model": model,
        "version": history[-1],
        "history": history,
        "last_action": action,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = folder / f".{POINTER_FILE}.{os.getpid()}.{uuid.uuid4().hex}"
    _write_synced(tmp, dumps(pointer))
    os.replace(tmp, folder / POINTER_FILE)
    _fsync_dir(folder)
    return pointer


def current_version(registry_dir: Path, model: str) -> str | None:
    """The version the pointer names, or None."""
    pointer = read_pointer(registry_dir, model)
    return pointer["version"] if pointer else None


def read_metadata(registry_dir: Path, model: str, version: str) -> dict[str, Any]:
    """A version's metadata.json after verifying every checksum."""
    return json.loads(verified_files(entry_dir(registry_dir, model, version))[METADATA_FILE])


def verified_files(entry: Path) -> dict[str, bytes]:
    """The files of an entry, refusing missing or altered ones."""
    if not entry.is_dir():
        raise RegistryError(f"registry entry {entry} does not exist")
    try:
        checksums = json.loads((entry / CHECKSUMS_FILE).read_text())
        contents = {name: (entry / name).read_bytes() for name in checksums}
    except (OSError, ValueError) as err:
        raise RegistryError(f"registry entry {entry} is incomplete: {err}") from None
    bad = sorted(name for name, data in contents.items() if sha256_bytes(data) != checksums[name])
    if bad or any(name not in contents for name in REQUIRED_FILES):
        raise RegistryError(f"registry entry {entry} is corrupt (checksum mismatch: {bad})")
    return contents


def feature_problems(metadata: Mapping[str, Any], live: Sequence[tuple[str, str]]) -> list[str]:
    """Differences between a model's feature list and the live service's (names, dtypes, order)."""
    trained = [tuple(item) for item in metadata["features"]]
    live = [tuple(item) for item in live]
    if trained == live:
        return []
    problems = []
    trained_map, live_map = dict(trained), dict(live)
    problems += [f"missing from the live service: {n}" for n, _ in trained if n not in live_map]
    problems += [f"not in the model: {n}" for n, _ in live if n not in trained_map]
    problems += [
        f"dtype of {n}: model {t}, live {live_map[n]}"
        for n, t in trained
        if n in live_map and live_map[n] != t
    ]
    if not problems:
        problems.append(
            f"order differs: model {[n for n, _ in trained]}, live {[n for n, _ in live]}"
        )
    return problems


def _check_promotable(
    registry_dir: Path, model: str, version: str, live_schema: LiveSchema
) -> None:
    metadata = read_metadata(registry_dir, model, version)
    service = metadata["feature_service"]
    problems = feature_problems(metadata, live_schema(service))
    if problems:
        raise PromotionError(
            f"refusing {model}/{version}: its features differ from the live feature service "
            f"'{service}': " + "; ".join(problems)
        )


def _who(actor: str | None) -> str:
    """The named actor, else the OS user."""
    import getpass

    try:
        return actor or getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return f"uid {os.getuid()}"


def _audit(registry_dir: Path, model: str, action: str, before: str | None, after: str,
           actor: str | None, reason: str | None, approval: Mapping[str, Any] | None = None) -> None:
    """Append one line to the model's audit log (fsynced, under the pointer lock)."""
    line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "actor": _who(actor), "action": action,
            "from": before, "to": after, "reason": reason}
    if approval is not None:
        line["approval"] = {k: approval.get(k) for k in ("at", "approver", "kind")}
    path = model_dir(registry_dir, model) / AUDIT_FILE
    with open(path, "ab") as handle:
        handle.write(json.dumps(line, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_audit(registry_dir: Path, model: str) -> list[dict[str, Any]]:
    """The model's audit log, oldest first."""
    path = model_dir(registry_dir, model) / AUDIT_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def promote(
    registry_dir: Path, model: str, version: str, live_schema: LiveSchema,
    actor: str | None = None, reason: str | None = None,
) -> dict[str, Any]:
    """Make `version` current after checking its feature list against the live service and its
    approval (parity.models.approvals); the move is recorded in the model's audit log with the
    approval (actor: default the OS user)."""
    entry_dir(registry_dir, model, version)  # a version name, never a path
    with _locked(model_dir(registry_dir, model)):
        _check_promotable(registry_dir, model, version, live_schema)
        pointer = read_pointer(registry_dir, model)
        history = list(pointer["history"]) if pointer else []
        if history and history[-1] == version:
            return pointer
        approval = _approval(registry_dir, model, version, first=not history, actor=actor)
        written = _write_pointer(registry_dir, model, history + [version], f"promote {version}")
        _audit(registry_dir, model, "promote", history[-1] if history else None, version, actor, reason, approval)
        return written


def _approval(registry_dir: Path, model: str, version: str, first: bool, actor: str | None) -> Any:
    """The approval letting `version` become current (parity.models.approvals); the first model
    of a fresh project is approved by whoever promotes it, recorded as kind `first_model`."""
    from parity.models import approvals

    metadata = read_metadata(registry_dir, model, version)
    folder = model_dir(registry_dir, model)
    try:
        if first and approvals.needs_approval(metadata) and approvals.approval_for(folder, version) is None:
            return approvals.record(folder, version, metadata, _who(actor),
                                    list(approvals.flagged_items(metadata)), kind="first_model",
                                    note="no model was current: approved by whoever promoted it, not a separate review")
        return approvals.require(folder, model, version, metadata)
    except approvals.ApprovalError as err:
        raise PromotionError(str(err)) from None


def rollback(registry_dir: Path, model: str, live_schema: LiveSchema,
             actor: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Make the previously current version current again (the same feature check applies;
    recorded in the audit log)."""
    with _locked(model_dir(registry_dir, model)):
        pointer = read_pointer(registry_dir, model)
        if not pointer or len(pointer["history"]) < 2:
            raise PromotionError(f"no previous version of '{model}' to roll back to")
        history = list(pointer["history"][:-1])
        _check_promotable(registry_dir, model, history[-1], live_schema)
        written = _write_pointer(
            registry_dir, model, history, f"rollback {pointer['version']} -> {history[-1]}"
        )
        _audit(registry_dir, model, "rollback", pointer["version"], history[-1], actor, reason)
        return written
