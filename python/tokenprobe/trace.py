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
}

_ATTENTION_HOOKS = ("attn.hook_pattern", "attn.hook_attn_scores")
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64,
           "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16}


class TraceFormatError(ValueError):
    """A trace or shard file is not what the format says (names the file and the problem)."""


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a safetensors file into numpy arrays (BF16 widened to float32) and its metadata."""
    header = _header(path)
    meta = header.get("__metadata__", {}) or {}
    has_bf16 = any(isinstance(v, dict) and v.get("dtype") == "BF16" for k, v in header.items() if k != "__metadata__")
    if not has_bf16:  # numpy has no bfloat16; the safetensors package would fail on it
        try:
            from safetensors.numpy import load_file  # optional, faster for big shards
        except ImportError:
            load_file = None
        if load_file is not None:
            return dict(load_file(path)), meta
    return _read_safetensors_numpy(path, header)


def _header(path: str) -> dict:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise TraceFormatError(f"{path}: too short for a safetensors header")
        n = struct.unpack("<Q", raw)[0]
        if n > size - 8 or n > 100 << 20:
            raise TraceFormatError(f"{path}: header length {n} exceeds the file")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise TraceFormatError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise TraceFormatError(f"{path}: header is not a JSON object")
    header["__data_start__"] = 8 + n
    return header


def _read_safetensors_numpy(path: str, header: dict) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    header = dict(header)
    start = header.pop("__data_start__")
    meta = header.pop("__metadata__", {}) or {}
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        dtype, shape = info["dtype"], [int(d) for d in info["shape"]]
        b, e = (int(x) for x in info["data_offsets"])
        if not 0 <= b <= e <= data.size - start:
            raise TraceFormatError(f"{path}: tensor {name} lies outside the file")
        raw = data[start + b:start + e]
        if dtype == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = raw.view(_DTYPES[dtype])
        else:
            raise TraceFormatError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if arr.size != int(np.prod(shape)):
            raise TraceFormatError(f"{path}: tensor {name} has {arr.size} values, shape {shape} needs more")
        out[name] = np.array(arr.reshape(shape))
    return out, meta


class Trace:
    """A loaded trace: manifest, tokens, per-token steps, and the activation cache."""

    def __init__(self, path: str):
        self.path = path
        manifest_path = os.path.join(path, "manifest.json")
        if not os.path.exists(manifest_path):
            raise TraceFormatError(f"{path}: no manifest.json (not a tokenprobe trace)")
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        if self.manifest.get("format") != "tokenprobe-trace":
            raise TraceFormatError(f"{manifest_path}: format is not tokenprobe-trace")
        self.notes: List[str] = []
        self.steps: List[dict] = []
        steps_path = os.path.join(path, "steps.jsonl")
        if os.path.exists(steps_path):
            with open(steps_path) as f:
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        self.steps.append(json.loads(line))
                    except ValueError:
                        self.notes.append(f"steps.jsonl line {i} is torn (interrupted run); skipped")
        self.tensors: Dict[str, np.ndarray] = {}
        self.tensor_meta: Dict[str, dict] = {}
        for name in sorted(os.listdir(path)):
            if not name.startswith("activations-"):
                continue
            if not name.endswith(".safetensors"):
                self.notes.append(f"{name} is an unfinished shard; skipped")
                continue
            arrays, meta = read_safetensors(os.path.join(path, name))
            for k, v in arrays.items():
                self.tensors[k] = v
                self.tensor_meta[k] = json.loads(meta.get(k, "{}"))
        if not self.complete:
            self.notes.append("the run did not complete (interrupted?)")
        self.cache = ActivationCache(self)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete", False))

    @property
    def tokens(self) -> List[dict]:
        """Prompt tokens as the manifest lists them: id, text, byte span."""
        return self.manifest.get("tokens", [])

    @property
    def token_ids(self) -> List[int]:
        prompt = [t["id"] if isinstance(t, dict) else int(t) for t in self.manifest.get("tokens", [])]
        if not prompt:
            prompt = list(self.manifest.get("prompt_ids", []))
        return prompt + [int(s["id"]) for s in self.steps]

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
        if hook.endswith(_ATTENTION_HOOKS):
            n_k = max(p.shape[2] for p in parts)
            fill = -np.inf if hook.endswith("hook_attn_scores") else 0.0
            padded = [np.pad(p, ((0, 0), (0, 0), (0, n_k - p.shape[2])), constant_values=fill) for p in parts]
            return np.concatenate(padded, axis=1)
        return np.concatenate(parts, axis=0)


def load_trace(path: str) -> Trace:
    """Opens a .tptrace directory (complete or interrupted)."""
    return Trace(path)
