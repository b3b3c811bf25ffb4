"""A memory bank: records searchable by the cosine similarity of one text field, filterable by label.

The draft-verify harness keeps (text, label) pairs from the training data in a bank and retrieves the most
similar ones as evidence. The reference implementation stored entries that arrived without a precomputed
embedding as zero vectors, so retrieval silently degenerated to arbitrary order. Here every entry is
embedded when it is added, and an entry whose embedding is all zero (empty text) is kept in the bank but
explicitly excluded from similarity ranking (`unsearchable_count` says how many there are).

The default `HashingEmbedder` needs nothing but numpy; anything with an `embed(texts) -> (N, D)` method
(a neural sentence encoder, say) can replace it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harnessc.runtime.data import load_rows


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors: `embed(texts)` returns a float array of shape (len(texts), D)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------------------
# The default embedder: signed feature hashing, vectorised over a batch with numpy
# --------------------------------------------------------------------------------------------------------

_U64 = np.uint64
_PRIME = _U64(1099511628211)  # FNV-64 prime: an odd multiplier for polynomial hashing mod 2**64
_MIX_1 = _U64(0xFF51AFD7ED558CCD)  # murmur3 finaliser constants: spread the bits before bucketing
_MIX_2 = _U64(0xC4CEB9FE1A85EC53)
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")


def _mix(hashes: np.ndarray) -> np.ndarray:
    """Murmur3's 64-bit finaliser: near-neighbour inputs end up in unrelated buckets (uint64 wraps)."""
    hashes = hashes ^ (hashes >> _U64(33))
    hashes = hashes * _MIX_1
    hashes = hashes ^ (hashes >> _U64(33))
    hashes = hashes * _MIX_2
    return hashes ^ (hashes >> _U64(33))


class HashingEmbedder:
    """A deterministic bag-of-features text embedder with no model and no fitted vocabulary.

    Features: word unigrams, word bigrams and character n-grams (3 to 5 characters, over the lower-cased
    text with whitespace collapsed), hashed with a stable hash into `dim` buckets with a random sign (so
    collisions cancel out on average rather than pile up). Each family gets sublinear term frequency,
    sign(x) * log(1 + |x|), is L2-normalised on its own (so long texts' many character n-grams do not drown
    the words) and weighted; the sum is L2-normalised. There is no inverse document frequency on purpose: a
    bank grows online, and a stored vector must not depend on what else happens to be in the bank.

    Memory: a bank holds N x dim float32 values, 400 MB for 100k entries at the default dim of 1024.
    Text with no features (empty or only whitespace) embeds to the zero vector.
    """

    def __init__(
        self,
        dim: int = 1024,
        *,
        char_ngrams: tuple[int, int] = (3, 5),
        lowercase: bool = True,
        weights: tuple[float, float, float] = (1.0, 0.5, 1.0),  # unigrams, bigrams, character n-grams
        batch_size: int = 512,
    ) -> None:
        if dim < 2:
            raise ValueError(f"HashingEmbedder: dim must be at least 2, got {dim}")
        if not 1 <= char_ngrams[0] <= char_ngrams[1]:
            raise ValueError(
                f"HashingEmbedder: char_ngrams must be (low, high) with 1 <= low <= high, got {char_ngrams}"
            )
        self.dim = dim
        self.char_ngrams = char_ngrams
        self.lowercase = lowercase
        self.weights = weights
        self.batch_size = batch_size
        self._word_hashes: dict[str, int] = {}  # words repeat (Zipf), so hashing each once pays off

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, char_ngrams={self.char_ngrams}, lowercase={self.lowercase})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` into a (len(texts), dim) float32 array of unit (or all-zero) rows."""
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = [self._normalize(text) for text in texts[start : start + self.batch_size]]
            result[start : start + len(batch)] = self._embed_batch(batch)
        return result

    def _normalize(self, text: str) -> str:
        text = _SPACES.sub(" ", text).strip()
        return text.lower() if self.lowercase else text

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        words = [_WORD.findall(text) for text in texts]
        word_rows = np.repeat(np.arange(len(texts)), [len(row) for row in words])
        word_hashes = np.fromiter(
            (self._hash_word(word) for row in words for word in row), dtype=_U64, count=len(word_rows)
        )
        # A bigram is two consecutive words of the same text.
        same_text = word_rows[1:] == word_rows[:-1]
        bigram_hashes = (word_hashes[:-1] * _PRIME + _mix(word_hashes[1:]))[same_text]
        blocks = (
            self._histogram(word_rows, word_hashes, len(texts), salt=1),
            self._histogram(word_rows[1:][same_text], bigram_hashes, len(texts), salt=2),
            self._histogram(*self._char_ngram_hashes(texts), len(texts), salt=3),
        )
        weighted = [weight * _unit_rows(block) for weight, block in zip(self.weights, blocks, strict=True)]
        return _unit_rows(functools.reduce(np.add, weighted))

    def _hash_word(self, word: str) -> int:
        cached = self._word_hashes.get(word)
        if cached is None:
            if len(self._word_hashes) > 1_000_000:  # bound the cache on open-ended vocabularies
                self._word_hashes.clear()
            # Python's hash() is salted per process; an embedding must be the same in every run.
            cached = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            self._word_hashes[word] = cached
        return cached

    def _char_ngram_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, hash) of every character n-gram of every text, computed over the whole batch at once."""
        padded = [f" {text} " if text else "" for text in texts]  # the spaces mark the text's edges
        lengths = np.array([len(text) for text in padded], dtype=np.int64)
        codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(_U64)
        ends = np.cumsum(lengths)
        row_of = np.repeat(np.arange(len(texts)), lengths)
        rows, hashes = [], []
        for n in range(self.char_ngrams[0], self.char_ngrams[1] + 1):
            count = len(codes) - n + 1
            if count <= 0:
                continue
            ngram = np.full(count, _U64(n), dtype=_U64)  # seeding with n keeps "ab" and "ab\0" apart
            for offset in range(n):
                ngram = ngram * _PRIME + codes[offset : offset + count]
            inside = np.arange(count) + n <= ends[row_of[:count]]  # drop n-grams spanning two texts
            rows.append(row_of[:count][inside])
            hashes.append(ngram[inside])
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=_U64)
        return np.concatenate(rows), np.concatenate(hashes)

    def _histogram(self, rows: np.ndarray, hashes: np.ndarray, n_rows: int, *, salt: int) -> np.ndarray:
        """Sublinear signed bucket counts, shape (n_rows, dim); the salt separates the feature families."""
        mixed = _mix(hashes + _U64(salt * int(_MIX_2) % 2**64))
        buckets = (mixed % _U64(self.dim)).astype(np.int64)
        signs = np.where((mixed >> _U64(63)) == 1, -1.0, 1.0)
        flat = np.bincount(
            rows.astype(np.int64) * self.dim + buckets, weights=signs, minlength=n_rows * self.dim
        ).astype(np.float64, copy=False)  # bincount returns integers when there are no features at all
        # Sublinear term frequency, sign(x) * log(1 + |x|), on the few non-zero buckets only.
        touched = np.flatnonzero(flat)
        flat[touched] = np.sign(flat[touched]) * np.log1p(np.abs(flat[touched]))
        return flat.reshape(n_rows, self.dim)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


# --------------------------------------------------------------------------------------------------------
# The bank
# --------------------------------------------------------------------------------------------------------


def _label_key(label: Any) -> str:
    """Labels compare as text, ignoring case and whitespace differences (as `label_equal` does)."""
    return " ".join(str(label).casefold().split())


_ADD_BATCH = 4096  # entries embedded together


class MemoryBank:
    """Records searchable by the cosine similarity of their `search_field`, optionally labelled.

    Entries are plain dicts. The embedding matrix is one contiguous float32 array whose capacity doubles
    when full, so adding one batch at a time to a bank of 100k entries stays cheap. Rows are unit vectors
    (the bank normalises whatever the embedder returns), so cosine similarity is a single matrix-vector
    product. Not thread-safe: add and search from one thread.
    """

    def __init__(
        self,
        name: str,
        search_field: str,
        label_field: str | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.name = name
        self.search_field = search_field
        self.label_field = label_field
        self.embedder: Embedder = embedder if embedder is not None else HashingEmbedder()
        self._entries: list[dict[str, Any]] = []
        self._vectors = np.zeros((0, 0), dtype=np.float32)  # (capacity, D), rows [0, len) in use
        self._searchable = np.zeros(0, dtype=bool)  # False for rows whose embedding is all zero
        self._label_ids = np.zeros(0, dtype=np.int64)
        self._label_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryBank({self.name!r}, {len(self)} entries, search_field={self.search_field!r})"

    __str__ = __repr__

    @property
    def entries(self) -> tuple[dict[str, Any], ...]:
        """Copies of the entries in insertion order."""
        return tuple(dict(entry) for entry in self._entries)

    @property
    def unsearchable_count(self) -> int:
        """How many entries have an all-zero embedding and are therefore never returned by `search`."""
        return int(len(self) - self._searchable[: len(self)].sum())

    # ---- adding ------------------------------------------------------------------------------------------

    def add(self, entries: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> int:
        """Embed and append entries (one mapping or several); returns how many were added."""
        batch = [entries] if isinstance(entries, Mapping) else list(entries)
        # Bounded batches keep the embedder's scratch memory small (a checkpoint's bank is added at once).
        return sum(self._add(batch[start : start + _ADD_BATCH]) for start in range(0, len(batch), _ADD_BATCH))

    def _add(self, batch: Sequence[Mapping[str, Any]]) -> int:
        records = [self._validated(entry, len(self) + offset) for offset, entry in enumerate(batch)]
        vectors = self._embed([record[self.search_field] for record in records])
        self._reserve(len(self) + len(records), vectors.shape[1])
        start, stop = len(self), len(self) + len(records)
        self._vectors[start:stop] = vectors
        self._searchable[start:stop] = np.linalg.norm(vectors, axis=1) > 0
        if self.label_field is not None:
            self._label_ids[start:stop] = [self._label_id(record[self.label_field]) for record in records]
        self._entries.extend(records)
        return len(records)

    def _validated(self, entry: Mapping[str, Any], position: int) -> dict[str, Any]:
        if not isinstance(entry, Mapping):
            raise TypeError(f"bank {self.name!r}: entry {position} is a {type(entry).__name__}, not a record")
        text = entry.get(self.search_field)
        if not isinstance(text, str):
            found = "is missing" if text is None else f"is a {type(text).__name__}, not text"
            raise ValueError(f"bank {self.name!r}: entry {position}: search field {self.search_field!r} {found}")
        if self.label_field is not None and entry.get(self.label_field) is None:
            raise ValueError(f"bank {self.name!r}: entry {position}: label field {self.label_field!r} is missing")
        return dict(entry)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with the configured embedder, check the shape and make every non-zero row a unit vector."""
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] == 0:
            raise ValueError(f"bank {self.name!r}: embedder returned shape {vectors.shape} for {len(texts)} texts")
        expected_dim = self._vectors.shape[1]
        if expected_dim and vectors.shape[1] != expected_dim:
            raise ValueError(f"bank {self.name!r}: embedder returned dimension {vectors.shape[1]}, not {expected_dim}")
        if not np.isfinite(vectors).all():
            raise ValueError(f"bank {self.name!r}: embedder returned non-finite values")
        return _unit_rows(vectors)

    def _reserve(self, needed: int, dim: int) -> None:
        """Grow the arrays geometrically (amortised O(1) per entry), keeping the matrix contiguous."""
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity, 64)
        self._vectors = _grown(self._vectors, new_capacity, len(self), (dim,))
        self._searchable = _grown(self._searchable, new_capacity, len(self))
        self._label_ids = _grown(self._label_ids, new_capacity, len(self))

    def _label_id(self, label: Any) -> int:
        return self._label_index.setdefault(_label_key(label), len(self._label_index))

    # ---- searching ---------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 5,
        label_in: Sequence[str] = (),
        label_not_in: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The `k` entries most similar to `query`, most similar first (ties: earlier insertion first).

        `label_in` keeps only entries with one of those labels (empty = all); `label_not_in` drops entries
        with one of those labels; labels compare ignoring case and whitespace. Entries with a zero embedding
        are never returned, and a query whose embedding is zero (empty text) returns nothing, since it has
        no similarity to anything. Returns copies of the entries.
        """
        return [entry for entry, _ in self.search_scored(query, k, label_in, label_not_in)]

    def search_scored(
        self,
        query: str,
        k: int = 5,
        label_in: Sequence[str] = (),
        label_not_in: Sequence[str] = (),
    ) -> list[tuple[dict[str, Any], float]]:
        """Like `search`, with each entry's cosine similarity to the query."""
        if (label_in or label_not_in) and self.label_field is None:
            raise ValueError(f"bank {self.name!r} has no label field, so it cannot filter by label")
        if k <= 0 or not len(self):
            return []
        query_vector = self._embed([query])[0]
        if not query_vector.any():
            return []
        candidates = np.flatnonzero(self._candidate_mask(label_in, label_not_in))
        # Scoring is memory-bound: gather the candidate rows when a label filter leaves few of them,
        # otherwise one contiguous mat-vec over all rows reads less than a gather would copy.
        if 2 * len(candidates) < len(self):
            scores = self._vectors[candidates] @ query_vector  # (C,)
        else:
            scores = (self._vectors[: len(self)] @ query_vector)[candidates]  # (N,) -> (C,)
        order = _top_k(scores, candidates, k)
        return [(dict(self._entries[candidates[i]]), float(scores[i])) for i in order]

    def _candidate_mask(self, label_in: Sequence[str], label_not_in: Sequence[str]) -> np.ndarray:
        mask = self._searchable[: len(self)].copy()
        labels = self._label_ids[: len(self)]
        if label_in:
            mask &= np.isin(labels, self._known_label_ids(label_in))
        if label_not_in:
            mask &= ~np.isin(labels, self._known_label_ids(label_not_in))
        return mask

    def _known_label_ids(self, labels: Sequence[str]) -> list[int]:
        keys = (_label_key(label) for label in labels)
        return [self._label_index[key] for key in keys if key in self._label_index]

    # ---- files -------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the entries as JSONL, one per line, in insertion order (atomically: temp file + rename).

        Embeddings are not stored: `load` recomputes them, so a file never goes stale when the embedder
        changes, and stays readable and editable by hand.
        """
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for entry in self._entries:
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        os.replace(temporary, target)

    def load(self, path: str | os.PathLike[str], *, limit: int | None = None) -> int:
        """Add the entries of a data file (JSONL, or any format `load_rows` reads); returns how many.

        A malformed line raises `harnessc.runtime.data.DataError` naming the line.
        """
        return self.add([row.values for row in load_rows(path, limit=limit)])

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike[str],
        *,
        search_field: str,
        label_field: str | None = None,
        name: str | None = None,
        embedder: Embedder | None = None,
        limit: int | None = None,
    ) -> MemoryBank:
        """A new bank filled from a JSONL file written by `save` (or by hand)."""
        bank = cls(name or Path(path).stem, search_field, label_field, embedder)
        bank.load(path, limit=limit)
        return bank


def _grown(array: np.ndarray, capacity: int, used: int, row_shape: tuple[int, ...] = ()) -> np.ndarray:
    """A zeroed array of `capacity` rows holding the first `used` rows of `array`."""
    grown = np.zeros((capacity, *row_shape), dtype=array.dtype)
    if used:  # the first allocation starts from a (0, 0) placeholder whose width is not known yet
        grown[:used] = array[:used]
    return grown


def _top_k(scores: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Indices into `scores` of the k best, by descending score then ascending position (deterministic).

    argpartition alone would cut arbitrarily through ties at the k-th score; keeping every candidate that
    reaches the k-th score and then sorting by (score, position) makes the cut reproducible.
    """
    if len(scores) > k:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        kept = np.flatnonzero(scores >= threshold)
    else:
        kept = np.arange(len(scores))
    order = np.lexsort((positions[kept], -scores[kept]))  # the last key is the primary one
    return kept[order[:k]]
