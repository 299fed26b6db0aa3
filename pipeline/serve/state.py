"""What one server holds for its lifetime: the store (behind one lock), encoders kept warm, thumbnails cached."""

from __future__ import annotations

import functools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from starlette.exceptions import HTTPException

from pipeline.core.errors import StoreError
from pipeline.encoders.base import Encoder, encoder_version
from pipeline.search.query import collection_vector
from pipeline.serve.jobs import ComputeJobs
from pipeline.serve.settings import ServeSettings
from pipeline.store import VectorSpec, VectorStore, check_collection_name
from pipeline.store.backend import StoreBackend


class LruCache:
    """A small thread-safe least-recently-used mapping."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class LockedBackend:
    """A store backend whose every method call holds `lock` for the call's duration (every backend method returns
    lists, never lazy iterators, so nothing reads the engine after the lock is let go)."""

    def __init__(self, backend: StoreBackend, lock: threading.RLock) -> None:
        self._backend = backend
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._backend, name)
        if not callable(found):
            return found

        @functools.wraps(found)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return found(*args, **kwargs)

        return locked


@dataclass(frozen=True)
class SearchVector:
    """The named vector a collection is searched on and the encoder spec that fills it."""

    collection: str
    spec: VectorSpec
    encoder: str


class ServeState:
    """The store, the encoder factory and the caches, shared by every route of one app (no globals).

    The embedded store is one process's, and encoders are not made for concurrent calls: every use of either goes
    through `engine()`, one request at a time; thumbnails decode outside it.
    """

    def __init__(
        self,
        settings: ServeSettings,
        store: VectorStore,
        make_encoder: Callable[[str], Encoder],
    ) -> None:
        self.settings = settings
        self.store = store
        self.make_encoder = make_encoder
        self.thumbs = LruCache(settings.thumb_cache)
        self.maps = LruCache(8)  # laid-out embedding maps, by (collection, method, colouring)
        self._encoders = LruCache(settings.encoder_cache)
        self._checked: set[tuple[str, str, str]] = set()
        self._lock = threading.RLock()
        self.jobs = ComputeJobs()  # "compute now", in the background
        self.review_lock = threading.Lock()  # one read-modify-write of a review file at a time

    @contextmanager
    def engine(self) -> Iterator[VectorStore]:
        """The store, held for this request alone."""
        with self._lock:
            yield self.store

    def shared_store(self) -> VectorStore:
        """The store for a long job: each of its calls takes the lock for that call alone, so requests are answered
        between them (a dedup of minutes holds the store for one query batch or page at a time, never throughout).
        It shares the app's backend: never close it."""
        return VectorStore(cast(StoreBackend, LockedBackend(self.store.backend, self._lock)))

    def collections(self) -> list[str]:
        with self.engine() as store:
            return store.list_collections()

    def require_collection(self, name: str) -> str:
        """`name`, if the store holds such a collection.

        Raises:
            HTTPException: 404 for a bad name or one the store does not hold.
        """
        try:
            check_collection_name(name)
        except StoreError:
            raise HTTPException(404, f"no collection {name!r} here") from None
        with self.engine() as store:
            if not store.has_collection(name):
                raise HTTPException(404, f"no collection {name!r} in this store (see /api/collections)")
        return name

    def default_collection(self) -> str | None:
        names = self.collections()
        wanted = self.settings.collection
        return wanted if wanted in names else (names[0] if names else None)

    def search_vector(self, collection: str, encoder: str | None) -> SearchVector:
        """The vector to search (the collection's only one unless `encoder` names one).

        Raises:
            HTTPException: 404 for an unknown collection.
            LookalikeError: several vectors and none chosen, or not one the collection has.
        """
        self.require_collection(collection)
        with self.engine() as store:
            spec, encoder_spec = collection_vector(store, collection, encoder or None)
        return SearchVector(collection, spec, encoder_spec)

    def encoder(self, vector: SearchVector) -> Encoder:
        """The encoder that fills `vector`, built on first use and kept warm; its version is checked against the
        collection once.

        Raises:
            EncoderVersionError: the encoder's version differs from the one that made the collection.
        """
        with self._lock:
            built = self._encoders.get(vector.encoder)
            if built is None:
                built = self.make_encoder(vector.encoder)
                self._encoders.put(vector.encoder, built)
            key = (vector.collection, vector.spec.name, vector.encoder)
            if key not in self._checked:
                version = encoder_version(built)
                self.store.check_encoder_version(vector.collection, vector.spec.name, built.name, version)
                self._checked.add(key)
            return built

    def point_payload(self, collection: str, point_id: str) -> dict[str, Any]:
        """The payload of an indexed point.

        Raises:
            HTTPException: 404 for an unknown collection, a malformed id or one the collection does not hold.
        """
        pid = parse_point_id(point_id)
        self.require_collection(collection)
        with self.engine() as store:
            found = store.payloads(collection, [pid], ["path", "duplicate_paths", "label", "group"])
        if pid not in found:
            raise HTTPException(404, f"no point {pid} in collection {collection!r}")
        return found[pid]


def parse_point_id(text: str) -> str:
    """A point id in its canonical form.

    Raises:
        HTTPException: 404 for anything that is not a UUID (a path, `..`, …).
    """
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise HTTPException(404, f"no point {text[:80]!r}: point ids are UUIDs") from None
