"""The memory bank and its default embedder: ranking, filters, determinism, zero vectors, files, growth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harnessc.builtins.library import retrieve
from harnessc.runtime.data import DataError
from harnessc.runtime.memory_bank import Embedder, HashingEmbedder, MemoryBank

CASES = [
    {"text": "the defendant stole a bicycle from the garage at night", "label": "theft"},
    {"text": "armed with a knife the defendant took a wallet by force", "label": "robbery"},
    {"text": "he sold fake concert tickets online and kept the money", "label": "fraud"},
    {"text": "she stole a phone from an unlocked car in the street", "label": "theft"},
    {"text": "the gang broke into the house and stole jewellery with weapons", "label": "aggravated theft"},
    {"text": "a phishing email tricked the victim into sending money", "label": "fraud"},
]


@pytest.fixture
def bank() -> MemoryBank:
    memory = MemoryBank("cases", search_field="text", label_field="label")
    memory.add(CASES)
    return memory


class TableEmbedder:
    """Maps known texts to fixed vectors: lets tests construct exact ties and zero vectors."""

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = table
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([self.table[text] for text in texts], dtype=np.float32)


# ---- the embedder --------------------------------------------------------------------------------------


def test_hashing_embedder_shape_norm_and_similarity() -> None:
    embedder = HashingEmbedder(dim=256)
    vectors = embedder.embed(["the cat sat on the mat", "The  cat sat on the mat!", "stock prices fell"])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.9  # case, spacing and punctuation barely matter
    assert vectors[0] @ vectors[2] < 0.3


def test_hashing_embedder_is_a_protocol_embedder() -> None:
    assert isinstance(HashingEmbedder(), Embedder)


def test_hashing_embedder_empty_and_whitespace_text_is_zero() -> None:
    vectors = HashingEmbedder(dim=64).embed(["", "   \n", "a"])
    assert not vectors[0].any() and not vectors[1].any()
    assert vectors[2].any()  # a single character still has the character 3-gram " a "


def test_hashing_embedder_batches_do_not_change_the_result() -> None:
    texts = [case["text"] for case in CASES] * 3
    whole = HashingEmbedder(dim=128).embed(texts)
    batched = HashingEmbedder(dim=128, batch_size=4).embed(texts)
    assert np.array_equal(whole, batched)


def test_hashing_embedder_is_the_same_in_another_process() -> None:
    # Python's str hash is salted per process; the embedder must not depend on it.
    code = (
        "import sys; from harnessc.runtime.memory_bank import HashingEmbedder; "
        "sys.stdout.write(HashingEmbedder(dim=32).embed(['stable hashing please']).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    here = HashingEmbedder(dim=32).embed(["stable hashing please"]).tobytes().hex()
    assert other.stdout == here


def test_hashing_embedder_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(dim=1)
    with pytest.raises(ValueError, match="char_ngrams"):
        HashingEmbedder(char_ngrams=(4, 3))


# ---- searching -----------------------------------------------------------------------------------------


def test_search_ranks_the_most_similar_first(bank: MemoryBank) -> None:
    results = bank.search("someone stole a bicycle from a garage", k=2)
    assert results[0]["text"] == CASES[0]["text"]
    assert len(results) == 2


def test_search_scores_descend(bank: MemoryBank) -> None:
    scored = bank.search_scored("stole a phone from a car", k=6)
    scores = [score for _, score in scored]
    assert scores == sorted(scores, reverse=True)
    assert scored[0][0]["text"] == CASES[3]["text"]


def test_search_label_in_and_label_not_in(bank: MemoryBank) -> None:
    query = "stole money with a fake website"
    assert {entry["label"] for entry in bank.search(query, k=6, label_in=["fraud"])} == {"fraud"}
    assert len(bank.search(query, k=6, label_in=["fraud"])) == 2
    excluded = bank.search(query, k=6, label_not_in=["fraud", "THEFT"])  # labels compare ignoring case
    assert {entry["label"] for entry in excluded} == {"robbery", "aggravated theft"}
    assert bank.search(query, k=6, label_in=["fraud"], label_not_in=["fraud"]) == []
    assert bank.search(query, k=6, label_in=["no such label"]) == []


def test_search_k_limits_and_edge_values(bank: MemoryBank) -> None:
    assert len(bank.search("stole", k=100)) == len(CASES)
    assert bank.search("stole", k=0) == []
    assert MemoryBank("empty", "text").search("anything") == []


def test_search_returns_copies(bank: MemoryBank) -> None:
    bank.search("bicycle", k=1)[0]["label"] = "changed"
    assert bank.search("bicycle", k=1)[0]["label"] == "theft"


def test_search_is_deterministic_across_banks() -> None:
    first, second = MemoryBank("a", "text", "label"), MemoryBank("b", "text", "label")
    first.add(CASES)
    for case in CASES:  # the same entries, added one at a time
        second.add(case)
    query = "the defendant took money"
    assert first.search_scored(query, k=6) == second.search_scored(query, k=6)


def test_exact_ties_keep_insertion_order() -> None:
    table = {"a": [1, 0], "b": [1, 0], "c": [0, 1], "d": [1, 0], "q": [1, 0]}
    bank = MemoryBank("ties", "text", embedder=TableEmbedder(table))
    bank.add([{"text": name} for name in "abcd"])
    assert [entry["text"] for entry in bank.search("q", k=2)] == ["a", "b"]
    assert [entry["text"] for entry in bank.search("q", k=4)] == ["a", "b", "d", "c"]


def test_zero_vectors_are_kept_but_never_ranked() -> None:
    table = {"": [0, 0], "x": [1, 0], "y": [0.6, 0.8], "q": [1, 0]}
    bank = MemoryBank("zeros", "text", "label", embedder=TableEmbedder(table))
    bank.add([{"text": "", "label": "a"}, {"text": "x", "label": "b"}, {"text": "y", "label": "a"}])
    assert len(bank) == 3 and bank.unsearchable_count == 1
    assert [entry["text"] for entry in bank.search("q", k=5)] == ["x", "y"]
    # The zero entry must not slip in through a label filter either (the reference code's bug).
    assert [entry["text"] for entry in bank.search("q", k=5, label_in=["a"])] == ["y"]


def test_a_zero_query_returns_nothing(bank: MemoryBank) -> None:
    assert bank.search("", k=3) == []
    assert bank.search("   ", k=3) == []


def test_embeddings_are_normalised_by_the_bank() -> None:
    table = {"long": [10, 0], "short": [0.1, 0.1], "q": [1, 1]}
    bank = MemoryBank("norms", "text", embedder=TableEmbedder(table))
    bank.add([{"text": "long"}, {"text": "short"}])
    scored = bank.search_scored("q", k=2)
    assert scored[0][0]["text"] == "short"  # cosine, not dot product: the long vector does not win
    assert scored[0][1] == pytest.approx(1.0, abs=1e-6)


def test_label_filter_without_label_field_is_an_error() -> None:
    bank = MemoryBank("plain", "text")
    bank.add({"text": "x"})
    with pytest.raises(ValueError, match="no label field"):
        bank.search("x", label_in=["a"])


# ---- adding --------------------------------------------------------------------------------------------


def test_add_embeds_every_entry_once_per_batch() -> None:
    embedder = TableEmbedder({"a": [1, 0], "b": [0, 1]})
    bank = MemoryBank("calls", "text", embedder=embedder)
    assert bank.add([{"text": "a"}, {"text": "b"}]) == 2
    assert embedder.calls == 1 and len(bank) == 2
    assert bank.add([]) == 0 and embedder.calls == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"label": "a"}, "search field 'text' is missing"),
        ({"text": 3, "label": "a"}, "search field 'text' is a int, not text"),
        ({"text": "x"}, "label field 'label' is missing"),
    ],
)
def test_add_rejects_bad_entries(entry: dict, message: str) -> None:
    bank = MemoryBank("strict", "text", "label")
    with pytest.raises(ValueError, match=message):
        bank.add([{"text": "fine", "label": "a"}, entry])
    assert len(bank) == 0  # a failed batch adds nothing


def test_add_rejects_a_wrong_embedder_shape() -> None:
    class Broken:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts) + 1, 4), dtype=np.float32)

    with pytest.raises(ValueError, match="embedder returned shape"):
        MemoryBank("broken", "text", embedder=Broken()).add({"text": "x"})


def test_growth_keeps_entries_and_vectors_aligned() -> None:
    bank = MemoryBank("grow", "text", "label", embedder=HashingEmbedder(dim=64))
    texts = [f"entry number {index} about topic {index % 7}" for index in range(300)]
    for start in range(0, 300, 37):  # uneven batches cross several capacity doublings
        bank.add(
            [{"text": text, "label": str(index % 3)} for index, text in enumerate(texts[start : start + 37], start)]
        )
    assert len(bank) == 300
    for probe in (0, 63, 64, 128, 299):
        assert bank.search(texts[probe], k=1)[0]["text"] == texts[probe]
    assert {entry["label"] for entry in bank.search("entry number", k=50, label_in=["2"])} == {"2"}


# ---- files ---------------------------------------------------------------------------------------------


def test_save_load_round_trip(bank: MemoryBank, tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    bank.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == CASES
    loaded = MemoryBank.from_jsonl(path, search_field="text", label_field="label")
    assert loaded.name == "cases" and len(loaded) == len(bank)
    query = "fake tickets sold on the internet"
    assert loaded.search_scored(query, k=4) == bank.search_scored(query, k=4)


def test_load_appends_to_an_existing_bank(bank: MemoryBank, tmp_path: Path) -> None:
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps({"text": "a new arson case", "label": "arson"}) + "\n", encoding="utf-8")
    assert bank.load(path) == 1
    assert len(bank) == len(CASES) + 1
    assert bank.search("arson", k=1, label_in=["arson"])[0]["text"] == "a new arson case"


def test_load_reports_a_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl, row 1 \(line 2\): malformed JSON"):
        MemoryBank.from_jsonl(path, search_field="text", label_field="label")


def test_retrieve_builtin_uses_the_bank(bank: MemoryBank) -> None:
    results = retrieve(bank, "a knife and a wallet taken by force", 2, label_not_in=["theft"])
    assert isinstance(results, tuple) and len(results) == 2
    assert results[0]["label"] == "robbery"
    assert all(entry["label"] != "theft" for entry in results)
