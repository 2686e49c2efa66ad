// llama-bench's tests (ppN, tgN, each after a context of D tokens in the KV cache) through
// node-llama-cpp's prebuilt llama.cpp, for the files the reference build's llama-bench cannot
// run here (compare_tests.mjs says which engine ran). Same rules as llama-bench: a warm-up run,
// the context evaluated untimed before each run, tg feeds tokens one at a time without sampling,
// and every timed decode outputs its last token's logits (decode.mjs).
//   node time_llamacpp_tests.mjs MODEL.gguf RUNS THREADS PROMPTS GENS DEPTHS FLASH(0|1) [MMAP(1|0)]
// (PROMPTS, GENS, DEPTHS comma-separated; MMAP 0 reads the weights in, as llama-bench's -mmp 0). Prints llama-bench's -o json shape:
// [{n_prompt, n_gen, n_depth, avg_ts, samples_ts, backend}].
import {getLlama} from "node-llama-cpp";
import {existsSync} from "node:fs";
import {decodeWithLastOutput} from "./decode.mjs";

const [modelPath, runs, threads, prompts, gens, depths, flash, mmap = "1"] = process.argv.slice(2);
if (!flash) {
  console.error("usage: node time_llamacpp_tests.mjs MODEL.gguf RUNS THREADS PROMPTS GENS DEPTHS FLASH");
  process.exit(2);
}
if (!existsSync(modelPath)) {
  console.error(`time_llamacpp_tests.mjs: no model file at ${modelPath}`);
  process.exit(2);
}
const list = s => s.split(",").filter(x => x !== "").map(Number);
let backend = "";
const llama = await getLlama({
  gpu: false, build: "never", logLevel: "debug",
  logger: (level, message) => {
    const m = /loaded CPU backend from .*\/(libggml-cpu-[^/ ]+\.so)/.exec(message);
    if (m) backend = m[1];
    if (level === "error" || level === "fatal") process.stderr.write(message + "\n");
  },
});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: mmap !== "0"});
// tokenprobe bench's token ids, (1 + 7919 (i + 1)) mod 32000: below every vocabulary of interest.
const token = i => (1 + 7919 * (i + 1)) % 32000;
const tests = [];
for (const d of list(depths)) {
  for (const p of list(prompts).filter(p => p > 0)) tests.push({p, n: 0, d});
  for (const n of list(gens).filter(n => n > 0)) tests.push({p: 0, n, d});
}
const out = [];
for (const t of tests) {
  const samples = [];
  for (let r = 0; r <= Number(runs); ++r) {  // run 0 is the warm-up
    const context = await model.createContext({
      contextSize: t.d + t.p + t.n + 1, batchSize: 512, threads: Number(threads), flashAttention: flash === "1",
    });
    const seq = context.getSequence();
    if (t.d > 0) await seq.evaluateWithoutGeneratingNewTokens(Array.from({length: t.d}, (_, i) => token(i)));
    const t0 = performance.now();
    if (t.p > 0) {
      await decodeWithLastOutput(seq, Array.from({length: t.p}, (_, i) => token(t.d + i)));
    } else {
      for (let i = 0; i < t.n; ++i) await decodeWithLastOutput(seq, [token(t.d + i)]);
    }
    const rate = (t.p + t.n) / ((performance.now() - t0) / 1000);
    await context.dispose();
    if (r > 0) samples.push(rate);
  }
  out.push({n_prompt: t.p, n_gen: t.n, n_depth: t.d, avg_ts: samples.reduce((a, b) => a + b, 0) / samples.length,
            samples_ts: samples, backend});
}
console.log(JSON.stringify(out));
await model.dispose();
