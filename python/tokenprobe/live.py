"""Running a model from Python, under TransformerLens's names (docs/python.md).

    import tokenprobe as tp
    model = tp.Model.from_pretrained("stories260K.gguf", threads=2)
    tokens = model.to_tokens("Once upon a time")          # int64 [1, pos]
    logits, cache = model.run_with_cache(tokens)          # float32 [1, pos, d_vocab]
    cache["resid_post", -1]                               # [1, pos, d_model]

The work happens in tokenprobe._native (python/src), the C++ library's forward pass and its
hook capture (the capture specs of docs/capture-spec.md). Arrays keep TransformerLens's
leading batch axis of 1.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from .trace import _SHORT_NAMES

# The library's names (model/config.cpp, config_json) -> TransformerLens's values.
_ACT_FN = {"SiLU": "silu", "GELU": "gelu_new", "GELU (erf)": "gelu", "squared ReLU": "relu_squared"}
_NORMALIZATION = {"RMSNorm": "RMS", "LayerNorm": "LN"}

TokensLike = Union[str, Sequence[int], np.ndarray]
NamesFilter = Union[None, str, Sequence[str], Callable[[str], bool]]


@dataclass(frozen=True)
class Config:
    """The model's hyper-parameters under HookedTransformerConfig's names.

    `extra` holds what TransformerLens has no name for (the library's config_json keys:
    rotary_style, embed_scale, tied_output, sequence_mixer, ...).
    """

    model_name: str
    original_architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_vocab: int
    n_ctx: int
    d_mlp: int
    act_fn: str
    normalization_type: str
    eps: float
    positional_embedding_type: str
    rotary_dim: int
    rotary_base: float
    n_key_value_heads: int
    gated_mlp: bool
    parallel_attn_mlp: bool
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return self.original_architecture

    @classmethod
    def from_native(cls, raw: dict) -> "Config":
        taken = {"name", "architecture", "n_layers", "d_model", "n_heads", "d_head", "d_vocab", "n_ctx", "d_mlp",
                 "act_fn", "normalization", "eps", "positional_embedding_type", "rotary_dim", "rotary_base",
                 "n_kv_heads", "gated_mlp", "parallel_attn_mlp"}
        return cls(
            model_name=raw["name"] or raw["architecture"], original_architecture=raw["architecture"],
            n_layers=raw["n_layers"], d_model=raw["d_model"], n_heads=raw["n_heads"], d_head=raw["d_head"],
            d_vocab=raw["d_vocab"], n_ctx=raw["n_ctx"], d_mlp=raw["d_mlp"],
            act_fn=_ACT_FN.get(raw["act_fn"], raw["act_fn"]),
            normalization_type=_NORMALIZATION.get(raw["normalization"], raw["normalization"]), eps=_f32(raw["eps"]),
            positional_embedding_type=raw["positional_embedding_type"], rotary_dim=raw["rotary_dim"],
            rotary_base=_f32(raw["rotary_base"]), n_key_value_heads=raw["n_kv_heads"], gated_mlp=raw["gated_mlp"],
            parallel_attn_mlp=raw["parallel_attn_mlp"],
            extra={k: v for k, v in raw.items() if k not in taken})


class ActivationCache(Mapping):
    """The hooks one run_with_cache captured, as TransformerLens's ActivationCache.

    cache["blocks.3.hook_resid_post"] by full hook name; cache["resid_post", 3] and
    cache["pattern", -1] by short name and layer (negative layers count from the last);
    cache["scale", 2, "ln2"] names the second norm; cache["embed"] a global hook. Values are
    numpy arrays with a leading batch axis of 1 ([1, pos, d_model]; patterns [1, head, q, k]).
    Each array owns its buffer: it stays valid after the cache and the model are gone.
    """

    def __init__(self, arrays: Dict[str, np.ndarray], model: "Model"):
        self._arrays = arrays
        self.model = model

    def _resolve(self, key) -> str:
        if isinstance(key, str):
            if key in self._arrays or key not in _SHORT_NAMES or "{L}" in _SHORT_NAMES[key]:
                return key
            return _SHORT_NAMES[key]
        if not isinstance(key, tuple) or not 2 <= len(key) <= 3:
            raise KeyError(f"{key!r}: give a hook name, or (short name, layer[, 'ln1'|'ln2'])")
        short, layer = key[0], int(key[1])
        full = _SHORT_NAMES.get(short)
        if full is None:
            raise KeyError(f"unknown short name {short!r}; known: {sorted(_SHORT_NAMES)}")
        n_layers = self.model.cfg.n_layers
        if not -n_layers <= layer < n_layers:
            raise KeyError(f"layer {layer} of {short!r}: the model has {n_layers} layers (0..{n_layers - 1}, "
                           f"or -{n_layers}..-1)")
        name = full.replace("{L}", str(layer % n_layers))
        if len(key) == 3:
            if key[2] not in ("ln1", "ln2") or ".ln1." not in name:
                raise KeyError(f"{key!r}: only 'scale' and 'normalized' take a norm, 'ln1' or 'ln2'")
            name = name.replace(".ln1.", f".{key[2]}.")
        return name

    def __getitem__(self, key) -> np.ndarray:
        name = self._resolve(key)
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"{name} was not captured; captured: {sorted(self._arrays)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} hooks: {', '.join(list(self._arrays)[:4])}{', ...' if len(self) > 4 else ''})"


class Model:
    """A model any `tokenprobe -m` path names, run on the CPU by the C++ library.

    Calls may come from several threads at once: each runs its own pass over the shared,
    read-only weights, with the GIL released while the forward pass runs.
    """

    def __init__(self, native: "_native.Model"):
        self._native = native
        self.cfg = Config.from_native(json.loads(native.config_json()))

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike], threads: int = 0) -> "Model":
        """Loads a GGUF file, a HuggingFace folder, a nanoGPT ckpt.pt or a llama2.c .bin
        (what the CLI's -m takes, except hf:// addresses). threads: 0 for one per core."""
        return cls(_native.Model(os.fspath(path), int(threads)))

    @property
    def path(self) -> str:
        return self._native.path

    def __repr__(self) -> str:
        return f"Model({self.cfg.model_name!r}, {self._native.format}, {self.cfg.n_layers} layers, {self._native.path!r})"

    def hook_names(self) -> List[str]:
        """Every hook this model computes, in the order the forward pass offers them."""
        return self._native.hook_names()

    def to_tokens(self, input: str, prepend_bos: Optional[bool] = None, special: bool = False) -> np.ndarray:
        """Token ids, int64 [1, pos]. prepend_bos: None follows the model's tokenizer (as
        `tokenprobe tokenize` and llama.cpp do); True or False force it. special: recognise
        control tokens such as "<s>" written in the text."""
        if not isinstance(input, str):
            raise TypeError(f"to_tokens takes one str (batch 1), not {type(input).__name__}")
        ids = self._native.encode(input, prepend_bos, special)
        return np.asarray(ids, dtype=np.int64).reshape(1, -1)

    def to_str_tokens(self, input: TokensLike, prepend_bos: Optional[bool] = None) -> List[str]:
        """Each token's text; a token holding part of a UTF-8 character shows U+FFFD."""
        ids = self.to_tokens(input, prepend_bos) if isinstance(input, str) else input
        return [b.decode("utf-8", errors="replace") for b in self._native.token_bytes(_ids(ids))]

    def to_string(self, tokens: TokensLike) -> str:
        """The text the tokens decode to (the tokenizer's decode, as the CLI prints it)."""
        return self._native.decode(_ids(tokens)).decode("utf-8", errors="replace")

    def __call__(self, input: TokensLike, return_type: Optional[str] = "logits") -> Optional[np.ndarray]:
        """Logits float32 [1, pos, d_vocab] at every position (return_type "logits"; None
        runs the pass and returns nothing)."""
        _check_return_type(return_type)
        logits = self._native.forward(self._input_ids(input))
        return logits if return_type == "logits" else None

    forward = __call__

    def run_with_cache(self, input: TokensLike, names_filter: NamesFilter = None,
                       return_type: Optional[str] = "logits") -> Tuple[Optional[np.ndarray], ActivationCache]:
        """One forward pass capturing hooks: (logits, ActivationCache).

        names_filter: None captures every hook; a str is a hook name or any capture spec
        (docs/capture-spec.md: globs, presets, [layers=..., pos=..., heads=..., dtype=...]);
        a list gives several; a callable is asked about each of hook_names(). A name that
        matches no hook of this model raises UsageError (a ValueError) naming it.
        """
        _check_return_type(return_type)
        ids = self._input_ids(input)
        if names_filter is None:
            spec = "full"
        elif isinstance(names_filter, str):
            spec = names_filter
        elif callable(names_filter):
            spec = ";".join(n for n in self.hook_names() if names_filter(n))
        else:
            spec = ";".join(names_filter)
        if not spec:  # nothing selected: a plain pass and an empty cache
            logits, arrays = self._native.forward(ids), {}
        else:
            logits, arrays = self._native.run_with_cache(ids, spec)
        return (logits if return_type == "logits" else None), ActivationCache(arrays, self)

    def run_with_hooks(self, input: TokensLike, fwd_hooks: Sequence[Tuple[Union[str, Callable[[str], bool]], Callable]] = (),
                       return_type: Optional[str] = "logits") -> Optional[np.ndarray]:
        """One forward pass calling fn(activation, hook) at each hook fwd_hooks names.

        fwd_hooks: (hook name or filter on names, fn) pairs, as TransformerLens's. activation
        is a writable float32 view [1, ...] of the pass's own buffer, valid only during the
        call: change it in place or return an array of its shape to patch, ablate or steer;
        return None to leave it. hook.name is the hook's full name. An exception in fn stops
        the pass and is raised as a RuntimeError naming the hook (the original is its
        __cause__); the model stays usable. A name that is no hook of the model raises
        UsageError. The pass runs without the GIL between hook calls.
        """
        _check_return_type(return_type)
        ids = self._input_ids(input)
        pairs = []
        for name_or_filter, fn in fwd_hooks:
            names = [name_or_filter] if isinstance(name_or_filter, str) else [n for n in self.hook_names() if name_or_filter(n)]
            pairs += [(name, fn) for name in names]
        logits = self._native.run_with_hooks(ids, pairs)
        return logits if return_type == "logits" else None

    def _input_ids(self, input: TokensLike) -> List[int]:
        return _ids(self.to_tokens(input) if isinstance(input, str) else input)


def _f32(x: float) -> float:
    """A float the library holds as float32, written as its shortest float32 form (1e-05)."""
    return float(str(np.float32(x)))


def _check_return_type(return_type: Optional[str]) -> None:
    if return_type not in ("logits", None):
        raise ValueError(f"return_type {return_type!r}: only 'logits' and None exist so far (docs/python.md)")


def _ids(tokens: TokensLike) -> List[int]:
    """Token ids of one sequence: one id, a list, a 1-D array, or a [1, pos] array."""
    a = np.asarray(tokens)
    if a.ndim == 0:
        a = a.reshape(1)
    elif a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise ValueError(f"tokens of shape {a.shape}: give one sequence, [pos] or [1, pos] (batch 1)")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"tokens of dtype {a.dtype}: token ids are integers")
    return a.astype(np.int64).tolist()
