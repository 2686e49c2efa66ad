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
SHARED = os.environ.get("TOKENPROBE_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
STORIES = os.path.join(SHARED, "models", "real", "stories260K.gguf")
REFERENCE = os.path.join(SHARED, "reference")

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
        np.testing.assert_allclose(pattern.sum(axis=-1), 1.0, atol=1e-5)
        self.assertTrue(np.all(np.triu(pattern, 1) == 0))
        self.assertEqual(tr.token_ids[:n_prompt], [t["id"] for t in tr.tokens])
        self.assertIn("prompt", tr.passes())
        self.assertIn("blocks.0.attn.hook_pattern", tr.cache.step("step.3"))

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
