"""Activation datasets written by `tokenprobe batch --capture` (docs/batch.md), read with numpy alone.

    from tokenprobe.activations import load_activations
    ds = load_activations("out/")                   # the folder batch wrote (manifest.json)
    ds.hooks                                        # ["blocks.0.hook_resid_post", ...]
    x = ds["blocks.3.hook_resid_post"]              # [rows, d_model], all shards (a copy)
    for shard in ds.shards():                       # or shard by shard, memory-mapped:
        acts = shard.arrays()                       #   {hook: np.memmap [rows, ...], "example", "position", "token"}
    ds.example(12)                                  # {hook: [rows of example 12, ...], ...}
    ds.results()                                    # the per-example results (JSONL records)

Every file is checked as hostile input (the safetensors header, its byte ranges, the manifest's
shard list); a BF16 hook is memory-mapped as its raw uint16 words and widened to float32 when
it is read through ds[hook] or ds.example().
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterator, List

import numpy as np

from .trace import _DTYPES, TraceFormatError, _header

_INDEX_NAMES = ("example", "position", "token")


class ActivationShard:
    """One shard: its examples [first, end), row count and files."""

    def __init__(self, root: str, entry: dict, hooks: List[str]):
        self.root, self.entry, self.hooks = root, entry, hooks
        self.shard = int(entry["shard"])
        self.first, self.end = (int(v) for v in entry["examples"])
        self.rows = int(entry["rows"])

    def _path(self, key: str) -> str:
        rel = self.entry[key]
        path = os.path.normpath(os.path.join(self.root, rel))
        if os.path.isabs(rel) or not path.startswith(os.path.normpath(self.root) + os.sep):
            raise TraceFormatError(f"{self.root}/manifest.json: shard {self.shard}: {key} {rel!r} lies outside the dataset")
        return path

    def arrays(self) -> Dict[str, np.ndarray]:
        """{name: memory-mapped array}: each hook [rows, ...] (BF16 as uint16 words) and the rows'
        example, position and token (int64)."""
        path = self._path("activations")
        header = _header(path)
        start = header["__data_start__"]
        data = np.memmap(path, dtype=np.uint8, mode="r")
        out = {}
        for name in list(self.hooks) + list(_INDEX_NAMES):
            info = header.get(name)
            if not isinstance(info, dict):
                raise TraceFormatError(f"{path}: has no tensor {name}")
            if not info["shape"] or info["shape"][0] != self.rows:
                raise TraceFormatError(f"{path}: tensor {name} has shape {info['shape']}, not {self.rows} rows")
            b, e = info["data_offsets"]
            raw = data[start + b:start + e]
            dtype = info["dtype"]
            if dtype == "BF16":
                arr = raw.view(np.uint16)
            elif dtype in _DTYPES:
                arr = raw.view(_DTYPES[dtype])
            else:
                raise TraceFormatError(f"{path}: tensor {name} has unsupported dtype {dtype}")
            out[name] = arr.reshape(info["shape"])
            out[name + "/dtype"] = dtype
        return out

    def index(self) -> Iterator[dict]:
        """The shard's index records: example, id, shard, row, rows, positions, tokens."""
        return _jsonl(self._path("index"))

    def results(self) -> Iterator[dict]:
        """The shard's results.jsonl records, one per example."""
        return _jsonl(self._path("results"))


def _jsonl(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceFormatError(f"{path}:{n}: not JSON: {e}") from None


def _widen(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (np.asarray(arr).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(arr)


class ActivationDataset:
    """A finished `tokenprobe batch` folder: manifest.json and the shards it lists."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        path = os.path.join(self.root, "manifest.json")
        if not os.path.exists(path):
            done = len([n for n in os.listdir(os.path.join(self.root, "shards")) if n.endswith(".json")]) \
                if os.path.isdir(os.path.join(self.root, "shards")) else 0
            raise TraceFormatError(f"{path}: missing: the run is not complete ({done} shard records); "
                                   f"run the remaining `tokenprobe batch --shard` shares into it")
        with open(path, encoding="utf-8") as f:
            try:
                self.manifest = json.load(f)
            except json.JSONDecodeError as e:
                raise TraceFormatError(f"{path}: not JSON: {e}") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != "tokenprobe-batch":
            raise TraceFormatError(f"{path}: not a tokenprobe batch manifest")
        try:
            settings = m["settings"]
            self.hooks: List[str] = [h["name"] for h in settings["hooks"]]
            self.hook_dtypes = {h["name"]: h["dtype"] for h in settings["hooks"]}
            self.n_examples = int(m["examples"])
            self.n_rows = int(m["rows"])
            self._shards = [ActivationShard(self.root, s, self.hooks) for s in m["shards"]]
        except (KeyError, TypeError, ValueError) as e:
            raise TraceFormatError(f"{path}: incomplete manifest: {e!r}") from None
        expect = 0
        for s in self._shards:  # every example exactly once, in order
            if s.first != expect or s.end < s.first:
                raise TraceFormatError(f"{path}: shard {s.shard} covers examples [{s.first}, {s.end}), expected "
                                       f"to start at {expect}")
            expect = s.end
        if expect != self.n_examples:
            raise TraceFormatError(f"{path}: the shards cover {expect} of {self.n_examples} examples")
        if sum(s.rows for s in self._shards) != self.n_rows:
            raise TraceFormatError(f"{path}: the shards' rows do not add up to {self.n_rows}")

    def shards(self) -> List[ActivationShard]:
        return list(self._shards)

    def __getitem__(self, hook: str) -> np.ndarray:
        """Every row of one hook, all shards concatenated (float32 for BF16)."""
        if hook not in self.hooks and hook not in _INDEX_NAMES:
            raise KeyError(f"{hook!r} is not in this dataset; it holds {self.hooks}")
        parts = []
        for s in self._shards:
            a = s.arrays()
            parts.append(_widen(a[hook], a[hook + "/dtype"]))
        return np.concatenate(parts) if parts else np.zeros((0,))

    def example(self, i: int) -> Dict[str, np.ndarray]:
        """The rows of example i: {hook: [rows, ...], "position": [...], "token": [...]}."""
        for s in self._shards:
            if s.first <= i < s.end:
                for rec in s.index():
                    if rec.get("example") == i:
                        r0, n = int(rec["row"]), int(rec["rows"])
                        a = s.arrays()
                        return {k: _widen(a[k][r0:r0 + n], a[k + "/dtype"]) for k in list(self.hooks) + list(_INDEX_NAMES)}
                raise TraceFormatError(f"shard {s.shard}: example {i} is not in its index")
        raise IndexError(f"example {i} is outside the dataset's {self.n_examples}")

    def results(self) -> Iterator[dict]:
        for s in self._shards:
            yield from s.results()


def load_activations(path: str) -> ActivationDataset:
    return ActivationDataset(path)
