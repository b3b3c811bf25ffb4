"""The weight push's log: vLLM's harmless reload warning for rotary embeddings is dropped, any other kept."""

from __future__ import annotations

import logging

import pytest

from harnessc.engines.vllm_engine import _RELOAD_LOGGER, _harmless_reload_warning


def _record(*args: object, msg: str = "%s: Failed to load weights") -> logging.LogRecord:
    return logging.LogRecord(_RELOAD_LOGGER, logging.WARNING, __file__, 1, msg, args, None)


@pytest.mark.parametrize("layer", ["RotaryEmbedding", "Llama3RotaryEmbedding", "MRotaryEmbedding"])
def test_a_rotary_embedding_without_pushed_weights_is_not_reported(layer: str) -> None:
    # its cos/sin cache is computed, not learned: vLLM puts the layer's own cache back
    assert _harmless_reload_warning(_record(layer)) is False


@pytest.mark.parametrize(
    "record",
    [
        _record("QKVParallelLinear"),  # a layer whose weights did not arrive: a real problem
        _record("VocabParallelEmbedding"),
        _record(msg="Allocating %.1f MB of device memory"),
        _record(msg="%s: Failed to load weights"),  # no layer named
    ],
)
def test_every_other_reload_message_is_kept(record: logging.LogRecord) -> None:
    assert _harmless_reload_warning(record) is True
