"""A tiny Llama-shaped model with a word-level tokenizer, written locally (no download).

Used to stand up a real OpenAI-compatible server (``transformers serve``) on loopback
for `bench` tests and the bench-vs-simulate check in docs/accuracy.md. Its tokenizer
knows the words `bench` writes prompts with, so a prompt of N words is exactly N
tokens, and it has no end-of-sequence token, so every request produces exactly
``max_tokens`` tokens. Needs the ``measure`` extra (torch, transformers).
"""

from __future__ import annotations

from pathlib import Path

from inferplan.measure.bench import PROMPT_WORDS


def write_tiny_model(folder: Path, *, layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                     intermediate: int = 128, max_positions: int = 4096, seed: int = 0) -> Path:
    """Write config.json, random weights and a tokenizer to ``folder``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = 256
    words = ["<unk>", *PROMPT_WORDS]
    words += [f"w{i}" for i in range(vocab - len(words))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")  # type: ignore[no-untyped-call]
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    fast.save_pretrained(folder)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
                      bos_token_id=None, eos_token_id=None, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder)
    return folder
