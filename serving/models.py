"""The models a running service scores with, and hot reload when the registry's pointer moves."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.models.approvals import canary_allowed
from parity.models.loaded import load_version
from parity.models.registry import RegistryError, current_version

log = logging.getLogger("serving.models")


@dataclass(frozen=True)
class ActiveModels:
    """An immutable set of models swapped as a whole, so a request never sees a half-update."""

    primary: Any | None
    canary: Any | None = None
    shadow: Any | None = None
    error: str | None = None


def load_for_serving(registry_dir: Path, model: str, version: str, nthread: int | None = None) -> Any:
    """`parity.models.loaded.load_version` plus the model's TreeSHAP tables, built here (at start-up or
    in the reloader thread) rather than by the first request that needs them."""
    loaded = load_version(registry_dir, model, version, nthread=nthread)
    loaded.explainer  # noqa: B018 - builds and caches the tables
    return loaded


def canary_bucket(customer_id: str) -> float:
    """A stable number in [0, 1) per customer: the same customer always takes the same arm."""
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class ModelSlot:
    """Holds the active models; a watcher thread reloads them when `current` changes."""

    def __init__(self, registry_dir: Path, model: str, canary_version: str | None = None,
                 shadow_version: str | None = None, loader: Callable[..., Any] = load_for_serving):
        self.registry_dir, self.model = registry_dir, model
        self.canary_version, self.shadow_version = canary_version, shadow_version
        self._loader = loader
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = ActiveModels(primary=None, error="not loaded yet")
        self.problem: str | None = None  # why the pointer cannot be followed (the loaded model stays)
        self.reload()

    def _trouble(self, message: str) -> bool:
        """Keep serving what is loaded (if anything) and report `message`; logged once per change."""
        if self.active.primary is None:
            self.active = ActiveModels(primary=None, error=message)
        elif message != self.problem:
            log.error("keeping %s/%s: %s", self.model, self.active.primary.version, message)
        self.problem = message
        return False

    def _load(self, version: str | None) -> Any | None:
        return None if not version else self._loader(self.registry_dir, self.model, version, nthread=1)

    def reload(self) -> bool:
        """Load the current pointer's model if it changed; True when a new set was swapped in."""
        with self._lock:
            try:
                version = current_version(self.registry_dir, self.model)
            except (RegistryError, OSError, ValueError) as err:
                return self._trouble(f"model registry unreadable: {err}")
            if version is None:
                return self._trouble(
                    f"no '{self.model}' model has been promoted: run `make train` (or `python -m training promote VERSION`)")
            if self.active.primary is not None and self.active.primary.version == version:
                self.problem = None
                return False
            try:
                refused = self.canary_version and canary_allowed(self.registry_dir, self.model, self.canary_version)
                if refused:  # a canary answers real customers: it needs the same approval as a promotion
                    log.error("%s", refused)
                active = ActiveModels(
                    primary=self._load(version),
                    canary=None if refused else self._load(self.canary_version),
                    shadow=self._load(self.shadow_version),
                )
            except (RegistryError, OSError, ValueError) as err:
                return self._trouble(f"the current pointer names {version}, which cannot be loaded: {err}")
            self.active = active  # one reference assignment: atomic for readers
            self.problem = None
            log.info("serving %s/%s", self.model, version)
            return True

    def start(self, every_seconds: float) -> None:
        """Poll the registry pointer in the background."""
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(every_seconds)
                self._wake.clear()
                if not self._stop.is_set():
                    self.reload()

        self._thread = threading.Thread(target=loop, name="model-reloader", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Reload now (SIGHUP)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
