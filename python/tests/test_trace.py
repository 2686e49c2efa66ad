"""The Python reader against traces written by the tokenprobe CLI.

Run by ctest with TOKENPROBE_CLI (the binary) and TOKENPROBE_SHARED (../shared) set.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tokenprobe  # noqa: E402

CLI = os.environ.get("TOKENPROBE_CLI", "")
# The generator of the synthetic fixture models (scripts/make-fixtures runs it).
MAKE_FIXTURES = os.environ.get("TOKENPROBE_MAKE_FIXTURES", "")
SHARED = os.environ.get("TOKENPROBE_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
STORIES = os.path.join(SHARED, "models", "real", "stories260K.gguf")
REFERENCE = os.path.join(SHARED, "reference")
NANOGPT = os.path.join(SHARED, "models", "nanogpt")

# nanoGPT fixtures' references (an independent PyTorch implementation of model.py) -> hooks;
# tolerance 1e-4 as tests/nanogpt_reference_test.cpp (F32 weights, summation order only).
NANOGPT_MAPPING = {
    "embed.npy": "hook_embed",
    "pos_embed.npy": "hook_pos_embed",
    "logits.npy": "unembed.hook_out",
    "resid_post-{L}.npy": "blocks.{L}.hook_resid_post",
    "pattern-{L}.npy": "blocks.{L}.attn.hook_pattern",
}

# Same mapping as tests/reference_test.cpp (llama.cpp names -> hook names) for the tensors the
# Python side checks; tolerance 1e-4 (F32 reference, summation order only).
MAPPING = {
    "l_out-{L}.npy": "blocks.{L}.hook_resid_post",
    "kq_soft_max_ext-{L}.npy": "blocks.{L}.attn.hook_pattern",
    "kqv_merged-{L}.npy": "blocks.{L}.attn.hook_z",
    "kqv_out-{L}.npy": "blocks.{L}.hook_attn_out",
    "ffn_out-{L}.npy": "blocks.{L}.hook_mlp_out",
}


def run_cli(*args):
    return subprocess.run([CLI, *args], check=True, capture_output=True, text=True)


@unittest.skipUnless(CLI and os.path.exists(CLI), "TOKENPROBE_CLI is not set to the tokenprobe binary")
class TraceReaderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tokenprobe-py-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @unittest.skipUnless(os.path.exists(STORIES), "shared models absent (set TOKENPROBE_SHARED)")
    def test_default_trace_reads_like_a_transformerlens_cache(self):
        out = os.path.join(self.tmp, "t.tptrace")
        run_cli("trace", "-m", STORIES, "-p", "Once upon a time", "-n", "6", "-o", out)
        tr = tokenprobe.load_trace(out)
        self.assertTrue(tr.complete)
        self.assertEqual(len(tr.steps), 6)
        n_prompt = len(tr.manifest["tokens"])
        resid = tr.cache["blocks.4.hook_resid_post"]
        # Every prompt position and the 5 generated tokens that were fed back.
        self.assertEqual(resid.shape, (n_prompt + 5, 64))
        self.assertEqual(tr.cache.positions("blocks.4.hook_resid_post"), list(range(n_prompt + 5)))
        pattern = tr.cache["pattern", 2]
        self.assertEqual(pattern.shape, (8, n_prompt + 5, n_prompt + 5))
        # The manifest lists exactly the captured hooks, and the reader took its facts from it.
        self.assertEqual(sorted(h["name"] for h in tr.manifest["hooks"]), tr.cache.keys())
        self.assertTrue(all(tr.hooks[k].listed for k in tr.cache.keys()))
        self.assertEqual(tr.hooks["blocks.2.attn.hook_pattern"].shape, [8, None, None])
        np.testing.assert_allclose(pattern.sum(axis=-1), 1.0, atol=1e-5)
        self.assertTrue(np.all(np.triu(pattern, 1) == 0))
        self.assertEqual(tr.token_ids[:n_prompt], [t["id"] for t in tr.tokens])
        self.assertIn("prompt", tr.passes())
        self.assertIn("blocks.0.attn.hook_pattern", tr.cache.step("step.3"))

    @unittest.skipUnless(MAKE_FIXTURES and os.path.exists(MAKE_FIXTURES), "TOKENPROBE_MAKE_FIXTURES is not set")
    def test_rwkv_trace_reads_state_and_readout_sources(self):
        """An RWKV-6 trace: hook_state is [pos, heads, N, N] and is the recurrence of the captured
        r, k, v, w (S_t = diag(w_t) S_{t-1} + k_t v_t^T); the explanations carry readout sources."""
        subprocess.run([MAKE_FIXTURES, self.tmp], check=True, capture_output=True)
        out = os.path.join(self.tmp, "rwkv.tptrace")
        run_cli("trace", "-m", os.path.join(self.tmp, "rwkv6-tiny-f32.gguf"), "--tokens", "0,17,42,9,100,3",
                "-n", "2", "--capture", "full", "--explain", "-o", out)
        tr = tokenprobe.load_trace(out)
        cfg = tr.manifest["model"]["config"]
        heads, n = cfg["n_heads"], cfg["d_head"]
        for layer in range(cfg["n_layers"]):
            state = tr.cache["state", layer]
            self.assertEqual(state.shape, (7, heads, n, n))  # 6 prompt tokens + the first generated
            self.assertEqual(tr.cache.positions(("state", layer)), list(range(7)))
            self.assertEqual(tr.cache["wkv", layer].shape, (7, heads, n))
            r, k, v, w = (tr.cache[f"blocks.{layer}.time_mix.hook_{x}"] for x in "rkvw")
            self.assertEqual(k.shape, (7, heads, n))
            prev = np.zeros((heads, n, n), np.float64)
            for t in range(7):
                want = w[t][:, :, None] * prev + k[t][:, :, None] * v[t][:, None, :]
                err = float(np.max(np.abs(state[t] - want)))
                self.assertLessEqual(err, 1e-4, f"layer {layer} position {t}")
                prev = state[t].astype(np.float64)
        self.assertNotIn("blocks.0.attn.hook_pattern", tr.cache)
        for step in tr.steps:
            src = step["explain"]["attention_sources"]
            self.assertEqual(src["measure"], "wkv_readout")
            self.assertEqual(len(src["layers"]), cfg["n_layers"])
            for group in src["layers"]:
                total = group["other_weight"] + group["initial_state_weight"] + sum(s["weight"] for s in group["sources"])
                self.assertAlmostEqual(total, 1.0, places=6)

    def test_full_capture_equals_reference_for_every_model(self):
        if not os.path.isdir(REFERENCE):
            self.skipTest("shared reference absent")
        checked = 0
        for model in sorted(os.listdir(REFERENCE)):
            path = None
            for sub in ("real", "synthetic"):
                p = os.path.join(SHARED, "models", sub, model + ".gguf")
                if os.path.exists(p):
                    path = p
            if path is None:
                continue
            quantised = any(q in model for q in ("q8_0", "q4_0", "q4_k"))
            tol = 0.2 if quantised else 1e-4  # see docs/numerics.md
            for case in sorted(os.listdir(os.path.join(REFERENCE, model))):
                ref = os.path.join(REFERENCE, model, case)
                with open(os.path.join(ref, "tokens.json")) as f:
                    tokens = json.load(f)["tokens"]
                out = os.path.join(self.tmp, f"{model}-{case}.tptrace")
                run_cli("trace", "-m", path, "--tokens", ",".join(map(str, tokens)), "-n", "1",
                        "--capture", "full", "-o", out)
                tr = tokenprobe.load_trace(out)
                n_layers = tr.manifest["model"]["config"]["n_layers"]
                for layer in range(n_layers):
                    for file, hook in MAPPING.items():
                        want_path = os.path.join(ref, file.replace("{L}", str(layer)))
                        if not os.path.exists(want_path):
                            continue
                        want = np.load(want_path)
                        name = hook.replace("{L}", str(layer))
                        got = tr.cache.step("prompt")[name]
                        self.assertEqual(got.shape, want.shape, f"{model}/{case} {name}")
                        err = float(np.max(np.abs(got - want)))
                        print(f"{'OK' if err <= tol else 'NOT OK':6} python {model}/{case} {name} max|d|={err:.3g}")
                        self.assertLessEqual(err, tol, f"{model}/{case} {name}")
                        checked += 1
                shutil.rmtree(out)
        self.assertGreater(checked, 100)

    def test_nanogpt_traces_equal_their_references(self):
        if not os.path.isdir(NANOGPT):
            self.skipTest("shared nanoGPT fixtures absent")
        checked = 0
        for model in sorted(os.listdir(NANOGPT)):
            ckpt = os.path.join(NANOGPT, model, "ckpt.pt")
            refs = os.path.join(NANOGPT, model, "ref")
            if not (os.path.exists(ckpt) and os.path.isdir(refs)):
                continue
            for case in sorted(os.listdir(refs)):
                ref = os.path.join(refs, case)
                with open(os.path.join(ref, "tokens.json")) as f:
                    meta = json.load(f)
                out = os.path.join(self.tmp, f"{model}-{case}.tptrace")
                run_cli("trace", "-m", ckpt, "--tokens", ",".join(map(str, meta["tokens"])),
                        "-n", str(len(meta["greedy"])), "--capture", "full", "-o", out)
                tr = tokenprobe.load_trace(out)
                self.assertEqual(tr.manifest["model"]["architecture"], "gpt2")
                n_layers = tr.manifest["model"]["config"]["n_layers"]
                prompt = tr.cache.step("prompt")
                for file, hook in NANOGPT_MAPPING.items():
                    for layer in range(n_layers if "{L}" in file else 1):
                        want = np.load(os.path.join(ref, file.replace("{L}", str(layer))))
                        name = hook.replace("{L}", str(layer))
                        got = prompt[name]
                        self.assertEqual(got.shape, want.shape, f"{model}/{case} {name}")
                        err = float(np.max(np.abs(got - want)))
                        print(f"{'OK' if err <= 1e-4 else 'NOT OK':6} python {model}/{case} {name} max|d|={err:.3g}")
                        self.assertLessEqual(err, 1e-4, f"{model}/{case} {name}")
                        checked += 1
                n = len(meta["tokens"])
                self.assertEqual(tr.token_ids[n:], meta["greedy"], f"{model}/{case} greedy ids")
                shutil.rmtree(out)
        self.assertGreater(checked, 20)

    @unittest.skipUnless(os.path.exists(STORIES), "shared models absent (set TOKENPROBE_SHARED)")
    def test_half_precision_and_interrupted_traces(self):
        out = os.path.join(self.tmp, "h.tptrace")
        run_cli("trace", "-m", STORIES, "-p", "Once upon a time", "-n", "3", "-o", out,
                "--capture", "blocks.*.hook_resid_post[dtype=bf16];blocks.1.mlp.hook_post[dtype=f16,pos=last]")
        tr = tokenprobe.load_trace(out)
        self.assertEqual(tr.cache["resid_post", 0].dtype, np.float32)  # bf16 widened
        self.assertEqual(tr.cache["post", 1].dtype, np.float16)
        n_prompt = len(tr.manifest["tokens"])
        self.assertEqual(tr.cache.positions("blocks.1.mlp.hook_post"), [n_prompt - 1, n_prompt, n_prompt + 1])
        # Simulate a crash: incomplete manifest, a torn step line, a partial shard.
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        manifest["complete"] = False
        with open(os.path.join(out, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        with open(os.path.join(out, "steps.jsonl"), "a") as f:
            f.write('{"id": 5, "tor')
        with open(os.path.join(out, "activations-00009.safetensors.partial"), "wb") as f:
            f.write(b"\x00" * 10)
        tr = tokenprobe.load_trace(out)
        self.assertFalse(tr.complete)
        self.assertEqual(len(tr.steps), 3)
        self.assertEqual(len(tr.notes), 3)

    def test_hostile_shard_is_a_clear_error(self):
        out = os.path.join(self.tmp, "bad.tptrace")
        os.makedirs(out)
        with open(os.path.join(out, "manifest.json"), "w") as f:
            json.dump({"format": "tokenprobe-trace", "format_version": 1, "complete": True}, f)
        with open(os.path.join(out, "activations-00000.safetensors"), "wb") as f:
            f.write((10 ** 9).to_bytes(8, "little") + b"{}")
        with self.assertRaises(tokenprobe.TraceFormatError):
            tokenprobe.load_trace(out)
        with self.assertRaises(tokenprobe.TraceFormatError):
            tokenprobe.load_trace(self.tmp)  # no manifest


def _write_shard(path, tensors):
    """tensors: [(name, dtype, shape, metadata dict or None)], values 0x3c bytes."""
    header, meta, data = {}, {}, b""
    for name, dtype, shape, m in tensors:
        n = int(np.prod(shape)) * {"F32": 4, "F16": 2, "BF16": 2, "U8": 1, "I16": 2}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += b"\x3c" * n
        if m is not None:
            meta[name] = json.dumps(m)
    header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + data)


VALID_MANIFEST = {"format": "tokenprobe-trace", "format_version": 1, "complete": True, "prompt": "abc",
                  "tokens": [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 3, "text": "c"}],
                  "model": {"path": "m.gguf", "architecture": "llama", "config": {"d_model": 64, "n_heads": 8}},
                  "capture": {"spec": "default"}, "interventions": [{"clause": "zero(hook_embed)"}],
                  "sampler": {"seed": 1}}
VALID_TENSORS = [("prompt/blocks.0.hook_resid_post", "F32", [3, 64], {"positions": [0, 1, 2]}),
                 ("prompt/blocks.0.attn.hook_pattern", "F32", [8, 3, 3], {"positions": [0, 1, 2]}),
                 ("prompt/blocks.0.attn.hook_q", "F16", [3, 2, 8], {"positions": [0, 1, 2], "heads": [0, 5]}),
                 ("step.1/blocks.0.hook_resid_post", "BF16", [1, 64], {"positions": [3]}),
                 ("step.1/blocks.0.attn.hook_pattern", "F32", [8, 1, 4], {"positions": [3]})]
VALID_STEPS = ['{"step": 0, "position": 3, "id": 5, "text": "x"}', '{"step": 1, "position": 4, "id": 6, "text": "y"}']


def _mutations(value):
    """Every field of a JSON value deleted or retyped: (description, mutated copy)."""
    def paths(v, prefix=()):
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else []
        for k, c in items:
            yield prefix + (k,)
            yield from paths(c, prefix + (k,))
    for path in list(paths(value)):
        for replacement in (None, "x", [], {}, -1, 1.5, True, [-1, "x"], "DELETE"):
            v = json.loads(json.dumps(value))
            parent = v
            for k in path[:-1]:
                parent = parent[k]
            if replacement == "DELETE":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield f"{'/'.join(map(str, path))} = {replacement!r}", v


class CorruptTraceTest(unittest.TestCase):
    """Crafted and corrupt traces: load_trace gives a trace or TraceFormatError, nothing else."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tokenprobe-py-corrupt-")
        self.dir = os.path.join(self.tmp, "c.tptrace")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, manifest=VALID_MANIFEST, steps=VALID_STEPS, tensors=VALID_TENSORS):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "manifest.json"), "wb") as f:
            f.write(manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode())
        with open(os.path.join(self.dir, "steps.jsonl"), "wb") as f:
            f.write(steps if isinstance(steps, bytes) else "".join(s + "\n" for s in steps).encode())
        _write_shard(os.path.join(self.dir, "activations-00000.safetensors"), tensors)

    def load_or_format_error(self, label):
        """Loads the trace and reads every hook; only TraceFormatError may come out."""
        try:
            tr = tokenprobe.load_trace(self.dir)
        except tokenprobe.TraceFormatError:
            return False
        except Exception as e:  # noqa: BLE001 - the point: no other exception
            self.fail(f"{label}: {type(e).__name__}: {e}")
        for key in tr.cache.keys():
            tr.cache[key]
            tr.cache.positions(key)
        tr.token_ids
        return True

    def assert_refused(self, label, field):
        with self.assertRaises(tokenprobe.TraceFormatError, msg=label) as cm:
            tokenprobe.load_trace(self.dir)
        self.assertIn(field, str(cm.exception), label)

    def test_valid_crafted_trace_loads(self):
        self.write()
        tr = tokenprobe.load_trace(self.dir)
        self.assertEqual(tr.cache["pattern", 0].shape, (8, 4, 4))
        self.assertEqual(tr.token_ids, [1, 2, 3, 5, 6])

    def test_every_field_deleted_or_retyped(self):
        counts = [0, 0]
        for label, m in _mutations(VALID_MANIFEST):
            self.write(manifest=m)
            counts[self.load_or_format_error("manifest " + label)] += 1
        for label, rec in _mutations(json.loads(VALID_STEPS[0])):
            self.write(steps=[json.dumps(rec), VALID_STEPS[1]])
            counts[self.load_or_format_error("step " + label)] += 1
        for i, (name, dtype, shape, meta) in enumerate(VALID_TENSORS):
            for label, m in _mutations(meta):
                tensors = list(VALID_TENSORS)
                tensors[i] = (name, dtype, shape, m)
                self.write(tensors=tensors)
                counts[self.load_or_format_error(f"{name} metadata {label}")] += 1
        print(f"mutated traces: {counts[1]} loaded, {counts[0]} refused")
        self.assertGreater(counts[0], 100)

    def test_every_byte_of_the_shard_header_flipped_or_cut(self):
        self.write()
        shard = os.path.join(self.dir, "activations-00000.safetensors")
        with open(shard, "rb") as f:
            good = f.read()
        n = 8 + int.from_bytes(good[:8], "little")
        for at in range(0, n, 3):
            for bad in (good[:at] + bytes([good[at] ^ 0x5A]) + good[at + 1:], good[:at]):
                with open(shard, "wb") as f:
                    f.write(bad)
                self.load_or_format_error(f"shard byte {at}")

    def test_issue16_reproducers(self):
        resid, pattern = VALID_TENSORS[0], VALID_TENSORS[1]
        cases = [
            ("pattern []", [(pattern[0], "F32", [], {"positions": []})], "shape"),
            ("pattern [200]", [(pattern[0], "F32", [200], {"positions": [0]})], "shape"),
            ("pattern [8,25]", [(pattern[0], "F32", [8, 25], {"positions": [0]})], "shape"),
            ("resid [0,64]", [(resid[0], "F32", [0, 64], {"positions": []})], "shape"),
            ("positions longer", [(resid[0], "F32", [1, 64], {"positions": [0, 1, 2, 3]})], "positions"),
            ("heads longer", [("prompt/blocks.0.attn.hook_z", "F32", [1, 2, 8], {"positions": [0], "heads": [0, 1, 2]})], "heads"),
            ("U8", [(resid[0], "U8", [3, 64], {"positions": [0, 1, 2]})], "dtype"),
            ("I16", [(resid[0], "I16", [3, 64], {"positions": [0, 1, 2]})], "dtype"),
            ("negative positions", [(resid[0], "F32", [3, 64], {"positions": [-2, -1, 0]})], "positions"),
            ("no metadata", [(resid[0], "F32", [3, 64], None)], "metadata"),
            ("unknown hook", [("prompt/blocks.0.hook_nonsense", "F32", [3, 64], {"positions": [0, 1, 2]})], "hook"),
            ("widths differ", [resid, ("step.1/blocks.0.hook_resid_post", "F32", [1, 32], {"positions": [3]})], "shape"),
        ]
        for label, tensors, field in cases:
            self.write(tensors=tensors)
            self.assert_refused(label, field)
        self.write(manifest=b"[" * 200000 + b"]" * 200000)
        self.assert_refused("deep manifest", "manifest.json")
        self.write(manifest=b'{"format": "tokenprobe-trace", "prompt": "\xff\xfe"}')
        self.assert_refused("manifest not UTF-8", "manifest.json")
        for line in ('{"step": 0}', '{"id": "5"}', '{"id": 5, "text": 5}', "[5]", '{"id": 5, "explain": []}', '{"id"'):
            self.write(steps=[line, VALID_STEPS[1]])
            self.assert_refused(line, "steps.jsonl line 1")

    def test_torn_last_line_inside_utf8_is_skipped_with_a_note(self):
        torn = (VALID_STEPS[0] + "\n").encode() + b'{"id": 6, "text": "\xe2\x82'
        self.write(steps=torn)
        tr = tokenprobe.load_trace(self.dir)
        self.assertEqual(len(tr.steps), 1)
        self.assertTrue(any("torn" in n for n in tr.notes), tr.notes)


def _listed(name, dtype, shape, rows_axis=0, heads_axis=None, keys_axis=None, **extra):
    entry = {"name": name, "dtype": dtype, "shape": shape, "rows_axis": rows_axis, "heads_axis": heads_axis,
             "keys_axis": keys_axis, "per_layer": name.startswith("blocks."), "axes": []}
    entry.update(extra)
    return entry


class ManifestHookListTest(CorruptTraceTest):
    """Traces whose manifest lists their hooks (format 1.1) are read by that list alone."""

    TENSORS = [("prompt/blocks.0.hook_resid_post", "F32", [3, 2, 32], {"positions": [0, 1, 2], "heads": [0, 1]}),
               ("step.1/blocks.0.hook_resid_post", "F32", [1, 2, 32], {"positions": [3]}),
               ("prompt/blocks.0.time_mix.hook_state", "F16", [3, 4], {"positions": [0, 1, 2]}),
               ("prompt/blocks.0.attn.hook_pattern", "F32", [8, 3, 3], {"positions": [0, 1, 2]}),
               ("step.1/blocks.0.attn.hook_pattern", "F32", [8, 1, 4], {"positions": [3]})]
    HOOKS = [_listed("blocks.0.hook_resid_post", "F32", [None, 2, 32], heads_axis=1),
             _listed("blocks.0.time_mix.hook_state", "F16", [None, 4]),
             _listed("blocks.0.attn.hook_pattern", "F32", [8, None, None], 1, 0, 2, masked="-inf")]

    def manifest(self, hooks):
        m = json.loads(json.dumps(VALID_MANIFEST))
        m["hooks"] = hooks
        return m

    def test_the_list_decides_shapes_and_padding_where_the_old_rules_would_not(self):
        self.write(manifest=self.manifest(self.HOOKS), tensors=self.TENSORS)
        tr = tokenprobe.load_trace(self.dir)
        # A residual stream with a heads axis, and a hook the name rules do not know.
        self.assertEqual(tr.cache["blocks.0.hook_resid_post"].shape, (4, 2, 32))
        self.assertEqual(tr.cache["blocks.0.time_mix.hook_state"].shape, (3, 4))
        self.assertEqual(tr.hooks["blocks.0.hook_resid_post"].heads_axis, 1)
        self.assertTrue(tr.hooks["blocks.0.time_mix.hook_state"].listed)
        # The pattern's prompt rows padded with the list's masked value, not the name rules' 0.
        pattern = tr.cache["pattern", 0]
        self.assertEqual(pattern.shape, (8, 4, 4))
        self.assertTrue(np.all(np.isneginf(pattern[:, :3, 3])))
        # The same trace without the list is read by the old rules, which refuse it.
        self.write(manifest=VALID_MANIFEST, tensors=self.TENSORS)
        self.assert_refused("no list", "shape")

    def test_older_traces_fall_back_to_the_name_rules(self):
        self.write()
        tr = tokenprobe.load_trace(self.dir)
        facts = tr.hooks["blocks.0.attn.hook_q"]
        self.assertFalse(facts.listed)
        self.assertEqual((facts.shape, facts.rows_axis, facts.heads_axis), ([None, 2, 8], 0, 1))
        self.assertEqual(tr.hooks["blocks.0.attn.hook_pattern"].keys_axis, 2)

    def test_tensors_must_agree_with_the_list(self):
        cases = [
            ("unlisted hook", self.HOOKS[1:], "not in the manifest's hooks list"),
            ("other dtype", [_listed("blocks.0.hook_resid_post", "F16", [None, 2, 32], heads_axis=1)] + self.HOOKS[1:], "dtype"),
            ("other width", [_listed("blocks.0.hook_resid_post", "F32", [None, 2, 31], heads_axis=1)] + self.HOOKS[1:], "shape"),
            ("listed twice", self.HOOKS + self.HOOKS[:1], "listed twice"),
            ("null fixed axis", [_listed("blocks.0.hook_resid_post", "F32", [None, None, 32], heads_axis=1)] + self.HOOKS[1:],
             "shape[1]"),
            ("unsupported layout", [_listed("blocks.0.hook_resid_post", "F32", [None, 2, 32], heads_axis=2)] + self.HOOKS[1:],
             "rows_axis"),
            ("masked without keys", [_listed("blocks.0.hook_resid_post", "F32", [None, 2, 32], heads_axis=1, masked=0)]
             + self.HOOKS[1:], "masked"),
        ]
        for label, hooks, field in cases:
            self.write(manifest=self.manifest(hooks), tensors=self.TENSORS)
            self.assert_refused(label, field)

    def test_every_list_field_deleted_or_retyped(self):
        counts = [0, 0]
        for label, hooks in _mutations(self.HOOKS):
            self.write(manifest=self.manifest(hooks), tensors=self.TENSORS)
            counts[self.load_or_format_error("hooks " + label)] += 1
        self.assertGreater(counts[0], 50)


if __name__ == "__main__":
    unittest.main(verbosity=2)
