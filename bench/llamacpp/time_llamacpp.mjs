// Times llama.cpp the way llama-bench does (-p 128 -n 32, 2 threads, flash attention off) on
// one GGUF file: a prompt pass over the same fixed token ids as `tokenprobe bench`, then
// single-token decode steps that compute the logits and sample nothing (llama-bench's tg
// feeds tokens; each llama_decode outputs the last token's logits: decode.mjs). llama.cpp
// comes from node-llama-cpp's prebuilt CPU libraries, which pick the CPU-specific ggml build
// at load (libggml-cpu-zen4.so, -icelake, ...).
//   node time_llamacpp.mjs MODEL.gguf [runs=3] [threads=2] [n_prompt=128] [n_gen=32]
// Prints one JSON line: {backend, pp_tok_s, tg_tok_s, pp_runs, tg_runs} (medians).
import {getLlama} from "node-llama-cpp";
import {existsSync} from "node:fs";
import {median} from "./median.mjs";
import {decodeWithLastOutput} from "./decode.mjs";

const [modelPath, runs = "3", threads = "2", nPrompt = "128", nGen = "32"] = process.argv.slice(2);
if (!modelPath) {
  console.error("usage: node time_llamacpp.mjs MODEL.gguf [runs] [threads] [n_prompt] [n_gen]");
  process.exit(2);
}
if (!existsSync(modelPath)) {
  console.error(`time_llamacpp.mjs: no model file at ${modelPath} (run tokenprobe bench --types TYPE to make one)`);
  process.exit(2);
}
let backend = "";
const llama = await getLlama({
  gpu: false, build: "never", logLevel: "debug",
  logger: (level, message) => {
    const m = /loaded CPU backend from .*\/(libggml-cpu-[^/ ]+\.so)/.exec(message);
    if (m) backend = m[1];
    if (level === "error" || level === "fatal") process.stderr.write(message + "\n");
  },
});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
// tokenprobe bench's prompt: (1 + 7919 (i + 1)) mod vocab, vocab 32000 (TinyLlama).
const vocab = 32000;
const prompt = Array.from({length: Number(nPrompt)}, (_, i) => (1 + 7919 * (i + 1)) % vocab);
const pp = [], tg = [];
// Run 0 is a warm-up, as in llama-bench (first touches of the mapped file, repacking).
for (let r = 0; r <= Number(runs); ++r) {
  const context = await model.createContext({
    contextSize: Number(nPrompt) + Number(nGen) + 1, batchSize: 512, threads: Number(threads), flashAttention: false,
  });
  const seq = context.getSequence();
  let t0 = performance.now();
  await decodeWithLastOutput(seq, prompt);
  const ppRate = prompt.length / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < Number(nGen); ++i) await decodeWithLastOutput(seq, [prompt[i % prompt.length]]);
  const tgRate = Number(nGen) / ((performance.now() - t0) / 1000);
  await context.dispose();
  if (r > 0) pp.push(ppRate), tg.push(tgRate);
}
console.log(JSON.stringify({backend, pp_tok_s: median(pp), tg_tok_s: median(tg), pp_runs: pp, tg_runs: tg}));
await model.dispose();
