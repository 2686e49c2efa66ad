"""tokenprobe.Model (the native module) against ../shared/reference and the CLI.

Run by ctest (tests/CMakeLists.txt) with PYTHONPATH at the build's python/ folder (the
package beside tokenprobe._native) and TOKENPROBE_CLI set to the binary; ../shared is
TOKENPROBE_SHARED where the caller set it, else beside the repository; or by hand: `pytest python/tests/test_live.py` in a venv where `pip install
./python` installed tokenprobe.
"""

import gc
import html
import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tokenprobe as tp

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TOKENPROBE_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
CLI = os.environ.get("TOKENPROBE_CLI", "")
REFERENCE = os.path.join(SHARED, "reference")
STORIES = os.path.join(SHARED, "models", "real", "stories260K.gguf")
needs_stories = pytest.mark.skipif(not os.path.exists(STORIES), reason="shared models absent (set TOKENPROBE_SHARED)")


def model_file(name):
    for folder in ("real", "synthetic"):
        path = os.path.join(SHARED, "models", folder, name + ".gguf")
        if os.path.exists(path):
            return path
    return None


def reference_cases():
    if not os.path.isdir(REFERENCE):
        return []
    return [(m, c) for m in sorted(os.listdir(REFERENCE)) if model_file(m)
            for c in sorted(os.listdir(os.path.join(REFERENCE, m)))
            if os.path.exists(os.path.join(REFERENCE, m, c, "tokens.json"))]


def tolerance(model):
    """tests/reference_test.cpp's bounds: 1e-4 for F32-exact models; Q4_0 rounds one layer-0
    activation the other way from llama.cpp (docs there)."""
    return (0.05, 1.0) if "q4_0" in model else (1e-4, 1e-4)


_models = {}


def load(path):
    if path not in _models:
        _models[path] = tp.Model.from_pretrained(path, threads=2)
    return _models[path]


@pytest.mark.skipif(not reference_cases(), reason="../shared/reference absent (set TOKENPROBE_SHARED)")
@pytest.mark.parametrize("name,case", reference_cases())
def test_run_with_cache_equals_reference(name, case):
    model = load(model_file(name))
    folder = os.path.join(REFERENCE, name, case)
    with open(os.path.join(folder, "tokens.json")) as f:
        ref = json.load(f)
    tokens = model.to_tokens(ref["text"])
    assert tokens.dtype == np.int64 and tokens.shape == (1, len(ref["tokens"]))
    assert tokens[0].tolist() == ref["tokens"]

    logits, cache = model.run_with_cache(tokens, names_filter=["blocks.*.hook_resid_post", "blocks.*.attn.hook_pattern"])
    act_tol, logit_tol = tolerance(name)
    n, n_layers = tokens.shape[1], model.cfg.n_layers
    want = np.load(os.path.join(folder, "logits.npy"))
    assert logits.shape == (1, n, model.cfg.d_vocab) and logits.dtype == np.float32
    np.testing.assert_allclose(logits[0], want, rtol=0, atol=logit_tol)
    np.testing.assert_array_equal(model(tokens), logits)  # the plain pass is the same pass
    assert len(cache) == 2 * n_layers
    for layer in range(n_layers):
        resid = cache["resid_post", layer]
        assert resid.shape == (1, n, model.cfg.d_model)
        assert resid is cache[f"blocks.{layer}.hook_resid_post"]
        np.testing.assert_allclose(resid[0], np.load(os.path.join(folder, f"l_out-{layer}.npy")), rtol=0, atol=act_tol)
        pattern = cache["pattern", layer]
        assert pattern.shape == (1, model.cfg.n_heads, n, n)
        np.testing.assert_allclose(pattern[0], np.load(os.path.join(folder, f"kq_soft_max_ext-{layer}.npy")),
                                   rtol=0, atol=act_tol)
    assert cache["resid_post", -1] is cache["resid_post", n_layers - 1]


@needs_stories
@pytest.mark.skipif(not CLI, reason="TOKENPROBE_CLI is not set to the tokenprobe binary")
@pytest.mark.parametrize("text,prepend_bos", [("Once upon a time, Lily saw a cat.", None), ("He picked up", False),
                                              ("  two spaces\nand a line", None)])
def test_to_tokens_equals_cli_tokenize(text, prepend_bos):
    model = load(STORIES)
    args = [CLI, "tokenize", "-m", STORIES, "--text", text, "--json"] + (["--no-bos"] if prepend_bos is False else [])
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    tokens = model.to_tokens(text, prepend_bos=prepend_bos)
    assert tokens[0].tolist() == [t["id"] for t in out["tokens"]]
    assert model.to_str_tokens(tokens) == [t["text"] for t in out["tokens"]]
    assert model.to_string(tokens[0, 1:] if prepend_bos is None else tokens) == text
    assert model.to_string(tokens[0, -1]) == model.to_string([int(tokens[0, -1])])  # one id


@needs_stories
def test_config_has_transformerlens_names():
    cfg = load(STORIES).cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_vocab, cfg.n_ctx) == (5, 64, 8, 8, 512, 2048)
    assert (cfg.n_key_value_heads, cfg.d_mlp, cfg.act_fn, cfg.normalization_type) == (4, 172, "silu", "RMS")
    assert cfg.positional_embedding_type == "rotary" and cfg.architecture == "llama" and cfg.eps == 1e-5


@needs_stories
def test_unknown_hook_name_raises_naming_it():
    model = load(STORIES)
    with pytest.raises(ValueError, match=r"blocks\.0\.hook_nonsense") as info:
        model.run_with_cache(model.to_tokens("Hi"), names_filter="blocks.0.hook_nonsense")
    assert isinstance(info.value, tp.UsageError) and info.value.kind == "usage error"
    with pytest.raises(tp.UsageError, match=r"blocks\.9\.hook_resid_post"):  # a layer the model lacks
        model.run_with_cache(model.to_tokens("Hi"), names_filter=["blocks.9.hook_resid_post"])
    logits, cache = model.run_with_cache(model.to_tokens("Hi"), names_filter="blocks.1.hook_resid_post")
    with pytest.raises(KeyError, match=r"blocks\.2\.hook_resid_post was not captured"):
        cache["resid_post", 2]
    with pytest.raises(KeyError, match="the model has 5 layers"):
        cache["resid_post", 5]


def test_missing_model_file_raises_with_its_path(tmp_path):
    missing = str(tmp_path / "no-such-model.gguf")
    with pytest.raises(OSError, match="no-such-model.gguf") as info:
        tp.Model.from_pretrained(missing)
    assert isinstance(info.value, tp.FileError) and isinstance(info.value, tp.TokenprobeError)
    assert missing in info.value.where and info.value.kind == "I/O error"


@needs_stories
def test_names_filter_forms_select_the_same_hooks():
    model = load(STORIES)
    tokens = model.to_tokens("The cat sat")
    wanted = ["blocks.0.attn.hook_pattern", "blocks.4.hook_resid_post"]
    _, by_list = model.run_with_cache(tokens, names_filter=wanted)
    _, by_callable = model.run_with_cache(tokens, names_filter=lambda n: n in wanted)
    assert sorted(by_list) == sorted(by_callable) == wanted
    for name in wanted:
        np.testing.assert_array_equal(by_list[name], by_callable[name])
    _, everything = model.run_with_cache(tokens)
    assert sorted(everything) == sorted(model.hook_names())
    np.testing.assert_array_equal(everything["embed"], everything["hook_embed"])
    n = tokens.shape[1]
    assert everything["scale", 2, "ln2"] is everything["blocks.2.ln2.hook_scale"]
    assert everything["scale", 2, "ln2"].shape == (1, n, 1)
    assert everything["q", -1].shape == (1, n, 8, 8)  # [batch, pos, head, d_head]
    assert everything["pattern", 0].shape == (1, 8, n, n)  # [batch, head, q, k]
    _, nothing = model.run_with_cache(tokens, names_filter=lambda n: False)
    assert len(nothing) == 0


@needs_stories
def test_use_mmap_false_keeps_its_own_copy_of_the_weights(tmp_path):
    # use_mmap=False reads the weights into the process's own memory (the CLI's --no-mmap):
    # overwriting the file in place afterwards changes what the mapped model computes and
    # not what the copy computes.
    path = str(tmp_path / "stories.gguf")
    with open(STORIES, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    copied = tp.Model.from_pretrained(path, threads=1, use_mmap=False)
    mapped = tp.Model.from_pretrained(path, threads=1)
    tokens = copied.to_tokens("Once upon a time")
    want = mapped(tokens)
    np.testing.assert_array_equal(copied(tokens), want)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:  # the same inode, so the mapping sees it
        f.seek(size // 3)
        f.write(b"A" * (size // 3))
    assert not np.array_equal(mapped(tokens), want), "the overwrite did not reach the mapping"
    np.testing.assert_array_equal(copied(tokens), want)


@needs_stories
def test_arrays_own_their_memory():
    model = tp.Model.from_pretrained(STORIES, threads=1)
    logits, cache = model.run_with_cache(model.to_tokens("Once upon"), names_filter="blocks.*.hook_resid_post")
    resid = cache["resid_post", 3]
    assert not resid.flags.owndata and resid.base is not None  # the captured buffer, not a copy
    expected = resid.copy(), logits.copy()
    del model, cache
    gc.collect()
    np.testing.assert_array_equal(resid, expected[0])  # still valid after the model is gone
    np.testing.assert_array_equal(logits, expected[1])


@needs_stories
def test_bad_tokens_raise():
    model = load(STORIES)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model([1, 512])
    with pytest.raises(ValueError, match="batch 1"):
        model(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="no tokens"):
        model([])


NANOGPT = os.path.join(SHARED, "models", "nanogpt")
HF_FOLDER = os.path.join(SHARED, "models", "real", "TinyStories-656K")
MAKE_FIXTURES = os.environ.get("TOKENPROBE_MAKE_FIXTURES", "")


def other_format_cases():
    """(model path, reference case folder, reference layout) for the other formats -m takes:
    nanoGPT checkpoints (their own PyTorch references) and a HuggingFace folder (llama.cpp's)."""
    cases = []
    if os.path.isdir(NANOGPT):
        for name in sorted(os.listdir(NANOGPT)):
            refs = os.path.join(NANOGPT, name, "ref")
            if os.path.isdir(refs):
                cases += [(os.path.join(NANOGPT, name, "ckpt.pt"), os.path.join(refs, c), "nanogpt") for c in sorted(os.listdir(refs))]
    hf_refs = os.path.join(SHARED, "reference-hf", "TinyStories-656K")
    if os.path.isdir(HF_FOLDER) and os.path.isdir(hf_refs):
        cases += [(HF_FOLDER, os.path.join(hf_refs, c), "llama.cpp") for c in sorted(os.listdir(hf_refs))]
    return cases


@pytest.mark.skipif(not other_format_cases(), reason="shared nanoGPT / HF fixtures absent")
@pytest.mark.parametrize("path,folder,layout", other_format_cases())
def test_other_formats_equal_their_references(path, folder, layout):
    model = load(path)
    with open(os.path.join(folder, "tokens.json")) as f:
        tokens = json.load(f)["tokens"]
    logits, cache = model.run_with_cache(tokens, names_filter="blocks.*.hook_resid_post;blocks.*.attn.hook_pattern")
    resid, pattern = ("resid_post-{L}.npy", "pattern-{L}.npy") if layout == "nanogpt" else ("l_out-{L}.npy", "kq_soft_max_ext-{L}.npy")
    # The trained HF model's residual stream reaches ~100, where one float32 step is 6.1e-5 and
    # summation order moves two: 2e-4 there, as tests/hf_reference_test.cpp's kTrained.
    act_tol = 2e-4 if layout == "llama.cpp" else 1e-4
    np.testing.assert_allclose(logits[0], np.load(os.path.join(folder, "logits.npy")), rtol=0, atol=1e-4)
    for layer in range(model.cfg.n_layers):
        np.testing.assert_allclose(cache["resid_post", layer][0], np.load(os.path.join(folder, resid.format(L=layer))),
                                   rtol=0, atol=act_tol)
        np.testing.assert_allclose(cache["pattern", layer][0], np.load(os.path.join(folder, pattern.format(L=layer))),
                                   rtol=0, atol=act_tol)


@pytest.mark.skipif(not (CLI and MAKE_FIXTURES), reason="TOKENPROBE_CLI / TOKENPROBE_MAKE_FIXTURES not set")
def test_rwkv_cache_equals_the_clis_trace(tmp_path):
    """One capture mechanism: run_with_cache gives what `tokenprobe trace` writes, bit for bit,
    here on an RWKV-6 GGUF (state [1, pos, heads, N, N]) with dtype options."""
    subprocess.run([MAKE_FIXTURES, str(tmp_path)], check=True, capture_output=True)
    path = str(tmp_path / "rwkv6-tiny-f32.gguf")
    ids = [0, 17, 42, 9, 100, 3]
    spec = "blocks.*.time_mix.hook_state;blocks.*.hook_resid_post[dtype=bf16];blocks.1.channel_mix.hook_out[dtype=f16]"
    out = str(tmp_path / "rwkv.tptrace")
    subprocess.run([CLI, "trace", "-m", path, "--tokens", ",".join(map(str, ids)), "-n", "1", "--capture", spec, "-o", out],
                   check=True, capture_output=True)
    prompt = tp.load_trace(out).cache.step("prompt")
    model = tp.Model.from_pretrained(path, threads=1)
    assert model.cfg.positional_embedding_type == "none" and model.cfg.extra["sequence_mixer"] == "rwkv6"
    _, cache = model.run_with_cache(ids, names_filter=spec)
    assert sorted(cache) == sorted(prompt)
    for name, want in prompt.items():
        assert cache[name].shape == (1, *want.shape) and cache[name].dtype == want.dtype, name
        np.testing.assert_array_equal(cache[name][0], want, err_msg=name)
    assert cache["state", 0].shape == (1, len(ids), model.cfg.n_heads, model.cfg.d_head, model.cfg.d_head)
    assert cache["resid_post", 0].dtype == np.float32 and cache["channel_mix_out", 1].dtype == np.float16


@needs_stories
def test_forward_releases_the_gil():
    """While passes run on another thread, this thread keeps running Python. A held GIL would
    stall this loop for nearly all of each pass (it would get the GIL only for a switch interval
    between passes); with the GIL released, the loop stalls only when the OS schedules it out.
    The test measures the share of time spent in stalls (gaps over 2 ms) across several passes,
    so that one preemption on a loaded two-core CI machine cannot decide it."""
    model = tp.Model.from_pretrained(STORIES, threads=1)
    ids = np.random.default_rng(0).integers(3, model.cfg.d_vocab, 512)

    def passes():
        for _ in range(4):
            model(ids)

    worker = threading.Thread(target=passes)
    stamps = [time.perf_counter()]
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
    worker.join()
    duration = stamps[-1] - stamps[0]
    assert duration > 0.1, "the passes were too short to tell"
    gaps = np.diff(stamps)
    stalled = gaps[gaps > 0.002].sum()
    assert stalled < 0.75 * duration, f"this thread stalled {stalled:.3f} s of {duration:.3f} s"


@needs_stories
def test_run_with_hooks_patching_gives_the_source_runs_logits():
    """Activation patching: every position of resid_post L taken from another prompt's run
    makes the rest of the pass that run's, so the logits equal it exactly; in place and by
    returning an array alike. A hook that returns None and changes nothing leaves the logits."""
    model = load(STORIES)
    clean = model.to_tokens("Lily went to the park")
    corrupt = clean.copy()
    corrupt[0, 1] = model.to_tokens("Tom", prepend_bos=False)[0, 0]  # another name, same length
    assert corrupt[0, 1] != clean[0, 1]
    clean_logits, clean_cache = model.run_with_cache(clean, names_filter="blocks.*.hook_resid_post")
    corrupt_logits = model(corrupt)
    assert np.abs(clean_logits - corrupt_logits).max() > 1e-3  # the two runs differ: patching is seen
    seen = []

    def look(activation, hook):
        seen.append((hook.name, activation.shape))

    np.testing.assert_array_equal(model.run_with_hooks(corrupt, fwd_hooks=[(lambda n: "resid_post" in n, look)]),
                                  corrupt_logits)
    assert seen == [(f"blocks.{layer}.hook_resid_post", (1, corrupt.shape[1], 64)) for layer in range(5)]

    def patch_in_place(activation, hook):
        activation[:] = clean_cache[hook.name]

    for layer in (1, 3):
        name = f"blocks.{layer}.hook_resid_post"
        np.testing.assert_array_equal(model.run_with_hooks(corrupt, fwd_hooks=[(name, patch_in_place)]), clean_logits)
        patched = model.run_with_hooks(corrupt, fwd_hooks=[(name, lambda a, hook: clean_cache[hook.name])])
        np.testing.assert_array_equal(patched, clean_logits)
    ablated = model.run_with_hooks(corrupt, fwd_hooks=[("blocks.4.hook_attn_out", lambda a, hook: np.zeros_like(a))])
    assert np.abs(ablated - corrupt_logits).max() > 1e-3  # the change reaches the logits


@needs_stories
def test_a_hook_that_raises_names_the_hook_and_the_model_stays_usable():
    model = load(STORIES)
    tokens = model.to_tokens("Once upon a time")
    before = model(tokens)

    def broken(activation, hook):
        raise ZeroDivisionError("on purpose")

    with pytest.raises(RuntimeError, match=r"blocks\.2\.attn\.hook_pattern") as info:
        model.run_with_hooks(tokens, fwd_hooks=[("blocks.2.attn.hook_pattern", broken)])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(RuntimeError, match=r"hook_embed") as info:
        model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", lambda a, hook: np.zeros(3))])
    assert "shape" in str(info.value.__cause__)
    with pytest.raises(tp.UsageError, match=r"blocks\.0\.hook_nonsense"):
        model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_nonsense", broken)])
    np.testing.assert_array_equal(model(tokens), before)


@needs_stories
@pytest.mark.skipif(not CLI, reason="TOKENPROBE_CLI is not set to the tokenprobe binary")
def test_run_with_hooks_patching_equals_the_clis_intervene_patch(tmp_path):
    """A Python hook copying a clean run's resid_post at one position into the corrupt run
    gives exactly what `tokenprobe trace --intervene "patch(...)"` gives, and so does the
    same clause passed as intervene= (one intervention code path, the CLI's)."""
    model = load(STORIES)
    clean = model.to_tokens("Lily went to the park and")
    corrupt = clean.copy()
    corrupt[0, 1] = model.to_tokens("Tom", prepend_bos=False)[0, 0]
    ids = lambda t: ",".join(map(str, t[0].tolist()))
    clean_dir = str(tmp_path / "clean.tptrace")
    subprocess.run([CLI, "trace", "-m", STORIES, "--tokens", ids(clean), "-n", "1", "--capture",
                    "blocks.2.hook_resid_post", "-o", clean_dir], check=True, capture_output=True)
    clause = f"patch(blocks.2.hook_resid_post[pos=1], {clean_dir})"
    patched_dir = str(tmp_path / "patched.tptrace")
    subprocess.run([CLI, "trace", "-m", STORIES, "--tokens", ids(corrupt), "-n", "1", "--capture", "unembed.hook_out",
                    "--intervene", clause, "--no-compare", "-o", patched_dir], check=True, capture_output=True)
    trace = tp.load_trace(patched_dir)
    cli_logits = trace.cache.step("prompt")["unembed.hook_out"]
    positions = trace.cache.positions("unembed.hook_out")

    _, clean_cache = model.run_with_cache(clean, names_filter="blocks.2.hook_resid_post")

    def patch(activation, hook):
        activation[:, 1] = clean_cache[hook.name][:, 1]

    patched = model.run_with_hooks(corrupt, fwd_hooks=[("blocks.2.hook_resid_post", patch)])
    assert np.abs(patched - model(corrupt)).max() > 1e-3  # the patch changes the logits
    assert positions and len(positions) == cli_logits.shape[0]
    np.testing.assert_array_equal(patched[0, positions], cli_logits)
    np.testing.assert_array_equal(model(corrupt, intervene=clause), patched)
    np.testing.assert_array_equal(model.run_with_hooks(corrupt, intervene=[clause]), patched)


@needs_stories
def test_interventions_and_capture_specs_as_strings():
    """intervene= takes the CLI's clauses: the capture sees the changed values, hooks too;
    capture= takes the CLI's capture presets."""
    model = load(STORIES)
    tokens = model.to_tokens("The cat sat on the mat")
    logits, cache = model.run_with_cache(tokens, capture="blocks.3.attn.hook_z;blocks.3.hook_mlp_out",
                                         intervene="zero(blocks.3.attn.hook_z[heads=2])")
    assert np.all(cache["z", 3][:, :, 2] == 0) and np.any(cache["z", 3][:, :, 1] != 0)

    def ablate(z, hook):
        z[:, :, 2] = 0

    np.testing.assert_array_equal(logits, model.run_with_hooks(tokens, fwd_hooks=[("blocks.3.attn.hook_z", ablate)]))
    assert np.abs(logits - model(tokens)).max() > 1e-4
    seen = []
    model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_mlp_out", lambda a, hook: seen.append(a.copy()))],
                         intervene="scale(blocks.1.hook_mlp_out, 0.5)")
    _, plain = model.run_with_cache(tokens, names_filter="blocks.1.hook_mlp_out")
    np.testing.assert_array_equal(seen[0], plain["mlp_out", 1] * np.float32(0.5))
    _, default = model.run_with_cache(tokens, capture="default")
    assert "blocks.0.hook_resid_post" in default and len(default) < len(model.hook_names())
    with pytest.raises(tp.UsageError, match="zap"):
        model(tokens, intervene="zap(blocks.0.hook_resid_post)")
    with pytest.raises(ValueError, match="not both"):
        model.run_with_cache(tokens, names_filter="blocks.0.hook_resid_post", capture="default")


@needs_stories
@pytest.mark.skipif(not CLI, reason="TOKENPROBE_CLI is not set to the tokenprobe binary")
@pytest.mark.parametrize("sampler,args", [({}, ["--temp", "0"]),
                                          ({"temperature": 0.9, "top_k": 20, "top_p": 0.9, "min_p": 0.02, "seed": 7,
                                            "repeat_penalty": 1.1},
                                           ["--temp", "0.9", "--top-k", "20", "--top-p", "0.9", "--min-p", "0.02",
                                            "--seed", "7", "--repeat-penalty", "1.1"])])
def test_generate_equals_the_clis_run(sampler, args):
    """One generation loop and one sampler: the same settings give `tokenprobe run`'s tokens,
    and each step carries the sampler's flight-recorder record of its choice."""
    model = load(STORIES)
    prompt = "Once upon a time"
    out = json.loads(subprocess.run([CLI, "run", "-m", STORIES, "-p", prompt, "-n", "12", "--json"] + args,
                                    check=True, capture_output=True, text=True).stdout)
    gen = model.generate(prompt, max_new_tokens=12, **sampler)
    assert gen.ids == out["generated_ids"]
    assert gen.text and out["text"] == prompt + gen.text == prompt + str(gen)
    assert gen.stop_reason in ("length", "eog") and len(gen.steps) == len(gen.ids)
    for k, (step, token) in enumerate(zip(gen.steps, gen.ids)):
        assert step["id"] == token and step["step"] == k
        record = step["logprobs"]["x_tokenprobe"]
        assert record["chosen"]["id"] == token and record["stages"] and record["draw_index"] == k


@needs_stories
def test_generate_stops_at_a_stop_string_and_explain_gives_the_record():
    model = load(STORIES)
    free = model.generate("Once upon a time", max_new_tokens=20)
    assert len(free.ids) == 20 and free.stop_reason == "length"
    word = free.text.split()[2]
    cut = model.generate("Once upon a time", max_new_tokens=20, stop=[word])
    assert cut.stop_reason == "stop_string" and cut.stopped_by == word
    assert cut.text == free.text[:free.text.index(word)] and cut.ids == free.ids[:len(cut.ids)]
    again = model.generate("Once upon a time", max_new_tokens=8, temperature=1.0, seed=3)
    assert again.ids == model.generate("Once upon a time", max_new_tokens=8, temperature=1.0, seed=3).ids

    why = model.explain("Once upon a time", max_new_tokens=2)
    assert len(why) == 2 and [s["id"] for s in why] == free.ids[:2]
    record = why[0]["explain"]
    assert {"logit_lens", "dla"} <= set(record), sorted(record)
    tokens = model.to_tokens("Once upon a time, there was")
    prompt_pos = model.explain(tokens, position=2)
    assert len(prompt_pos) == 1 and prompt_pos[0]["id"] == tokens[0, 3] and prompt_pos[0]["step"] is None
    with pytest.raises(tp.UsageError, match="no next token"):
        model.explain(tokens, position=tokens.shape[1] - 1)


@needs_stories
def test_pos_keeps_those_positions():
    model = load(STORIES)
    tokens = model.to_tokens("The cat sat on the mat")
    _, everything = model.run_with_cache(tokens, names_filter="blocks.*.hook_resid_post;blocks.1.attn.hook_pattern")
    _, last = model.run_with_cache(tokens, names_filter="blocks.*.hook_resid_post;blocks.1.attn.hook_pattern", pos=-1)
    np.testing.assert_array_equal(last["resid_post", 2], everything["resid_post", 2][:, -1:])
    np.testing.assert_array_equal(last["pattern", 1], everything["pattern", 1][:, :, -1:])
    _, some = model.run_with_cache(tokens, names_filter=["blocks.0.hook_resid_post[dtype=f16]"], pos=[1, 3])
    assert some["resid_post", 0].dtype == np.float16
    np.testing.assert_array_equal(some["resid_post", 0], everything["resid_post", 0][:, [1, 3]].astype(np.float16))
    _, words = model.run_with_cache(tokens, capture="default", pos="1-2")
    np.testing.assert_array_equal(words["resid_post", 4], everything["resid_post", 4][:, 1:3])
    with pytest.raises(ValueError, match="positions"):
        model.run_with_cache(tokens, pos=40)


FAKE_HUB = os.path.join(HERE, "..", "..", "tests", "hub_fake_hub.py")


@needs_stories
@pytest.mark.skipif(not os.path.exists(FAKE_HUB), reason="tests/hub_fake_hub.py absent")
def test_from_pretrained_fetches_hf_addresses(tmp_path, monkeypatch):
    """hf://OWNER/NAME/FILE through the library's hub code, from the fake Hub the C++ tests use,
    into HF_HUB_CACHE; a second load reads the cache."""
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"repos": {"tiny/stories": {"commit": "a" * 40,
                                                             "files": {"stories260K.gguf": STORIES}}}}))
    hub = subprocess.Popen([sys.executable, FAKE_HUB, str(config)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(hub.stdout.readline())
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        model = tp.Model.from_pretrained("hf://tiny/stories/stories260K.gguf", threads=1)
        assert model.path.startswith(str(tmp_path / "cache"))
        tokens = model.to_tokens("Once upon a time")
        np.testing.assert_array_equal(model(tokens), load(STORIES)(tokens))
        with pytest.raises(tp.TokenprobeError, match="nothere"):
            tp.Model.from_pretrained("hf://tiny/nothere/x.gguf")
    finally:
        hub.terminate()
        hub.wait()


def _iframe_page(element):
    """The page inside _repr_html_'s iframe (its srcdoc, unescaped)."""
    assert element.startswith('<iframe srcdoc="') and element.endswith("</iframe>")
    return html.unescape(element[len('<iframe srcdoc="'):element.index('" style=')])


@needs_stories
def test_jupyter_shows_the_report_page(tmp_path):
    """Traces, generations written with trace= and explanations show as `tokenprobe report`'s
    self-contained page (the viewer's script inlined, the trace's data in #tp-data), with the
    logit-lens heatmap where a model is at hand."""
    model = load(STORIES)
    gen = model.generate("Once upon a time", max_new_tokens=3, trace=tmp_path / "gen.tptrace")
    assert gen.trace.tokens and len(gen.trace.steps) == 3
    for element, lens in ((gen.trace._repr_html_(), False), (gen._repr_html_(), True)):
        page = _iframe_page(element)
        assert 'id="tp-data"' in page and "<script" in page
        assert 'src="/assets/' not in page and not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', page)
        if lens:  # the model's lens over the trace's residual stream
            assert '"next_prob"' in page
    why = model.explain("Once upon a time", max_new_tokens=2)
    page = _iframe_page(why._repr_html_())
    assert 'id="tp-data"' in page and '"explain"' in page
    folder = os.path.dirname(why.trace_dir)
    del why, page
    gc.collect()
    assert not os.path.exists(folder)  # the explanation's trace goes with it
    assert model.explain("Once upon a time", position=1)._repr_html_() is None
    _, cache = model.run_with_cache("Once upon a time", names_filter="blocks.*.hook_resid_post")
    table = cache._repr_html_()
    assert table.count("<tr>") == 1 + model.cfg.n_layers and "blocks.4.hook_resid_post" in table
    assert model.generate("Once", max_new_tokens=1)._repr_html_() is None


@needs_stories
@pytest.mark.skipif(not CLI, reason="TOKENPROBE_CLI is not set to the tokenprobe binary")
def test_generate_with_interventions_equals_the_clis_trace(tmp_path):
    """generate(intervene=...) chooses what `tokenprobe trace --intervene` chooses, token by
    token, and reports the same intervention effect (one code path: run_traced)."""
    model = load(STORIES)
    prompt = model.to_tokens("Once upon a time")
    clause = "zero(blocks.3.attn.hook_z[heads=2]);scale(blocks.4.hook_mlp_out, 0.5)"
    out = str(tmp_path / "cli.tptrace")
    subprocess.run([CLI, "trace", "-m", STORIES, "--tokens", ",".join(map(str, prompt[0].tolist())), "-n", "10",
                    "--capture", "minimal", "--intervene", clause, "-o", out], check=True, capture_output=True)
    cli = tp.load_trace(out)
    gen = model.generate(prompt, max_new_tokens=10, intervene=clause)
    assert gen.ids == [s["id"] for s in cli.steps]
    assert gen.intervention_effect == cli.manifest["intervention_effect"]
    assert gen.intervention_effect["max_abs_logit_change"][0] > 0
    # The comparison run is the model without the interventions: its first top token is plain greedy's.
    assert gen.intervention_effect["unpatched_top1"][0] == model.generate(prompt, max_new_tokens=1).ids[0]
    assert gen.trace_dir is None  # its temporary trace is gone
