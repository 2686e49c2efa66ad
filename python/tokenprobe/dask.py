"""Probe a dataset on a Dask cluster: `tokenprobe batch` with its shards as Dask tasks (docs/batch.md).

    from distributed import Client
    import tokenprobe.dask
    client = Client("tcp://scheduler:8786")          # or LocalCluster(), or a SLURMCluster's
    manifest = tokenprobe.dask.probe_dataset(
        client, "/shared/models/model.gguf", "/shared/data/prompts.jsonl",
        capture="blocks.*.hook_resid_post[pos=last]", out="/shared/acts/run1")

Each shard (examples [j*K, (j+1)*K)) is one task. A worker process loads the model once and keeps
it for every shard it runs; a shard whose worker dies is run again elsewhere by the scheduler (a
shard that was finished is never redone: its record is on disk), and the result is the same bytes
whichever worker ran it, so the dataset equals a single-process `tokenprobe batch` run. The
model, the dataset and `out` must be paths every worker can read (and write, for `out`): one
machine, or a shared filesystem on a cluster.
"""

from __future__ import annotations

import json
import threading
from typing import Dict, Optional, Tuple

_OPTIONS = ("format", "field", "intervene", "n_generate", "stop_at_eog", "top_logprobs", "prompt_logprobs", "explain",
            "max_prompt_tokens", "examples_per_shard", "max_batch", "parallel")
_SAMPLER = ("seed", "temperature", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n",
            "frequency_penalty", "presence_penalty", "samplers", "logit_bias")

# Per worker process: one native BatchRun (its model loaded once) per run.
_RUNS: Dict[Tuple, object] = {}
_RUNS_LOCK = threading.Lock()


def _batch_run(model: str, dataset: str, out: str, options: str, sampler: str, threads: int):
    key = (model, dataset, out, options, sampler, threads)
    with _RUNS_LOCK:
        run = _RUNS.get(key)
        if run is None:
            from . import _native
            run = _native.BatchRun(model, dataset, out, options, json.loads(sampler), threads)
            _RUNS[key] = run
        return run


def _prepare(args) -> dict:
    run = _batch_run(*args)
    return {"n_shards": run.n_shards, "n_examples": run.n_examples,
            "done": [j for j in range(run.n_shards) if run.shard_done(j)]}


def _run_shard(args, shard: int) -> dict:
    return json.loads(_batch_run(*args).run_shard(shard))


def _finish(args) -> Optional[dict]:
    run = _batch_run(*args)
    if not run.write_manifest_if_complete():
        return None
    import os
    with open(os.path.join(args[2], "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def probe_dataset(client, model: str, dataset: str, capture: Optional[str] = None, out: str = "tokenprobe-batch",
                  *, threads: int = 1, retries: int = 2, progress: bool = False, **options) -> dict:
    """Runs every unfinished shard of `dataset` through `model` on the client's cluster into `out`
    and returns the manifest (manifest.json). options: n_generate, examples_per_shard,
    top_logprobs, prompt_logprobs, explain, max_prompt_tokens, format, field, stop_at_eog,
    max_batch, parallel, intervene (as `tokenprobe batch`'s flags) and the sampler's seed, temperature (default 0:
    greedy), top_k, top_p, min_p, typical_p, repeat_penalty, ... `threads`: per task (give Dask
    workers one thread each and as many processes as cores / threads). `retries`: for shards
    that raise (a worker that dies is handled by the scheduler, not counted here)."""
    from distributed import as_completed

    unknown = set(options) - set(_OPTIONS) - set(_SAMPLER)
    if unknown:
        raise TypeError(f"probe_dataset() got unknown options {sorted(unknown)}; known: {_OPTIONS + _SAMPLER}")
    run_opts = {k: v for k, v in options.items() if k in _OPTIONS}
    run_opts["capture"] = capture or ""
    sampler = {k: v for k, v in options.items() if k in _SAMPLER}
    args = (model, dataset, out, json.dumps(run_opts, sort_keys=True), json.dumps(sampler, sort_keys=True), threads)
    # One task creates the folder (run.json) and says what is left, so that workers never race to.
    plan = client.submit(_prepare, args, pure=False).result()
    todo = [j for j in range(plan["n_shards"]) if j not in set(plan["done"])]
    futures = client.map(_run_shard, [args] * len(todo), todo, pure=False, retries=retries,
                         key=[f"tokenprobe-shard-{j}-{abs(hash(args)):x}" for j in todo])
    done = 0
    for fut in as_completed(futures):
        fut.result()  # raises the shard's error once its retries are spent
        done += 1
        if progress:
            print(f"\rtokenprobe.dask: {done}/{len(todo)} shards", end="", flush=True)
    if progress and todo:
        print()
    manifest = client.submit(_finish, args, pure=False).result()
    if manifest is None:
        raise RuntimeError(f"{out}: every task finished but some shard has no record; run probe_dataset again")
    return manifest
