"""`tokenprobe batch` from outside: the numpy-only reader of its activation datasets, a run killed
with SIGKILL and resumed, and tokenprobe.dask on a real dask-scheduler with two dask-worker
processes, one of them killed mid-run. Every result is compared byte for byte with an
uninterrupted single-process run.

Run by ctest (tests/CMakeLists.txt: python_batch) with PYTHONPATH at the build's python/ folder
and TOKENPROBE_CLI set to the binary; ../shared is TOKENPROBE_SHARED or beside the repository.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

from tokenprobe.activations import load_activations
from tokenprobe.trace import TraceFormatError, read_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TOKENPROBE_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
CLI = os.environ.get("TOKENPROBE_CLI", "")
STORIES = os.path.join(SHARED, "models", "real", "stories260K.gguf")
pytestmark = [pytest.mark.skipif(not os.path.exists(STORIES), reason="shared models absent (set TOKENPROBE_SHARED)"),
              pytest.mark.skipif(not CLI, reason="TOKENPROBE_CLI is not set")]

WORDS = ["Once upon a time", "the little dog", "a big red ball", "she was happy", "Tom and Lily", "in the park",
         "one sunny day", "the old tree", "a funny cat", "they played"]
SPEC = "blocks.*.hook_resid_post;blocks.1.mlp.hook_post[dtype=bf16]"
FLAGS = ["--capture", SPEC, "-n", "6", "--examples-per-shard", "10", "--prompt-logprobs", "--top-logprobs", "2", "-t", "1"]


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="tp-batch-py-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def dataset(folder, n=300):
    path = os.path.join(folder, "prompts.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]}"
            f.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")
    return path


def batch(data, out, *extra, check=True):
    return subprocess.run([CLI, "batch", "-m", STORIES, data, "-o", out, *FLAGS, *extra], check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(work):
    """An uninterrupted single-process run of the 300 prompts."""
    data = dataset(work)
    out = os.path.join(work, "reference")
    batch(data, out)
    return data, out


def data_files(out):
    """{name: bytes} of every shard data file (records hold timings and are left out)."""
    folder = os.path.join(out, "shards")
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder)) if not n.endswith(".json")}


def assert_same_dataset(out, ref):
    got, want = data_files(out), data_files(ref)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs from the single-process run"
    examples = [r["example"] for r in load_activations(out).results()]
    assert examples == list(range(len(examples))), "every example once, in order"


def test_reader_is_numpy_alone(reference):
    data, out = reference
    ds = load_activations(out)
    assert ds.n_examples == 300
    assert ds.hooks[:3] == ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.1.hook_resid_post"]
    total = 0
    for shard in ds.shards():
        arrays, _ = read_safetensors(os.path.join(out, shard.entry["activations"]))
        mapped = shard.arrays()
        assert isinstance(mapped["blocks.0.hook_resid_post"], np.memmap)
        for name in ds.hooks:
            want = arrays[name]
            got = mapped[name]
            if mapped[name + "/dtype"] == "BF16":  # raw words; the reader widens them on request
                got = (np.asarray(got).astype(np.uint32) << 16).view(np.float32)
            np.testing.assert_array_equal(got, want)
        total += shard.rows
    assert total == ds.n_rows == len(ds["position"])
    # Example 17: its rows are its positions, in order, with its tokens.
    ex = ds.example(17)
    rec = next(r for s in ds.shards() for r in s.index() if r["example"] == 17)
    np.testing.assert_array_equal(ex["position"], rec["positions"])
    np.testing.assert_array_equal(ex["token"], rec["tokens"])
    assert ex["blocks.1.mlp.hook_post"].dtype == np.float32
    res = next(r for r in ds.results() if r["example"] == 17)
    assert res["id"] == "p17" and len(res["generated"]["ids"]) == 6
    assert len(rec["positions"]) == res["prompt_tokens"] + 5


def test_reader_refuses_damaged_datasets(reference, work):
    _, out = reference
    bad = os.path.join(work, "damaged")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(out, bad)
    path = os.path.join(bad, "manifest.json")
    good = json.load(open(path))
    for mutate, message in [
        (lambda m: m["shards"][0].update(activations="../../../etc/passwd"), "outside the dataset"),
        (lambda m: m["shards"].pop(3), "expected to start at"),
        (lambda m: m.update(rows=m["rows"] + 1), "do not add up"),
    ]:
        m = json.loads(json.dumps(good))
        mutate(m)
        json.dump(m, open(path, "w"))
        with pytest.raises(TraceFormatError, match=message):
            ds = load_activations(bad)
            ds.shards()[0].arrays()
    json.dump(good, open(path, "w"))
    shard = os.path.join(bad, good["shards"][1]["activations"])
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 100)
    with pytest.raises(TraceFormatError):
        load_activations(bad).shards()[1].arrays()
    os.remove(path)
    with pytest.raises(TraceFormatError, match="not complete"):
        load_activations(bad)


def wait_for(predicate, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def records(out):
    folder = os.path.join(out, "shards")
    return sorted(n for n in os.listdir(folder) if n.endswith(".json")) if os.path.isdir(folder) else []


def test_kill9_and_resume(reference, work):
    data, ref = reference
    out = os.path.join(work, "killed")
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([CLI, "batch", "-m", STORIES, data, "-o", out, *FLAGS], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: len(records(out)) >= 3 or proc.poll() is not None, 120, "three finished shards")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(out, "manifest.json")), "the run finished before it could be killed"
    before = {n: open(os.path.join(out, "shards", n), "rb").read() for n in records(out)}
    assert 3 <= len(before) < 30
    again = batch(data, out)
    assert f"{len(before)} finished before" in again.stdout
    for name, text in before.items():  # finished shards were not run again
        assert open(os.path.join(out, "shards", name), "rb").read() == text
    assert not [n for n in os.listdir(os.path.join(out, "shards")) if ".tmp" in n or n.endswith(".partial")]
    assert_same_dataset(out, ref)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_cluster_with_a_worker_killed(reference, work):
    distributed = pytest.importorskip("distributed")
    import tokenprobe.dask

    data, ref = reference
    out = os.path.join(work, "dask")
    shutil.rmtree(out, ignore_errors=True)
    port = free_port()
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    logs = open(os.path.join(work, "dask.log"), "w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=env, stdout=logs, stderr=logs)]
    address = f"tcp://127.0.0.1:{port}"
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                           "--no-nanny", "--no-dashboard"], env=env, stdout=logs, stderr=logs))
        client = distributed.Client(address, timeout=60)
        client.wait_for_workers(2, timeout=60)
        result = {}

        def probe():
            try:
                result["manifest"] = tokenprobe.dask.probe_dataset(
                    client, STORIES, data, SPEC, out, n_generate=6, examples_per_shard=10, prompt_logprobs=True,
                    top_logprobs=2, threads=1)
            except BaseException as e:  # reported by the test below
                result["error"] = e

        t = threading.Thread(target=probe)
        t.start()
        wait_for(lambda: len(records(out)) >= 3 or not t.is_alive(), 180, "three finished shards")
        procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-run; its shards go to the other
        procs[1].wait()
        assert len(records(out)) < 30, "the run finished before a worker could be killed"
        t.join(300)
        assert not t.is_alive(), "probe_dataset did not finish"
        assert "error" not in result, repr(result.get("error"))
        manifest = result["manifest"]
        assert [s["shard"] for s in manifest["shards"]] == list(range(30)), "every shard once"
        assert manifest["examples"] == 300
        assert_same_dataset(out, ref)
        ds = load_activations(out)
        np.testing.assert_array_equal(ds["blocks.3.hook_resid_post"], load_activations(ref)["blocks.3.hook_resid_post"])
        client.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        logs.close()


def test_dask_local_cluster(reference, work):
    distributed = pytest.importorskip("distributed")
    import tokenprobe.dask

    data, ref = reference
    small = os.path.join(work, "first40.jsonl")
    with open(data, encoding="utf-8") as f, open(small, "w", encoding="utf-8") as g:
        g.writelines(f.readlines()[:40])
    out = os.path.join(work, "local")
    shutil.rmtree(out, ignore_errors=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        manifest = tokenprobe.dask.probe_dataset(client, STORIES, small, SPEC, out, n_generate=6, examples_per_shard=10,
                                                 prompt_logprobs=True, top_logprobs=2, parallel=2)
        with pytest.raises(TypeError, match="unknown options"):
            tokenprobe.dask.probe_dataset(client, STORIES, small, SPEC, out, n_generat=6)
    assert manifest["examples"] == 40 and len(manifest["shards"]) == 4
    got, want = data_files(out), data_files(ref)
    for name in got:  # examples 0-39 are the reference's shards 0-3, byte for byte
        assert got[name] == want[name], name
    assert len(got) == 12
