"""Examples per second of `tokenprobe batch`: one process (all threads), N processes splitting
the shards (--shard I/N, one thread each), and tokenprobe.dask on a LocalCluster of N worker
processes (one thread each); every run writes the same activation dataset (checked).

    PYTHONPATH=build/python /usr/bin/python3 python/bench/batch_bench.py -m MODEL [--examples 400]
        [--words 24] [--capture 'blocks.*.hook_resid_post[pos=last]'] [-n 0] [--workers 2]

The dataset is generated (seeded): --examples prompts of --words words each.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = ("once upon a time there was a little girl named lily she loved to play in the park with her dog max "
         "one day they found a big red ball and ran to the tree by the river").split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--cli", default=os.path.join(HERE, "..", "..", "build", "tokenprobe"))
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--words", type=int, default=24)
    ap.add_argument("--capture", default="blocks.*.hook_resid_post[pos=last]")
    ap.add_argument("-n", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--examples-per-shard", type=int, default=25)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tp-batch-bench-")
    data = os.path.join(work, "prompts.jsonl")
    rng = random.Random(0)
    with open(data, "w") as f:
        for i in range(a.examples):
            f.write(json.dumps({"id": i, "text": " ".join(rng.choice(WORDS) for _ in range(a.words))}) + "\n")
    flags = ["--capture", a.capture, "-n", str(a.n), "--examples-per-shard", str(a.examples_per_shard)]
    rows = []

    def cli(out, *extra):
        return subprocess.Popen([a.cli, "batch", "-m", a.model, data, "-o", out, *flags, *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def timed(name, fn):
        out = os.path.join(work, name.replace(" ", "-"))
        t0 = time.perf_counter()
        fn(out)
        s = time.perf_counter() - t0
        m = json.load(open(os.path.join(out, "manifest.json")))
        rows.append((name, s, m["examples"] / s, m["tokens"] / s, m["bytes"]))
        return out

    ref = timed(f"1 process x {a.workers} threads", lambda out: cli(out, "-t", str(a.workers)).wait())

    def split(out):
        procs = [cli(out, "-t", "1", "--shard", f"{i}/{a.workers}") for i in range(a.workers)]
        for p in procs:
            p.wait()
        cli(out, "-t", "1").wait()  # finds every shard done and writes the manifest

    split_out = timed(f"{a.workers} processes x 1 thread (--shard)", split)
    try:
        from distributed import Client, LocalCluster
        import tokenprobe.dask

        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
                Client(c) as client:
            client.submit(lambda: 0).result()  # workers up before the clock starts
            dask_out = timed(f"Dask LocalCluster, {a.workers} workers x 1 thread",
                             lambda out: tokenprobe.dask.probe_dataset(client, a.model, data, a.capture, out,
                                                                       n_generate=a.n,
                                                                       examples_per_shard=a.examples_per_shard))
    except ImportError:
        dask_out = None
    for other in [split_out] + ([dask_out] if dask_out else []):
        for f in sorted(os.listdir(os.path.join(ref, "shards"))):
            if not f.endswith(".json"):
                assert open(os.path.join(ref, "shards", f), "rb").read() == \
                    open(os.path.join(other, "shards", f), "rb").read(), f"{other}: {f} differs"
    print(f"model {a.model}; {a.examples} prompts of {a.words} words; capture {a.capture}; -n {a.n}; "
          f"{a.examples_per_shard} examples per shard; load {os.getloadavg()[0]:.1f}")
    print(f"{'setup':45} {'seconds':>8} {'examples/s':>11} {'tokens/s':>9} {'bytes':>12}")
    for name, s, eps, tps, b in rows:
        print(f"{name:45} {s:8.2f} {eps:11.2f} {tps:9.1f} {b:12d}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
