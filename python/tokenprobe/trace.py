"""The trace directory format (docs/trace-format.md) and a TransformerLens-like cache."""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

# TransformerLens' short names (utils.get_act_name) -> full hook names; {L} is the layer.
_SHORT_NAMES = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "resid_pre": "blocks.{L}.hook_resid_pre",
    "resid_mid": "blocks.{L}.hook_resid_mid",
    "resid_post": "blocks.{L}.hook_resid_post",
    "attn_out": "blocks.{L}.hook_attn_out",
    "mlp_out": "blocks.{L}.hook_mlp_out",
    "q": "blocks.{L}.attn.hook_q",
    "k": "blocks.{L}.attn.hook_k",
    "v": "blocks.{L}.attn.hook_v",
    "rot_q": "blocks.{L}.attn.hook_rot_q",
    "rot_k": "blocks.{L}.attn.hook_rot_k",
    "z": "blocks.{L}.attn.hook_z",
    "result": "blocks.{L}.attn.hook_result",
    "attn_scores": "blocks.{L}.attn.hook_attn_scores",
    "scores": "blocks.{L}.attn.hook_attn_scores",
    "pattern": "blocks.{L}.attn.hook_pattern",
    "attn": "blocks.{L}.attn.hook_pattern",
    "pre": "blocks.{L}.mlp.hook_pre",
    "pre_linear": "blocks.{L}.mlp.hook_pre_linear",
    "post": "blocks.{L}.mlp.hook_post",
    "scale": "blocks.{L}.ln1.hook_scale",
    "normalized": "blocks.{L}.ln1.hook_normalized",
    "logits": "unembed.hook_out",
    # RWKV (no attention): the WKV state after each token [pos, heads, N, N], its readout, the
    # time-mix and channel-mix outputs.
    "state": "blocks.{L}.time_mix.hook_state",
    "wkv": "blocks.{L}.time_mix.hook_wkv",
    "time_mix_out": "blocks.{L}.time_mix.hook_out",
    "channel_mix_out": "blocks.{L}.channel_mix.hook_out",
}

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64,
           "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16}
_DTYPE_SIZES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_TRACE_DTYPES = ("F32", "F16", "BF16")  # what traces hold; anything else is refused

# The fallback for traces whose manifest has no "hooks" list (written before it existed,
# docs/trace-format.md): the hook names of src/probe/hooks.cpp, global ones and per-layer
# ones after "blocks.L.", and their layouts. Traces with the list are read by it alone.
_GLOBAL_HOOKS = {"hook_tokens", "hook_embed", "hook_pos_embed", "hook_rope_cos", "hook_rope_sin",
                 "ln_final.hook_scale", "ln_final.hook_normalized", "unembed.hook_out"}
_HEADS_HOOKS = {"attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_z",
                "attn.hook_result"}
_LAYER_HOOKS = {"hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized", "attn.hook_attn_scores", "attn.hook_pattern",
                "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "ln2.hook_normalized", "mlp.hook_pre",
                "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out", "hook_resid_post"} | _HEADS_HOOKS
_ATTENTION_HOOKS = {"attn.hook_pattern": 0.0, "attn.hook_attn_scores": float("-inf")}  # -> masked value

# The same bounds as the C++ reader (src/trace/trace_reader.cpp, checked_json.h).
_MAX_MANIFEST_BYTES = 64 << 20
_MAX_HEADER_BYTES = 100 << 20
_MAX_DEPTH = 64
_MAX_POSITION = 1 << 40
_MAX_HEADS = 1 << 20
_MAX_ID = (1 << 31) - 1


class TraceFormatError(ValueError):
    """A trace or shard file is not what the format says (names the file, the field and the problem)."""


def _json(raw: Union[bytes, str], where: str):
    """Parses JSON text that may be hostile: bad UTF-8, bad JSON and deep nesting are TraceFormatError."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TraceFormatError(f"{where}: not valid JSON: {str(e)[:200]}") from None
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > _MAX_DEPTH:
                raise TraceFormatError(f"{where}: JSON nests deeper than {_MAX_DEPTH} levels")
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _get(obj: dict, key: str, kind: str, where: str, required: bool = False, lo: int = -(1 << 63), hi: int = 1 << 63):
    """obj[key] checked to be of `kind` (int, str, bool, list, dict); None when absent and not required."""
    v = obj.get(key)
    if v is None:
        if required:
            raise TraceFormatError(f"{where}.{key}: is missing")
        return None
    ok = {"int": _is_int(v), "str": isinstance(v, str), "bool": isinstance(v, bool), "list": isinstance(v, list),
          "dict": isinstance(v, dict)}[kind]
    if not ok:
        raise TraceFormatError(f"{where}.{key}: is {type(v).__name__}, not {kind}")
    if kind == "int" and not lo <= v <= hi:
        raise TraceFormatError(f"{where}.{key}: {v} is outside [{lo}, {hi}]")
    return v


def _check_manifest(m, where: str) -> None:
    if not isinstance(m, dict):
        raise TraceFormatError(f"{where}: is not a JSON object")
    if m.get("format") != "tokenprobe-trace":
        raise TraceFormatError(f"{where}.format: is not tokenprobe-trace")
    _get(m, "format_version", "int", where)
    _get(m, "complete", "bool", where)
    _get(m, "prompt", "str", where)
    _get(m, "capture_stopped", "str", where)
    _get(m, "sampler", "dict", where)
    for i, t in enumerate(_get(m, "tokens", "list", where) or []):
        if not isinstance(t, dict):
            raise TraceFormatError(f"{where}.tokens[{i}]: is not an object")
        _get(t, "id", "int", f"{where}.tokens[{i}]", required=True, lo=0, hi=_MAX_ID)
        _get(t, "text", "str", f"{where}.tokens[{i}]")
    model = _get(m, "model", "dict", where)
    if model is not None:
        for key in ("path", "architecture"):
            _get(model, key, "str", f"{where}.model")
        _get(model, "config", "dict", f"{where}.model")
    capture = _get(m, "capture", "dict", where)
    if capture is not None:
        _get(capture, "spec", "str", f"{where}.capture")
    for i, iv in enumerate(_get(m, "interventions", "list", where) or []):
        if not isinstance(iv, dict):
            raise TraceFormatError(f"{where}.interventions[{i}]: is not an object")
        _get(iv, "clause", "str", f"{where}.interventions[{i}]")


def _read_steps(path: str) -> Tuple[List[dict], List[str]]:
    """Step records; only the last line may be torn (a killed run, even inside a UTF-8 character)."""
    steps: List[dict] = []
    notes: List[str] = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path} line {i + 1}"
        try:
            rec = _json(line, where)
        except TraceFormatError:
            if i != last:
                raise
            notes.append(f"steps.jsonl line {i + 1} is torn (interrupted run); skipped")
            continue
        if not isinstance(rec, dict):
            raise TraceFormatError(f"{where}: is not a JSON object")
        _get(rec, "id", "int", where, required=True, lo=0, hi=_MAX_ID)
        _get(rec, "text", "str", where)
        _get(rec, "step", "int", where)
        _get(rec, "position", "int", where, lo=0)
        _get(rec, "explain", "dict", where)
        _get(rec, "logprobs", "dict", where)
        steps.append(rec)
    return steps, notes


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a safetensors file into numpy arrays (BF16 widened to float32) and its metadata."""
    header = _header(path)
    meta = header.get("__metadata__", {})
    has_bf16 = any(v["dtype"] == "BF16" for k, v in header.items() if not k.startswith("__"))
    if not has_bf16:  # numpy has no bfloat16; the safetensors package would fail on it
        try:
            from safetensors.numpy import load_file  # optional, faster for big shards
        except ImportError:
            load_file = None
        if load_file is not None:
            return dict(load_file(path)), meta
    return _read_safetensors_numpy(path, header)


def _header(path: str) -> dict:
    """The checked header: every tensor's dtype known, shape non-negative, bytes inside the file and
    equal to what the shape needs; metadata a map of strings."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise TraceFormatError(f"{path}: too short for a safetensors header")
            n = struct.unpack("<Q", raw)[0]
            if n > size - 8 or n > _MAX_HEADER_BYTES:
                raise TraceFormatError(f"{path}: header length {n} exceeds the file")
            header = _json(f.read(n), f"{path}: header")
    except OSError as e:
        raise TraceFormatError(f"{path}: cannot be read: {e}") from None
    if not isinstance(header, dict):
        raise TraceFormatError(f"{path}: header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise TraceFormatError(f"{path}: __metadata__ is not a map of strings")
    avail = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name}"
        if name.startswith("__"):
            raise TraceFormatError(f"{where}: names starting with __ are reserved")
        if not isinstance(info, dict):
            raise TraceFormatError(f"{where}: is not an object")
        dtype = _get(info, "dtype", "str", where, required=True)
        if dtype not in _DTYPE_SIZES:
            raise TraceFormatError(f"{where}.dtype: unknown dtype {dtype}")
        shape = _get(info, "shape", "list", where, required=True)
        offsets = _get(info, "data_offsets", "list", where, required=True)
        if not all(_is_int(d) and 0 <= d < 1 << 50 for d in shape):
            raise TraceFormatError(f"{where}.shape: {shape} is not a list of sizes")
        if len(offsets) != 2 or not all(_is_int(o) for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= avail:
            raise TraceFormatError(f"{where}.data_offsets: {offsets} lies outside the file")
        need = int(np.prod(shape, dtype=object)) * _DTYPE_SIZES[dtype]
        if offsets[1] - offsets[0] != need:
            raise TraceFormatError(f"{where}: has {offsets[1] - offsets[0]} bytes but its shape needs {need}")
    header["__data_start__"] = 8 + n
    header["__metadata__"] = meta
    return header


def _read_safetensors_numpy(path: str, header: dict) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    start = header["__data_start__"]
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name.startswith("__"):
            continue
        dtype, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        raw = data[start + b:start + e]
        if dtype == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = raw.view(_DTYPES[dtype])
        else:
            raise TraceFormatError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        out[name] = np.array(arr.reshape(shape))
    return out, header["__metadata__"]


class HookFacts:
    """What a trace says about one hook: the manifest's "hooks" entry, or for traces without the
    list, the layout derived from the hook's name with sizes taken from its first tensor.

    shape has None on the axes that differ between passes (rows; keys of attention matrices);
    heads_axis and keys_axis are None when the hook has no such axis; masked is what key
    columns a query cannot see hold (attention matrices); dtype is None when not listed.
    """

    __slots__ = ("name", "shape", "rows_axis", "heads_axis", "keys_axis", "masked", "dtype", "listed")

    def __init__(self, name, shape, rows_axis, heads_axis=None, keys_axis=None, masked=0.0, dtype=None, listed=False):
        self.name, self.shape, self.rows_axis, self.heads_axis = name, shape, rows_axis, heads_axis
        self.keys_axis, self.masked, self.dtype, self.listed = keys_axis, masked, dtype, listed

    def __repr__(self) -> str:
        return f"<HookFacts {self.name} shape={self.shape} rows_axis={self.rows_axis} heads_axis={self.heads_axis}>"


def _derived_facts(hook: str) -> Optional[HookFacts]:
    """The fallback: a known hook's layout from its name, every fixed size unknown (None)."""
    m = re.fullmatch(r"blocks\.(\d{1,6})\.(.+)", hook)
    suffix = m.group(2) if m else hook
    if not (suffix in _LAYER_HOOKS if m else hook in _GLOBAL_HOOKS):
        return None
    if suffix in _ATTENTION_HOOKS:
        return HookFacts(hook, [None] * 3, 1, 0, 2, _ATTENTION_HOOKS[suffix])
    if suffix in _HEADS_HOOKS:
        return HookFacts(hook, [None] * 3, 0, 1)
    return HookFacts(hook, [None] * (1 if hook == "hook_tokens" else 2), 0)


def _axis(entry: dict, key: str, rank: int, where: str, required: bool = False) -> Optional[int]:
    return _get(entry, key, "int", where, required=required, lo=0, hi=rank - 1)


def _listed_facts(entry, where: str) -> HookFacts:
    """One entry of the manifest's "hooks" list, checked as the C++ reader checks it
    (src/trace/trace_hooks.cpp)."""
    if not isinstance(entry, dict):
        raise TraceFormatError(f"{where}: is not an object")
    name = _get(entry, "name", "str", where, required=True)
    if not name or "/" in name:
        raise TraceFormatError(f"{where}.name: {name!r} is not a hook name")
    dtype = _get(entry, "dtype", "str", where, required=True)
    if dtype not in _TRACE_DTYPES:
        raise TraceFormatError(f"{where}.dtype: {dtype} is not F32, F16 or BF16")
    shape = _get(entry, "shape", "list", where, required=True)
    if not 1 <= len(shape) <= 8:
        raise TraceFormatError(f"{where}.shape: has {len(shape)} axes, not 1 to 8")
    rank = len(shape)
    rows, heads, keys = (_axis(entry, "rows_axis", rank, where, True), _axis(entry, "heads_axis", rank, where),
                         _axis(entry, "keys_axis", rank, where))
    rows_first = rows == 0 and keys is None and heads in (None, 1)
    attention = rank == 3 and (heads, rows, keys) == (0, 1, 2)
    if not (rows_first or attention):
        raise TraceFormatError(f"{where}: rows_axis, heads_axis and keys_axis are not [pos, ...], [pos, heads, ...] "
                               "or [heads, pos, keys]")
    for d, size in enumerate(shape):
        varies = d in (rows, keys)
        if varies != (size is None):
            raise TraceFormatError(f"{where}.shape[{d}]: " + ("is not null on the axis of rows or keys" if varies
                                                              else "is null on a fixed axis"))
        if not varies and not (_is_int(size) and 1 <= size <= _MAX_POSITION):
            raise TraceFormatError(f"{where}.shape[{d}]: {size!r} is not an integer in [1, 2^40]")
    masked = entry.get("masked")
    if masked is not None:
        if keys is None:
            raise TraceFormatError(f"{where}.masked: is given for a hook without a keys axis")
        if masked != "-inf" and (isinstance(masked, bool) or not isinstance(masked, (int, float))):
            raise TraceFormatError(f'{where}.masked: {masked!r} is neither a number nor "-inf"')
    return HookFacts(name, list(shape), rows, heads, keys, float(masked or 0.0), dtype, True)


def _listed_hooks(manifest: dict, where: str) -> Optional[Dict[str, HookFacts]]:
    entries = _get(manifest, "hooks", "list", where)
    if entries is None:
        return None
    out: Dict[str, HookFacts] = {}
    for i, entry in enumerate(entries):
        facts = _listed_facts(entry, f"{where}.hooks[{i}]")
        if facts.name in out:
            raise TraceFormatError(f"{where}.hooks[{i}].name: {facts.name} is listed twice")
        out[facts.name] = facts
    return out


def _increasing(meta: dict, key: str, hi: int, where: str) -> List[int]:
    values = _get(meta, key, "list", where, required=True)
    for i, v in enumerate(values):
        if not _is_int(v) or not 0 <= v < hi:
            raise TraceFormatError(f"{where}.{key}[{i}]: {v!r} is not an integer in [0, {hi})")
        if i and v <= values[i - 1]:
            raise TraceFormatError(f"{where}.{key}[{i}]: {v} does not follow {values[i - 1]} in increasing order")
    return values


def _check_tensor(name: str, info: dict, meta_text: Optional[str], where: str, n_heads: int,
                  hooks: Dict[str, HookFacts], listed: bool) -> dict:
    """The tensor's metadata, checked against what the trace says of its hook (the manifest's
    list, or the fallback and the hook's first tensor); docs/trace-format.md, reader guarantees."""
    pass_, _, hook = name.partition("/")
    if not pass_ or not hook:
        raise TraceFormatError(f"{where}: the name is not PASS/HOOK")
    facts = hooks.get(hook)
    if facts is None:
        if listed:
            raise TraceFormatError(f"{where}: {hook} is not in the manifest's hooks list")
        facts = _derived_facts(hook)
        if facts is None:
            raise TraceFormatError(f"{where}: the name is not PASS/HOOK with a known hook (and the manifest lists no hooks)")
        hooks[hook] = facts
    if info["dtype"] not in _TRACE_DTYPES:
        raise TraceFormatError(f"{where}.dtype: {info['dtype']} is not F32, F16 or BF16")
    if facts.dtype is not None and info["dtype"] != facts.dtype:
        raise TraceFormatError(f"{where}.dtype: {info['dtype']} is not the {facts.dtype} the manifest's hooks list gives {hook}")
    shape, rank = info["shape"], len(facts.shape)
    if len(shape) != rank or min(shape, default=0) < 1:
        raise TraceFormatError(f"{where}.shape: {shape} is not a {rank}-dimensional shape of positive sizes, as {hook} needs")
    if any(want is not None and got != want for got, want in zip(shape, facts.shape)):
        source = "in the manifest's hooks list" if facts.listed else "in the trace's other passes"
        raise TraceFormatError(f"{where}.shape: {shape} does not match {hook}'s {facts.shape} {source}")
    if meta_text is None:
        raise TraceFormatError(f"{where}: metadata is missing (positions are required)")
    meta = _json(meta_text, f"{where}: metadata")
    if not isinstance(meta, dict):
        raise TraceFormatError(f"{where}: metadata is not a JSON object")
    keys = facts.keys_axis
    positions = _increasing(meta, "positions", shape[keys] if keys is not None else _MAX_POSITION, f"{where}: metadata")
    if len(positions) != shape[facts.rows_axis]:
        raise TraceFormatError(f"{where}: metadata.positions: {len(positions)} positions for {shape[facts.rows_axis]} rows")
    if meta.get("heads") is not None:
        if facts.heads_axis is None:
            raise TraceFormatError(f"{where}: metadata.heads: is given for {hook}, which has no heads axis")
        heads = _increasing(meta, "heads", n_heads, f"{where}: metadata")
        if len(heads) != shape[facts.heads_axis]:
            raise TraceFormatError(f"{where}: metadata.heads: {len(heads)} heads for a heads axis of {shape[facts.heads_axis]}")
    if not facts.listed:  # the hook's other tensors must agree with this one on the fixed axes
        facts.shape = [None if d in (facts.rows_axis, keys) else size for d, size in enumerate(shape)]
    return meta


class Trace:
    """A loaded trace: manifest, tokens, per-token steps, and the activation cache.

    Everything is checked on loading (docs/trace-format.md, "Reader guarantees"): a corrupt or
    crafted trace raises TraceFormatError naming the file and the field. In Jupyter it shows
    as the viewer (`tokenprobe report`'s page; needs the native module).
    """

    def _repr_html_(self) -> Optional[str]:
        from .html import inline, report_page
        return inline(report_page(self.path))

    def __init__(self, path: str):
        self.path = path
        manifest_path = os.path.join(path, "manifest.json")
        if not os.path.exists(manifest_path):
            raise TraceFormatError(f"{path}: no manifest.json (not a tokenprobe trace)")
        self.manifest = _json(self._read_small(manifest_path), manifest_path)
        _check_manifest(self.manifest, manifest_path)
        listed = _listed_hooks(self.manifest, manifest_path)
        self._hooks_listed = listed is not None
        # What the trace says of each hook (HookFacts): the manifest's list, or (older traces)
        # derived from each captured hook's name and first tensor.
        self.hooks: Dict[str, HookFacts] = listed if listed is not None else {}
        self.notes: List[str] = []
        self.steps: List[dict] = []
        steps_path = os.path.join(path, "steps.jsonl")
        if os.path.exists(steps_path):
            if not os.path.isfile(steps_path):
                raise TraceFormatError(f"{steps_path}: is not a regular file")
            self.steps, self.notes = _read_steps(steps_path)
        self.tensors: Dict[str, np.ndarray] = {}
        self.tensor_meta: Dict[str, dict] = {}
        for name in sorted(os.listdir(path)):
            if not name.startswith("activations-"):
                continue
            if not name.endswith(".safetensors") or not os.path.isfile(os.path.join(path, name)):
                self.notes.append(f"{name} is an unfinished shard; skipped")
                continue
            self._add_shard(os.path.join(path, name))
        if not self.complete:
            self.notes.append("the run did not complete (interrupted?)")
        self.cache = ActivationCache(self)

    @staticmethod
    def _read_small(path: str) -> bytes:
        if not os.path.isfile(path):
            raise TraceFormatError(f"{path}: is not a regular file")
        if os.path.getsize(path) > _MAX_MANIFEST_BYTES:
            raise TraceFormatError(f"{path}: is larger than {_MAX_MANIFEST_BYTES} bytes")
        with open(path, "rb") as f:
            return f.read()

    def _add_shard(self, shard: str) -> None:
        header = _header(shard)
        config = (self.manifest.get("model") or {}).get("config") or {}
        n_heads = config.get("n_heads") if _is_int(config.get("n_heads")) else _MAX_HEADS
        metas = {}
        for name, info in header.items():
            if name.startswith("__"):
                continue
            where = f"{shard}: tensor {name}"
            metas[name] = _check_tensor(name, info, header["__metadata__"].get(name), where, n_heads, self.hooks,
                                        self._hooks_listed)
            if name in self.tensor_meta:
                raise TraceFormatError(f"{where}: appears twice in the trace")
        arrays, _ = _read_safetensors_numpy(shard, header)
        self.tensors.update(arrays)
        self.tensor_meta.update(metas)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete", False))

    @property
    def tokens(self) -> List[dict]:
        """Prompt tokens as the manifest lists them: id, text, byte span."""
        return self.manifest.get("tokens") or []

    @property
    def token_ids(self) -> List[int]:
        return [t["id"] for t in self.tokens] + [s["id"] for s in self.steps]

    def passes(self) -> List[str]:
        seen = []
        for name in self.tensors:
            p = name.split("/", 1)[0]
            if p not in seen:
                seen.append(p)
        return seen

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        return f"<tokenprobe.Trace {self.path!r}: {len(self.token_ids)} tokens, {len(self.tensors)} tensors, {state}>"


class ActivationCache:
    """Indexable like TransformerLens' ActivationCache.

    cache["blocks.3.hook_resid_post"] stacks every captured position in order: [pos, ...].
    Attention hooks ([heads, q_pos, k_pos]) stack query rows and pad keys on the right
    (pattern with 0, scores with -inf), giving [heads, q_pos, n_k]. cache.positions(name)
    says which absolute positions the rows are. cache["pattern", 3] uses short names.
    """

    def __init__(self, trace: Trace):
        self._trace = trace
        self._by_hook: Dict[str, List[str]] = {}
        for name in trace.tensors:
            _, hook = name.split("/", 1)
            self._by_hook.setdefault(hook, []).append(name)
        for names in self._by_hook.values():
            names.sort(key=lambda n: self._trace.tensor_meta[n].get("positions", [0])[0])

    def keys(self) -> List[str]:
        return sorted(self._by_hook)

    def __contains__(self, key) -> bool:
        return self._resolve(key) in self._by_hook

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._by_hook)

    def _resolve(self, key: Union[str, Tuple[str, int]]) -> str:
        if isinstance(key, tuple):
            short, layer = key
            full = _SHORT_NAMES.get(short)
            if full is None:
                raise KeyError(f"unknown short name {short!r}; known: {sorted(_SHORT_NAMES)}")
            return full.replace("{L}", str(int(layer)))
        return key

    def positions(self, key) -> List[int]:
        hook = self._resolve(key)
        return [p for n in self._by_hook[hook] for p in self._trace.tensor_meta[n].get("positions", [])]

    def step(self, label: str) -> Dict[str, np.ndarray]:
        """The raw tensors of one pass ("prompt", "step.3"), keyed by hook name."""
        prefix = label + "/"
        return {n[len(prefix):]: v for n, v in self._trace.tensors.items() if n.startswith(prefix)}

    def __getitem__(self, key) -> np.ndarray:
        hook = self._resolve(key)
        if hook not in self._by_hook:
            raise KeyError(f"{hook} was not captured; captured: {self.keys()}")
        parts = [self._trace.tensors[n] for n in self._by_hook[hook]]
        facts = self._trace.hooks[hook]
        if facts.keys_axis is not None:
            n_k = max(p.shape[facts.keys_axis] for p in parts)
            pad = [[(0, 0)] * p.ndim for p in parts]
            for width, p in zip(pad, parts):
                width[facts.keys_axis] = (0, n_k - p.shape[facts.keys_axis])
            parts = [np.pad(p, w, constant_values=facts.masked) for p, w in zip(parts, pad)]
        return np.concatenate(parts, axis=facts.rows_axis)


def load_trace(path: str) -> Trace:
    """Opens a .tptrace directory (complete or interrupted)."""
    return Trace(path)
