// llama-bench's tests (ppN, tgN, each at depth D) on one model, tokenprobe against llama.cpp
// with flash attention off and/or on, alternating round by round so that all of them see the
// same minutes of this (shared, noisy) machine. llama.cpp is the reference build's llama-bench
// (../shared/tools/build-reference-llamacpp, ~/.cache/tokenprobe-ref/llama.cpp) where it runs
// the file; its AMX buffers make it crash on quantised files on some machines (docs/performance.md),
// and then node-llama-cpp's prebuilt build (time_llamacpp_tests.mjs) stands in: the table says which.
//   node compare_tests.mjs TOKENPROBE_BINARY -m MODEL [-p 512] [-n 128] [-d 0,4096] [-fa 0,1]
//                          [-mmp 1] [-r RUNS=3] [--rounds 3] [-t 2] [--json OUT]
// -mmp 0 has both engines read the weights into their own memory (llama-bench's -mmp 0,
// tokenprobe's -mmp 0, node-llama-cpp's useMmap: false) instead of mapping the file.
import {execFileSync, spawnSync} from "node:child_process";
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from "node:fs";
import {homedir, tmpdir} from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {median} from "./median.mjs";

const argv = process.argv.slice(2);
const cli = argv.shift();
const opt = {m: "", p: "512", n: "128", d: "0", fa: "0,1", mmp: "1", r: "3", rounds: "3", t: "2", json: ""};
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--?/, "");
  if (!(key in opt) || argv[i + 1] === undefined) {
    console.error(`compare_tests.mjs: unknown option or missing value: ${argv[i]}`);
    process.exit(2);
  }
  opt[key] = argv[i + 1];
}
if (!cli || !opt.m) {
  console.error("usage: node compare_tests.mjs TOKENPROBE_BINARY -m MODEL [-p LIST] [-n LIST] [-d LIST] [-fa 0,1] " +
                "[-mmp 0|1] [-r RUNS] [--rounds N] [-t THREADS] [--json OUT]");
  process.exit(2);
}
if (opt.mmp !== "0" && opt.mmp !== "1") {
  console.error(`compare_tests.mjs: -mmp takes 0 or 1, not ${opt.mmp}`);
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), "tokenprobe-vs-llamacpp-"));
const reference = process.env.TP_LLAMA_BENCH ??
    path.join(homedir(), ".cache/tokenprobe-ref/llama.cpp/build/bin/llama-bench");
const name = (p, n, d) => (p > 0 ? `pp${p}` : `tg${n}`) + (d > 0 ? ` @ d${d}` : "");
const fas = opt.fa.split(",").filter(x => x !== "");

// llama.cpp's rates per test name for one flash-attention setting, and which build gave them.
let engine = "";  // "reference" or "npm", fixed by the first run
function llamacpp(fa) {
  if (engine !== "npm" && existsSync(reference)) {
    const r = spawnSync(reference, ["-m", opt.m, "-p", opt.p, "-n", opt.n, "-d", opt.d, "-r", opt.r, "-t", opt.t,
                                    "-fa", fa === "1" ? "on" : "off", "-mmp", opt.mmp, "-o", "json"],
                        {encoding: "utf8", maxBuffer: 1 << 26});
    if (r.status === 0) {
      engine = "reference";
      return JSON.parse(r.stdout);
    }
    if (engine === "reference") {
      console.error(r.stderr.split("\n").slice(-5).join("\n"));
      throw new Error(`reference llama-bench failed (${r.signal ?? "exit " + r.status})`);
    }
    console.error(`reference llama-bench failed on this file (${r.signal ?? "exit " + r.status}); using node-llama-cpp's build`);
  }
  engine = "npm";
  return JSON.parse(execFileSync("node", [path.join(here, "time_llamacpp_tests.mjs"), opt.m, opt.r, opt.t, opt.p, opt.n,
                                          opt.d, fa, opt.mmp], {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]}));
}

// The file's pages dropped from the page cache once and read back, so that both engines find
// it as after a reboot and a first run: readahead caches it in large folios. A file just
// written (`bench --shape`, a download) sits in 4 KiB pages, which cost tokenprobe's mapped
// weights 7-12% of a decoding step (docs/performance.md); read back here, so that no
// engine's first round reads the disk.
// GNU dd's nocache with count=0 advises dropping the whole file.
for (const args of [[`if=${opt.m}`, "iflag=nocache", "count=0"], [`if=${opt.m}`, "of=/dev/null", "bs=8M"]]) {
  const r = spawnSync("dd", args, {encoding: "utf8"});
  if (r.status !== 0) console.error(`dd ${args.join(" ")}: ${r.stderr.trim()}`);
}

const cells = {};  // test name -> {tp: [], fa0: [], fa1: []} per round
const cell = t => (cells[t] ??= {test: t, tp: [], ...Object.fromEntries(fas.map(f => [`fa${f}`, []]))});
let backend = "";
for (let round = 1; round <= Number(opt.rounds); ++round) {
  const out = path.join(scratch, "tokenprobe.json");
  execFileSync(cli, ["bench", "-m", opt.m, "-p", opt.p, "-n", opt.n, "-d", opt.d, "-mmp", opt.mmp, "-r", opt.r, "-t", opt.t,
                     "--json", out],
               {stdio: ["ignore", "ignore", "inherit"]});
  for (const r of JSON.parse(readFileSync(out, "utf8")).models[0].results) cell(r.test).tp.push(r.tok_s);
  for (const fa of fas) {
    for (const r of llamacpp(fa)) {
      cell(name(r.n_prompt, r.n_gen, r.n_depth))[`fa${fa}`].push(r.avg_ts);
      if (r.backend) backend = r.backend;
    }
  }
  console.error(`round ${round}: ` + Object.values(cells).map(c =>
      `${c.test} tokenprobe ${c.tp.at(-1).toFixed(2)} ` + fas.map(f => `fa${f} ${c[`fa${f}`].at(-1).toFixed(2)}`).join(" "))
      .join(" | "));
}
// Rates are medians over rounds; ratios are per round (same minutes), then their median.
const rows = Object.values(cells).map(c => ({
  test: c.test, tokenprobe: median(c.tp),
  ...Object.fromEntries(fas.flatMap(f => [[`llamacpp_fa${f}`, median(c[`fa${f}`])],
                                          [`ratio_fa${f}`, median(c.tp.map((v, i) => v / c[`fa${f}`][i]))]])),
  tokenprobe_rounds: c.tp, ...Object.fromEntries(fas.map(f => [`llamacpp_fa${f}_rounds`, c[`fa${f}`]])),
}));
const which = engine === "reference" ? `reference llama-bench (${reference})` : `node-llama-cpp's build (${backend})`;
console.log(`\n${path.basename(opt.m)}: tok/s, ${opt.t} threads, median of ${opt.rounds} rounds (in each, tokenprobe's ` +
            `median and llama.cpp's mean of ${opt.r} runs, as each tool reports); llama.cpp = ${which}; ` +
            (opt.mmp === "1" ? "weights mapped (mmap 1)" : "weights read into each engine's own memory (mmap 0)"));
console.log(`| test | tokenprobe | ${fas.map(f => `llama.cpp fa${f} | ratio`).join(" | ")} |`);
console.log(`| --- | ---: | ${fas.map(() => "---: | ---:").join(" | ")} |`);
for (const r of rows)
  console.log(`| ${r.test} | ${r.tokenprobe.toFixed(2)} | ` +
              fas.map(f => `${r[`llamacpp_fa${f}`].toFixed(2)} | ${r[`ratio_fa${f}`].toFixed(2)}`).join(" | ") + " |");
if (opt.json)
  writeFileSync(opt.json, JSON.stringify({model: opt.m, llamacpp: which, mmap: Number(opt.mmp), threads: Number(opt.t), runs: Number(opt.r),
                                          rounds: Number(opt.rounds), results: rows}, null, 2) + "\n");
