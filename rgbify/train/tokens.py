"""Prompt lengths in CLIP tokens: what the text encoder of Stable Diffusion (and so every stock diffusers pipeline,
which cuts a prompt at the encoder's 77-token window) sees of a prompt.

- ``clip_tokenizer()``: a transformers ``CLIPTokenizer`` built from the BPE vocabulary that OpenAI's CLIP ships
  (``bpe_simple_vocab_16e6.txt.gz``, in the ``clip-anytorch`` wheel: ``pip install --no-deps clip-anytorch``), with
  CLIP's ids: the 256 byte symbols (printable bytes first), the same with the end-of-word mark, the 48,894 merges,
  then ``<|startoftext|>`` and ``<|endoftext|>`` (49,408 tokens). It encodes "a photo of a cat" as
  [49406, 320, 1125, 539, 320, 2368, 49407], as CLIP and SD's tokenizer do. A run's own tokenizer
  (RUN/model/tokenizer) serves as well where it is CLIP's.
- ``token_count(tokenizer, text)``: the tokens of ``text`` with the start and end tokens, the number that must not
  exceed ``CLIP_WINDOW`` (77).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import tempfile
from functools import lru_cache
from pathlib import Path

from rgbify.errors import UserError

CLIP_WINDOW = 77
"""CLIP's text window: start token, up to 75 prompt tokens, end token."""
_VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
_MERGES = 49152 - 256 - 2  # CLIP uses the first 48,894 merges of the file


def _byte_symbols() -> list[str]:
    """The 256 byte symbols of byte-level BPE in CLIP's vocabulary order: the printable bytes as themselves (in byte
    order), then the others as the characters 256, 257, ... (in byte order)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in set(printable)]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def clip_vocabulary_file() -> Path:
    """The path of CLIP's BPE vocabulary in the installed ``clip`` package (the clip-anytorch wheel); a one-line
    error if it is not installed. The package is not imported (it imports torchvision)."""
    spec = importlib.util.find_spec("clip")
    path = Path(next(iter(spec.submodule_search_locations or ())), _VOCAB_FILE) if spec else None
    if path is None or not path.is_file():
        raise UserError(f"CLIP's BPE vocabulary ({_VOCAB_FILE}) is not installed: pip install --no-deps clip-anytorch")
    return path


@lru_cache(maxsize=1)
def clip_tokenizer():
    """CLIP's tokenizer (transformers ``CLIPTokenizer``) built from the clip-anytorch wheel's BPE vocabulary."""
    from transformers import CLIPTokenizer

    lines = gzip.open(clip_vocabulary_file(), "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 1 + _MERGES]
    symbols = _byte_symbols()
    vocab = [
        *symbols,
        *(s + "</w>" for s in symbols),
        *("".join(m.split()) for m in merges),
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp, "vocab.json"), Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        tok = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=CLIP_WINDOW)
    return tok


def token_count(tokenizer, text: str) -> int:
    """The number of tokens of ``text`` with the start and end tokens, without truncation."""
    return len(tokenizer(text, truncation=False, verbose=False).input_ids)
