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

import html
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from .html import inline, report_page
from .resid import ResidualAnalyses
from .trace import _SHORT_NAMES, load_trace

# The library's names (model/config.cpp, config_json) -> TransformerLens's values.
_ACT_FN = {"SiLU": "silu", "GELU": "gelu_new", "GELU (erf)": "gelu", "squared ReLU": "relu_squared"}
_NORMALIZATION = {"RMSNorm": "RMS", "LayerNorm": "LN"}

TokensLike = Union[str, Sequence[int], np.ndarray]
NamesFilter = Union[None, str, Sequence[str], Callable[[str], bool]]
# The CLI's --intervene: "zero(blocks.3.attn.hook_z[heads=2])", "patch(blocks.0.hook_resid_pre,
# clean.tptrace)", ... (docs/capture-spec.md); a list gives several clauses.
Interventions = Union[None, str, Sequence[str]]
PositionsLike = Union[None, int, str, Sequence[int]]


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


class ActivationCache(ResidualAnalyses, Mapping):
    """The hooks one run_with_cache captured, as TransformerLens's ActivationCache.

    cache["blocks.3.hook_resid_post"] by full hook name; cache["resid_post", 3] and
    cache["pattern", -1] by short name and layer (negative layers count from the last);
    cache["scale", 2, "ln2"] names the second norm; cache["embed"] a global hook. Values are
    numpy arrays with a leading batch axis of 1 ([1, pos, d_model]; patterns [1, head, q, k]).
    Each array owns its buffer: it stays valid after the cache and the model are gone.
    The residual-stream analyses (accumulated_resid, decompose_resid, stack_head_results,
    apply_ln_to_stack, logit_attrs) are TransformerLens's (resid.py).
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

    def _repr_html_(self) -> str:
        """Jupyter: a table of the hooks held (name, shape, dtype, size). The viewer draws
        traces, not caches: generate(..., trace=PATH, capture=...) writes one."""
        rows = "".join(f"<tr><td><code>{html.escape(name)}</code></td><td>{list(a.shape)}</td><td>{a.dtype}</td>"
                       f"<td style='text-align:right'>{a.nbytes / 2**10:.1f} KiB</td></tr>"
                       for name, a in self._arrays.items())
        total = sum(a.nbytes for a in self._arrays.values()) / 2**20
        return (f"<details><summary>ActivationCache: {len(self)} hooks, {total:.1f} MiB "
                f"({html.escape(self.model.cfg.model_name)})</summary><table><tr><th>hook</th><th>shape</th>"
                f"<th>dtype</th><th>size</th></tr>{rows}</table></details>")


class Model:
    """A model any `tokenprobe -m` path names, run on the CPU by the C++ library.

    Calls may come from several threads at once: each runs its own pass over the shared,
    read-only weights, with the GIL released while the forward pass runs.
    """

    def __init__(self, native: "_native.Model"):
        self._native = native
        self.cfg = Config.from_native(json.loads(native.config_json()))
        self._w_u: Optional[np.ndarray] = None

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike], threads: int = 0, use_mmap: bool = True) -> "Model":
        """Loads a GGUF file, a HuggingFace folder, a nanoGPT ckpt.pt or a llama2.c .bin
        (what the CLI's -m takes, except hf:// addresses). threads: 0 for one per core.
        use_mmap=False reads the weights into the process's own memory at load (as
        llama-cpp-python's use_mmap, the CLI's --no-mmap) instead of using the file's pages."""
        return cls(_native.Model(os.fspath(path), int(threads), bool(use_mmap)))

    @property
    def path(self) -> str:
        return self._native.path

    def __repr__(self) -> str:
        return f"Model({self.cfg.model_name!r}, {self._native.format}, {self.cfg.n_layers} layers, {self._native.path!r})"

    def hook_names(self) -> List[str]:
        """Every hook this model computes, in the order the forward pass offers them."""
        return self._native.hook_names()

    @property
    def W_U(self) -> np.ndarray:
        """The unembedding [d_model, d_vocab] with the final norm's weight folded in (row i
        times weight i), as TransformerLens's fold_ln=True: normalized @ W_U + b_U are the
        logits. Dequantised to float32 on first use and kept."""
        if self._w_u is None:
            self._w_u = self.tokens_to_residual_directions(np.arange(self.cfg.d_vocab)).T.copy()
        return self._w_u

    @property
    def b_U(self) -> np.ndarray:
        """[d_vocab]: the final norm's bias through the unembedding (zeros for RMSNorm; the
        library's models have no unembedding bias of their own)."""
        weight, bias = self._native.final_norm()
        if bias is None:
            return np.zeros(self.cfg.d_vocab, dtype=np.float32)
        return (self._native.unembed_rows(list(range(self.cfg.d_vocab))) @ bias).astype(np.float32)

    def tokens_to_residual_directions(self, tokens) -> np.ndarray:
        """Each token's read-out direction [..., d_model] (a column of W_U): an id gives
        [d_model], ids of shape S give [*S, d_model]; a str must be one token."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        ids = np.asarray(tokens)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"tokens of dtype {ids.dtype}: token ids are integers")
        weight, _ = self._native.final_norm()
        rows = self._native.unembed_rows(ids.reshape(-1).astype(np.int64).tolist()) * weight
        return rows.reshape(*ids.shape, self.cfg.d_model)

    def to_single_token(self, string: str) -> int:
        """The id of a string that is one token (without BOS); ValueError otherwise."""
        ids = self._native.encode(string, False, False)
        if len(ids) != 1:
            raise ValueError(f"{string!r} is {len(ids)} tokens, not one: {self.to_str_tokens(ids)}")
        return int(ids[0])

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

    def __call__(self, input: TokensLike, return_type: Optional[str] = "logits",
                 intervene: Interventions = None) -> Optional[np.ndarray]:
        """Logits float32 [1, pos, d_vocab] at every position (return_type "logits"; None
        runs the pass and returns nothing). intervene: interventions as the CLI's
        --intervene writes them (below)."""
        _check_return_type(return_type)
        logits = self._native.forward(self._input_ids(input), _spec(intervene))
        return logits if return_type == "logits" else None

    forward = __call__

    def run_with_cache(self, input: TokensLike, names_filter: NamesFilter = None,
                       return_type: Optional[str] = "logits", capture: Optional[str] = None,
                       intervene: Interventions = None, pos: PositionsLike = None,
                       ) -> Tuple[Optional[np.ndarray], ActivationCache]:
        """One forward pass capturing hooks: (logits, ActivationCache).

        names_filter: None captures every hook; a str is a hook name or any capture spec
        (docs/capture-spec.md: globs, presets, [layers=..., pos=..., heads=..., dtype=...]);
        a list gives several; a callable is asked about each of hook_names(). A name that
        matches no hook of this model raises UsageError (a ValueError) naming it. capture: a
        capture spec as the CLI's --capture takes it ("default", "full", ...), instead of
        names_filter. intervene: interventions applied before the capture sees each value.
        pos: keep only these positions of every [pos, ...] hook (and those query rows of the
        attention matrices): an int (negative from the end), a list of ints, or the spec's
        own words ("last", "3-7", "0|5"); it is the [pos=...] option on every clause.
        """
        _check_return_type(return_type)
        ids = self._input_ids(input)
        if capture is not None:
            if names_filter is not None:
                raise ValueError("give names_filter or capture, not both")
            names_filter = capture
        if names_filter is None:
            spec = "full"
        elif isinstance(names_filter, str):
            spec = names_filter
        elif callable(names_filter):
            spec = ";".join(n for n in self.hook_names() if names_filter(n))
        else:
            spec = ";".join(names_filter)
        if spec and pos is not None:
            spec = _with_positions(spec, pos, len(ids))
        if not spec:  # nothing selected: a plain pass and an empty cache
            logits, arrays = self._native.forward(ids, _spec(intervene)), {}
        else:
            logits, arrays = self._native.run_with_cache(ids, spec, _spec(intervene))
        return (logits if return_type == "logits" else None), ActivationCache(arrays, self)

    def run_with_hooks(self, input: TokensLike, fwd_hooks: Sequence[Tuple[Union[str, Callable[[str], bool]], Callable]] = (),
                       return_type: Optional[str] = "logits", intervene: Interventions = None) -> Optional[np.ndarray]:
        """One forward pass calling fn(activation, hook) at each hook fwd_hooks names.

        fwd_hooks: (hook name or filter on names, fn) pairs, as TransformerLens's. activation
        is a writable float32 view [1, ...] of the pass's own buffer, valid only during the
        call: change it in place or return an array of its shape to patch, ablate or steer;
        return None to leave it. hook.name is the hook's full name. An exception in fn stops
        the pass and is raised as a RuntimeError naming the hook (the original is its
        __cause__); the model stays usable. A name that is no hook of the model raises
        UsageError. The pass runs without the GIL between hook calls. intervene:
        interventions applied before the hooks see each value.
        """
        _check_return_type(return_type)
        ids = self._input_ids(input)
        pairs = []
        for name_or_filter, fn in fwd_hooks:
            names = [name_or_filter] if isinstance(name_or_filter, str) else [n for n in self.hook_names() if name_or_filter(n)]
            pairs += [(name, fn) for name in names]
        logits = self._native.run_with_hooks(ids, pairs, _spec(intervene))
        return logits if return_type == "logits" else None

    def generate(self, input: TokensLike, max_new_tokens: int = 16, temperature: float = 0.0, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, typical_p: float = 1.0, seed: int = 0,
                 stop: Union[None, str, Sequence[str]] = None, stop_at_eos: bool = True,
                 repeat_penalty: float = 1.0, repeat_last_n: int = 64, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, samplers: Optional[str] = None,
                 logit_bias: Optional[Dict[int, float]] = None, top_logprobs: int = 5,
                 trace: Optional[Union[str, os.PathLike]] = None, capture: str = "default",
                 intervene: Interventions = None) -> "Generation":
        """Generates after `input` (text or ids) with the library's sampler and generation
        loop, as `tokenprobe run` and `trace` do: a Generation with .text, .ids, .stop_reason
        and .steps, each step the flight recorder's record of one chosen token.

        Sampler options are llama.cpp's (docs/sampling.md), with its defaults, except
        temperature 0 (greedy, as the CLI's run: reproducible unless asked). seed fixes every
        draw. Generation stops after max_new_tokens, at an end-of-generation token (unless
        stop_at_eos is False), at the end of the context, or where the text holds a stop
        string (the text is cut before it). samplers: the stage order ("top_k;top_p;..."),
        logit_bias: {id: bias}. top_logprobs: alternatives listed per step. trace: also write
        the run as a trace directory there, capturing `capture` (a capture spec), as
        `tokenprobe trace` does; Generation.trace opens it, and Jupyter shows it. intervene:
        interventions through the whole generation, applied as `tokenprobe trace --intervene`
        applies them (its code: a run without them on the same tokens says what they changed,
        Generation.intervention_effect); without trace= that run's trace goes to a temporary
        folder, removed afterwards."""
        trace_dir = os.fspath(trace) if trace is not None else ""
        folder = None
        if intervene and not trace_dir:
            folder = tempfile.mkdtemp(prefix="tokenprobe-generate-")
            trace_dir, capture = os.path.join(folder, "run.tptrace"), "minimal"
        try:
            raw = self._native.generate(self._input_ids(input), _sampler(locals()), int(max_new_tokens),
                                        bool(stop_at_eos), [stop] if isinstance(stop, str) else list(stop or []),
                                        False, int(top_logprobs), trace_dir, capture, _spec(intervene))
        finally:
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
        return Generation.from_json(json.loads(raw), None if folder else (trace_dir or None), self)

    def explain(self, input: TokensLike, max_new_tokens: int = 1, position: Optional[int] = None,
                temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                typical_p: float = 1.0, seed: int = 0, repeat_penalty: float = 1.0, repeat_last_n: int = 64,
                frequency_penalty: float = 0.0, presence_penalty: float = 0.0, samplers: Optional[str] = None,
                logit_bias: Optional[Dict[int, float]] = None, top_logprobs: int = 5) -> "Explanation":
        """Why each token was chosen: the "explain" records of `tokenprobe explain --json`
        (docs/explain-format.md: the logit lens, direct logit attribution and attention
        sources of the deciding position, with the sampler's record), for max_new_tokens
        tokens generated as generate() does. position: explain instead the prompt's own
        token at position + 1 (0 = after the first token), with no generation."""
        ids = self._input_ids(input)
        if position is not None:
            steps = [json.loads(self._native.explain_position(ids, int(position)))]
            return Explanation(steps, self.to_string(ids[:int(position) + 1]), self, None)
        # A trace of the run (token ids and the steps with their records, as `tokenprobe explain
        # -o` writes) in a temporary folder, removed with the Explanation: Jupyter draws it.
        folder = tempfile.mkdtemp(prefix="tokenprobe-explain-")
        trace_dir = os.path.join(folder, "explain.tptrace")
        try:
            raw = json.loads(self._native.generate(ids, _sampler(locals()), int(max_new_tokens), True, [], True,
                                                   int(top_logprobs), trace_dir, "minimal", ""))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        explanation = Explanation(raw["steps"], self.to_string(ids), self, trace_dir)
        weakref.finalize(explanation, shutil.rmtree, folder, True)
        return explanation

    def _input_ids(self, input: TokensLike) -> List[int]:
        return _ids(self.to_tokens(input) if isinstance(input, str) else input)


def _f32(x: float) -> float:
    """A float the library holds as float32, written as its shortest float32 form (1e-05)."""
    return float(str(np.float32(x)))


_SAMPLER_KEYS = ("seed", "temperature", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n",
                 "frequency_penalty", "presence_penalty", "samplers", "logit_bias")


def _sampler(args: dict) -> dict:
    """The sampler's settings among a call's arguments (native sampler_settings reads them)."""
    out = {k: args[k] for k in _SAMPLER_KEYS if args.get(k) is not None}
    if "logit_bias" in out:
        out["logit_bias"] = {int(k): float(v) for k, v in out["logit_bias"].items()}
    return out


@dataclass
class Generation:
    """What Model.generate produced: the text (cut before a stop string), every generated id
    (the end-of-generation token included when one ended it), why it stopped ("eog",
    "stop_string", "length", "context"), and one record per id: {id, text, step, position,
    logprobs: {token, logprob, top_logprobs, x_tokenprobe: the sampler's flight-recorder
    record (docs/sampling.md: raw top tokens, each stage's survivors and cut, the draw,
    flip margins)}}."""

    text: str
    ids: List[int]
    stop_reason: str
    stopped_by: str
    steps: List[dict]
    trace_dir: Optional[str] = None  # where generate(trace=...) wrote the run
    # With intervene=: the manifest's intervention_effect (docs/trace-format.md): per step the
    # unpatched model's top token on the same tokens, and the largest logit change.
    intervention_effect: Optional[dict] = None
    model: Optional["Model"] = field(default=None, repr=False)

    @classmethod
    def from_json(cls, raw: dict, trace_dir: Optional[str] = None, model: Optional["Model"] = None) -> "Generation":
        return cls(raw["text"], raw["ids"], raw["stop_reason"], raw["stopped_by"], raw["steps"], trace_dir,
                   raw["intervention_effect"], model)

    @property
    def trace(self):
        """The trace written with generate(trace=...), loaded (tokenprobe.load_trace)."""
        if self.trace_dir is None:
            raise ValueError("this generation wrote no trace: pass trace=PATH to generate")
        return load_trace(self.trace_dir)

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> Optional[str]:
        """Jupyter: the viewer over the trace written with trace=...; otherwise the text."""
        if self.trace_dir is None:
            return None
        return inline(report_page(self.trace_dir, self.model._native if self.model else None))


class Explanation(Sequence):
    """Model.explain's records, one per explained token: each {id, text, step, position,
    logprobs (generated tokens), explain: docs/explain-format.md's record}."""

    def __init__(self, steps: List[dict], context: str, model: "Model", trace_dir: Optional[str]):
        self.steps, self.context, self.model, self.trace_dir = steps, context, model, trace_dir

    def _repr_html_(self) -> Optional[str]:
        """Jupyter: the viewer's pages of the explained tokens (the trace `explain` wrote);
        an explanation of a prompt position (no generation, no trace) shows as its repr."""
        if self.trace_dir is None:
            return None
        return inline(report_page(self.trace_dir, self.model._native))

    def __getitem__(self, i):
        return self.steps[i]

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Explanation({len(self)} tokens: {[s.get('text') for s in self.steps]})"


def _with_positions(spec: str, pos: PositionsLike, n: int) -> str:
    """The capture spec with pos=... on each clause (a later option replaces an earlier one)."""
    if isinstance(pos, str):
        words = pos
    else:
        items = [pos] if isinstance(pos, (int, np.integer)) else list(pos)
        if not items:
            raise ValueError("pos=[]: give at least one position")
        for p in items:
            if not -n <= int(p) < n:
                raise ValueError(f"pos {p}: the prompt has {n} positions (0..{n - 1}, or -{n}..-1)")
        words = "|".join(str(int(p) % n) for p in items)
    clauses = [c.strip() for c in spec.split(";") if c.strip()]
    return ";".join(c[:-1] + f",pos={words}]" if c.endswith("]") else c + f"[pos={words}]" for c in clauses)


def _spec(clauses: Union[None, str, Sequence[str]]) -> str:
    """One spec string from a str or a list of clauses ("" for none)."""
    if clauses is None:
        return ""
    return clauses if isinstance(clauses, str) else ";".join(clauses)


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
