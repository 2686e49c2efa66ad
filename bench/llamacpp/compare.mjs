// tokenprobe and llama.cpp on the same TinyLlama-shaped files, alternating type by type and
// round by round, so both see the same minutes of this (shared, noisy) machine's memory
// bandwidth: the ratios are what BASELINE.md asks to compare, measured instead of carried
// over from another day's machine.
//   node compare.mjs TOKENPROBE_BINARY [types=f16,q8_0,q4_0,q4_k] [rounds=3] [runs=3] [json_out]
import {execFileSync} from "node:child_process";
import {mkdtempSync, readFileSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {median} from "./median.mjs";

const [cli, types = "f16,q8_0,q4_0,q4_k", rounds = "3", runs = "3", jsonOut = ""] = process.argv.slice(2);
if (!cli) {
  console.error("usage: node compare.mjs TOKENPROBE_BINARY [types] [rounds] [runs] [json_out]");
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), "tokenprobe-vs-llamacpp-"));
const cells = {};
for (let round = 1; round <= Number(rounds); ++round) {
  for (const type of types.split(",")) {
    const out = path.join(scratch, `${type}.json`);
    // Either program's own message goes to stderr above; this names which step failed.
    const step = (what, run) => {
      try {
        return run();
      } catch (e) {
        console.error(`compare.mjs: ${what} failed for type ${type} (${e.message.split("\n")[0]})`);
        process.exit(1);
      }
    };
    step("tokenprobe bench", () => execFileSync(
        cli, ["bench", "--types", type, "--capture-modes", "off", "--runs", runs, "--json", out],
        {stdio: ["ignore", "ignore", "inherit"]}));
    const tp = JSON.parse(readFileSync(out, "utf8")).results[0];
    const lc = step("llama.cpp", () => JSON.parse(execFileSync(
        "node", [path.join(here, "time_llamacpp.mjs"), tp.model, runs],
        {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]})));
    const c = (cells[type] ??= {type, file_mib: tp.file_mib, backend: lc.backend, tp_pp: [], tp_tg: [], lc_pp: [], lc_tg: []});
    c.tp_pp.push(tp.pp_tok_s), c.tp_tg.push(tp.tg_tok_s), c.lc_pp.push(lc.pp_tok_s), c.lc_tg.push(lc.tg_tok_s);
    console.error(`round ${round} ${type}: tokenprobe pp ${tp.pp_tok_s.toFixed(1)} tg ${tp.tg_tok_s.toFixed(2)}` +
                  ` | llama.cpp pp ${lc.pp_tok_s.toFixed(1)} tg ${lc.tg_tok_s.toFixed(2)}`);
  }
}
// Per round ratios (same minutes), then their median; rates are medians over rounds.
const rows = Object.values(cells).map(c => ({
  type: c.type, file_mib: c.file_mib, llamacpp_backend: c.backend,
  tokenprobe_pp: median(c.tp_pp), llamacpp_pp: median(c.lc_pp), pp_ratio: median(c.tp_pp.map((v, i) => v / c.lc_pp[i])),
  tokenprobe_tg: median(c.tp_tg), llamacpp_tg: median(c.lc_tg), tg_ratio: median(c.tp_tg.map((v, i) => v / c.lc_tg[i])),
  tg_weight_gb_s: median(c.tp_tg) * c.file_mib * 1048576 / 1e9,
}));
console.log("\n| weights | tokenprobe pp128 | llama.cpp pp128 | ratio | tokenprobe tg32 | llama.cpp tg32 | ratio |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows)
  console.log(`| ${r.type} | ${r.tokenprobe_pp.toFixed(1)} | ${r.llamacpp_pp.toFixed(1)} | ${r.pp_ratio.toFixed(2)}` +
              ` | ${r.tokenprobe_tg.toFixed(2)} | ${r.llamacpp_tg.toFixed(2)} | ${r.tg_ratio.toFixed(2)} |`);
console.log(`(tok/s, 2 threads, capture off, median of ${runs} runs x ${rounds} rounds; llama.cpp ${rows[0]?.llamacpp_backend})`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({rounds: Number(rounds), runs: Number(runs), results: rows}, null, 2) + "\n");
