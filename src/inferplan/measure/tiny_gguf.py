"""A tiny llama-architecture GGUF with random weights, written locally (no download), for a real llama-server.

The llama.cpp counterpart of ``tiny.py``: `bench` tests stand up ``llama-server`` on loopback with it.
Its SentencePiece ("llama") vocabulary holds ``▁word`` for every word `bench` writes prompts with
(plus the prefixes llama.cpp's SPM merges pass through, the 256 byte tokens and <unk>/<s>/</s>), and
it adds no BOS, so a prompt of N words is exactly N tokens. The output projection is zero on every
row but the whole words', so greedy decoding (bench sends temperature 0) only ever picks a whole
word: each token is one streamed chunk of text, and never EOS, so a request yields ``max_tokens``.
Needs the ``gguf`` package (llama.cpp's own writer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from inferplan.measure.bench import PROMPT_WORDS

SPACE = "\u2581"  # SentencePiece's visible space; llama.cpp's SPM tokenizer turns " " into it
SPECIALS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"  # the words only: N words, N tokens


def tiny_vocab() -> tuple[list[str], list[float], list[int], int]:
    """Tokens, scores and types, and the id of the first whole word (whole words fill the rest).

    SPM builds a word by merging adjacent symbols only into strings the vocabulary holds, so every
    ``▁`` prefix of a word is a token too; whole words come last, with the highest scores.
    """
    from gguf import TokenType

    tokens = list(SPECIALS)
    types = [int(TokenType.UNKNOWN), int(TokenType.CONTROL), int(TokenType.CONTROL)]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [int(TokenType.BYTE)] * 256
    words = [SPACE + w for w in dict.fromkeys(PROMPT_WORDS)]
    whole = set(words)
    prefixes = sorted({w[:n] for w in words for n in range(2, len(w))} - whole, key=lambda p: (len(p), p))
    tokens += prefixes
    types += [int(TokenType.NORMAL)] * len(prefixes)
    first_word = len(tokens)
    tokens += words
    types += [int(TokenType.NORMAL)] * len(words)
    scores = [0.0] * (first_word - len(prefixes)) + [-float(len(p)) for p in prefixes] + [0.0] * len(words)
    return tokens, scores, types, first_word


def _weights(rng: np.random.Generator, *, vocab: int, first_word: int, layers: int, hidden: int, heads: int,
             kv_heads: int, intermediate: int) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor by its GGUF name; numpy shapes are (rows, cols) = GGUF's ne reversed."""
    head_dim = hidden // heads

    def mat(rows: int, cols: int) -> np.ndarray[Any, Any]:
        m: np.ndarray[Any, Any] = (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float16)
        return m

    out = {"token_embd.weight": mat(vocab, hidden), "output_norm.weight": np.ones(hidden, np.float32)}
    output = mat(vocab, hidden)
    output[:first_word] = 0  # logit 0 for specials, bytes and prefixes; some whole word always beats it
    out["output.weight"] = output
    q, kv = heads * head_dim, kv_heads * head_dim
    for i in range(layers):
        b = f"blk.{i}."
        out |= {b + "attn_norm.weight": np.ones(hidden, np.float32), b + "ffn_norm.weight": np.ones(hidden, np.float32),
                b + "attn_q.weight": mat(q, hidden), b + "attn_k.weight": mat(kv, hidden),
                b + "attn_v.weight": mat(kv, hidden), b + "attn_output.weight": mat(hidden, q),
                b + "ffn_gate.weight": mat(intermediate, hidden), b + "ffn_up.weight": mat(intermediate, hidden),
                b + "ffn_down.weight": mat(hidden, intermediate)}
    return out


def write_tiny_gguf(path: Path, *, layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                    intermediate: int = 128, context: int = 4096, seed: int = 0) -> Path:
    """Write the model to ``path`` (F16 matrices, F32 norms); return it."""
    try:
        from gguf import GGUFWriter, LlamaFileType
    except ImportError:
        raise ImportError("writing a GGUF file needs llama.cpp's gguf package: pip install gguf") from None
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"hidden ({hidden}) must divide by heads ({heads}) and heads by kv_heads ({kv_heads})")
    tokens, scores, types, first_word = tiny_vocab()
    w = GGUFWriter(path, "llama")
    w.add_name("inferplan-tiny")
    w.add_context_length(context)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(intermediate)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(hidden // heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    rng = np.random.default_rng(seed)
    for name, array in _weights(rng, vocab=len(tokens), first_word=first_word, layers=layers, hidden=hidden,
                                heads=heads, kv_heads=kv_heads, intermediate=intermediate).items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
