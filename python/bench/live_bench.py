"""Speed of the live Python API, for docs/performance.md: what a Python hook costs per call,
and run_with_cache's capture against a plain forward pass of the same tokens.

    PYTHONPATH=build/python python3 python/bench/live_bench.py MODEL [-p 128] [-t 2] [--runs 5]

The hook figure is (hooked - plain) / calls, a difference of two timed passes: it needs a
quiet machine and enough --runs on a large model. MODEL is any file `tokenprobe -m` opens; the TinyLlama-shaped bench models are the files
`tokenprobe bench --types q4_0` writes ($TMPDIR/tokenprobe-bench/tinyllama-shape-q4_0.gguf),
whose CLI figures for the same prompt length come from
`tokenprobe bench --types q4_0 --capture-modes off,full -p 128 -n 1`. Each figure is the
median of --runs calls after one warm-up call.
"""

import argparse
import statistics
import time

import numpy as np

import tokenprobe as tp


def median_seconds(fn, runs):
    fn()  # warm-up: page in the weights, size the buffers
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("-p", "--n-prompt", type=int, default=128, help="prompt tokens (random ids)")
    ap.add_argument("-t", "--threads", type=int, default=0, help="worker threads (0: one per core)")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    model = tp.Model.from_pretrained(a.model, threads=a.threads)
    ids = np.random.default_rng(0).integers(3, model.cfg.d_vocab, a.n_prompt)
    # Hooks the pass computes whatever is observed (the residual stream and what is added to
    # it), so that the difference to the plain pass is the calls' own cost: some others
    # (attn.hook_result, the attention matrices) are computed only when observed.
    names = [n for n in model.hook_names() if n.split(".")[-1] in ("hook_resid_pre", "hook_resid_mid",
                                                                      "hook_resid_post", "hook_attn_out", "hook_mlp_out")]
    calls = []

    def noop(activation, hook):
        calls.append(1)

    plain = median_seconds(lambda: model(ids), a.runs)
    hooked = median_seconds(lambda: model.run_with_hooks(ids, fwd_hooks=[(n, noop) for n in names]), a.runs)
    per_pass = len(calls) // (a.runs + 1)
    cached = {}
    for spec in ("default", "full"):
        cached[spec] = median_seconds(lambda: model.run_with_cache(ids, capture=spec), a.runs)
    _, cache = model.run_with_cache(ids, capture="full")
    captured = sum(v.nbytes for v in cache.values())

    print(f"model {a.model} ({model.cfg.n_layers} layers, d_model {model.cfg.d_model}), {a.n_prompt} tokens, "
          f"threads {model._native.threads}, median of {a.runs}")
    print(f"  model(tokens)                      {plain * 1e3:9.2f} ms  ({a.n_prompt / plain:8.1f} tokens/s)")
    per_call = (hooked - plain) / per_pass
    cost = f"{per_call * 1e6:.1f} us per hook call" if per_call > 0 else "no cost above the timing noise"
    print(f"  run_with_hooks, no-op at residual  {hooked * 1e3:9.2f} ms  ({per_pass} calls: {cost})")
    for spec, t in cached.items():
        print(f"  run_with_cache(capture={spec!r:9}) {t * 1e3:9.2f} ms  ({t / plain:.2f}x the plain pass)")
    print(f"  full capture holds {captured / 2**20:.1f} MiB in {len(cache)} arrays")


if __name__ == "__main__":
    main()
