"""A tiny random Llama with a real byte-level BPE tokenizer and a ChatML template, for fast engine tests.

Every engine (transformers, vLLM on CPU) can load the directory `build_tiny_model` writes: head_dim is 32,
which vLLM's CPU attention supports. The weights are random, so outputs are gibberish, but they are
deterministic: the same call always writes the same model.
"""

from __future__ import annotations

from pathlib import Path

# ChatML, as SmolLM2 and Qwen use it. `enable_thinking=False` inserts an empty think block (Qwen3-style),
# so tests can check that per-request template kwargs reach the template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE = 512
MAX_POSITIONS = 1024

_CORPUS = """\
The quick brown fox jumps over the lazy dog. A plan lists the steps; a solver follows them.
Question: what is two plus two? Answer: four. Question: what is three times five? Answer: fifteen.
The verifier reads the draft label and either keeps it or revises it. Yes or no? Maybe.
{"name": "Ada", "age": 36, "tags": ["math", "logic"]} [1, 2, 3] {"ok": true, "value": null}
Theft, fraud, robbery and assault are charges; the court weighs the evidence before a verdict.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 2026. Symbols: + - * / = ( ) [ ] { } < > : ; , . ! ?
system user assistant think boxed answer plan solve draft verify reference solution example
"""


def _train_tokenizer():
    """A byte-level BPE (GPT-2 style) trained on the built-in corpus, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS.splitlines() * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_llama(tokenizer):
    """Two layers, hidden 64, two heads (head_dim 32), fp32 weights from a fixed seed."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return model


def build_tiny_model(directory: str | Path) -> Path:
    """Write the tiny model (safetensors weights, config, tokenizer, chat template) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    if len(tokenizer) > VOCAB_SIZE:
        raise AssertionError(f"tokenizer has {len(tokenizer)} tokens, more than the model's {VOCAB_SIZE}")
    _random_llama(tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
