// End-to-end test of the viewer: starts `tokenprobe serve` on stories260K, drives Debian's
// Chromium (playwright-core, no downloaded browsers), runs a prompt, clicks a token and
// checks that each view shows the numbers of the trace, the DLA and sources views included
// (the run asks for "explain" records, docs/explain-format.md); then opens a copy of the
// trace without them, an RWKV-6 trace (the WKV readout's sources where attention sources go;
// its fixture from $TOKENPROBE_MAKE_FIXTURES), and a 2,000-token trace for responsiveness. Screenshots go to $TP_TEST_OUTPUT (default
// build/test-output/web). Exit 77 = skipped (no chromium / playwright-core / model).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const SKIP = 77;
const cli = process.env.TOKENPROBE_CLI;
const shared = process.env.TOKENPROBE_SHARED ?? process.env.TP_DEFAULT_SHARED ?? "../../shared";
const model = process.env.TOKENPROBE_MODEL ?? path.join(shared, "models/real/stories260K.gguf");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const out = path.resolve(process.env.TP_TEST_OUTPUT ?? "build/test-output/web");
const skip = msg => { console.log(`SKIPPED: ${msg}`); process.exit(SKIP); };
if (!cli || !fs.existsSync(cli)) skip("TOKENPROBE_CLI is not set to the tokenprobe binary");
if (!model || !fs.existsSync(model)) skip(`stories260K not found (TOKENPROBE_MODEL=${model})`);
if (!fs.existsSync(chromiumPath)) skip(`${chromiumPath} is missing (scripts/setup installs Debian's chromium)`);
let chromium;
try { ({ chromium } = await import("playwright-core")); } catch { skip("playwright-core is not installed (cd web && npm ci)"); }

fs.mkdirSync(out, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tp-e2e-"));
const traces = path.join(tmp, "traces");
const p4 = x => x.toFixed(4), f3 = x => x.toFixed(3);
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} ${what}`); if (!ok) failures++; };
const deadline = setTimeout(() => { console.log("FAIL: the test took more than 120 s"); process.exit(1); }, 120_000);

const server = spawn(cli, ["serve", "-m", model, "--traces", traces, "--port", "0", "-t", "2"], { stdio: ["ignore", "pipe", "inherit"] });
const base = await new Promise((resolve, reject) => {
  let buf = "";
  server.stdout.on("data", d => { buf += d; const m = buf.match(/http:\/\/[0-9.]+:(\d+)\//); if (m) resolve(m[0].replace(/\/$/, "")); });
  server.on("exit", c => reject(new Error(`server exited with ${c}`)));
});
const api = async p => (await fetch(base + p)).json();
const userDir = path.join(tmp, "chromium-profile");
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: chromiumPath, headless: true, viewport: { width: 1280, height: 1600 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on("pageerror", e => { console.log(`FAIL page error: ${e.message}`); failures++; });
  await page.goto(base + "/");
  await page.getByTestId("model-info").filter({ hasText: "stories260K" }).waitFor({ timeout: 10_000 });
  await page.getByTestId("prompt").fill("Once upon a time there was");
  await page.locator("input[name=n]").fill("12");
  await page.getByTestId("run").click();
  await page.getByTestId("status").filter({ hasText: "generated" }).waitFor({ timeout: 30_000 });
  const id = await page.getByTestId("trace-select").inputValue();
  const trace = await api(`/api/traces/${id}`);
  const lens = await api(`/api/traces/${id}/lens`);
  const nPrompt = trace.manifest.tokens.length;
  check(trace.steps.length === 12, `the run made a trace with 12 steps (${id})`);
  check(await page.locator(".strip .tok").count() === nPrompt + 12, "the token strip shows every token");

  const k = 2, i = nPrompt + k, pos = i - 1, step = trace.steps[k], rec = step.logprobs.x_tokenprobe;
  await page.locator(`.strip .tok[data-index="${i}"]`).click();
  await page.getByTestId("selected").filter({ hasText: `token #${i} ` }).waitFor();
  // funnel
  check(await page.getByTestId("funnel-p-raw").textContent() === p4(rec.chosen.p_raw), `funnel p(model) = ${p4(rec.chosen.p_raw)}`);
  check(await page.getByTestId("funnel-p-final").textContent() === p4(rec.chosen.p_final), `funnel p(after sampler) = ${p4(rec.chosen.p_final)}`);
  const draw = await page.getByTestId("funnel-draw").textContent();
  check(rec.draw.greedy ? draw.includes("no random draw") && !draw.includes("u =") : draw.includes("draw u ="),
        `funnel draw line fits a ${rec.draw.greedy ? "greedy" : "sampled"} step: "${draw}"`);
  // trajectory: one row per point of the step's logit lens (embedding, each layer's mid and
  // post residual), each P(token) as recorded; the embed/post points agree with the lens the
  // server computes from the trace's captured residual stream
  const col = lens.positions.indexOf(pos), L = lens.layers.length, pts = step.explain.logit_lens.points;
  const trajRows = page.getByTestId("trajectory").locator("tr[data-layer]");
  check(await trajRows.count() === pts.length, `trajectory has ${pts.length} points (embedding, every layer's mid and post)`);
  let trajOk = true, lensAgree = true;
  for (let j = 0; j < pts.length; j++) {
    trajOk &&= (await trajRows.nth(j).locator("td").nth(1).textContent()) === p4(pts[j].chosen_prob);
    const row = pts[j].where === "embed" ? 0 : pts[j].where === "post" ? pts[j].layer + 1 : -1;
    if (row >= 0) lensAgree &&= Math.abs(lens.next_prob[row][col] - pts[j].chosen_prob) < 2e-3;
  }
  check(trajOk, "trajectory P(token) at every point equals the step's logit lens");
  check(lensAgree, "the embed and post points equal the lens of the trace's residual stream");
  check(Math.abs(lens.next_prob[L - 1][col] - rec.chosen.p_raw) < 1e-3, `last-layer lens ${p4(lens.next_prob[L - 1][col])} matches the sampler's p ${p4(rec.chosen.p_raw)}`);
  check(await page.getByTestId("trajectory-final").textContent() === p4(rec.chosen.p_raw), "trajectory final probability");
  // lens heatmap column
  const lensRows = page.getByTestId("lens-column").locator("tr").filter({ has: page.locator("td") });
  let lensOk = (await lensRows.count()) === L;
  for (let l = 0; l < L && lensOk; l++) lensOk &&= (await lensRows.nth(l).locator("td").nth(2).textContent()) === p4(lens.top_prob[l][col]);
  check(lensOk, "logit-lens column shows the top-1 probability of every layer");
  // attention: layer 0 head 0, the top source weight equals the pattern's row maximum
  const pat = await api(`/api/traces/${id}/tensor?hook=hook_pattern&layer=0&positions=${pos}&heads=0`);
  const row = pat.data.slice(0, pos + 1);
  const cell = page.locator(`td.head[data-layer="0"][data-head="0"]`);
  check(await cell.getByTestId("attn-top").textContent() === p4(Math.max(...row)), `attention L0H0 top source weight ${p4(Math.max(...row))}`);
  await cell.click();
  await page.getByTestId("attn-head-canvas").waitFor();
  check(true, "clicking a head shows its full pattern");
  // DLA and sources: the run asked for explanations (the checkbox is on by default).
  const ex = step.explain;
  check(ex !== undefined && ex.step === k, "the run's steps carry explain records");
  check(await page.getByTestId("dla-total").textContent() === f3(ex.dla.total_logit), `DLA total logit ${f3(ex.dla.total_logit)}`);
  const sum = ex.dla.parts.reduce((a, p) => a + p.logit, 0);
  check(Math.abs(sum - ex.dla.total_logit) < 1e-3, `DLA parts sum to the total (${f3(sum)})`);
  check(Math.abs(ex.dla.total_logit - rec.chosen.raw_logit) < 1e-3, `DLA total equals the sampler's raw logit ${f3(rec.chosen.raw_logit)}`);
  const big = [...ex.dla.parts].sort((a, b) => Math.abs(b.logit) - Math.abs(a.logit))[0];
  check(await page.getByTestId("dla").locator(`tr[data-part="${big.name}"] td`).nth(1).textContent() === f3(big.logit), `DLA largest part ${big.name} = ${f3(big.logit)}`);
  const h0 = ex.attention_sources.heads[0], srcText = await page.getByTestId("sources").textContent();
  check(srcText.includes(`L${h0.layer}H${h0.head}`) && srcText.includes(p4(h0.sources[0].weight)),
        `sources list head L${h0.layer}H${h0.head}'s top source weight ${p4(h0.sources[0].weight)}`);
  await page.screenshot({ path: path.join(out, "viewer-run.png"), fullPage: true });

  // As a chat: stories260K has no template, so the prompt is the "role: content" fallback.
  await page.getByTestId("chat").check();
  await page.getByTestId("run").click();
  await page.getByTestId("status").filter({ hasText: "a chat rendered by the fallback" }).waitFor({ timeout: 30_000 });
  const chatTrace = await api(`/api/traces/${await page.getByTestId("trace-select").inputValue()}`);
  check(chatTrace.manifest.chat_template === "fallback", "a chat run's trace says the fallback rendered it");
  check((await page.getByTestId("token-strip").textContent()).includes("user"), "the token strip shows the rendered chat ('user: …')");
  await page.getByTestId("chat").uncheck();

  // A copy of the trace without explain records: the views say so instead of drawing.
  const fx = "fixture-no-explain.tptrace", fxDir = path.join(traces, fx);
  fs.cpSync(path.join(traces, id), fxDir, { recursive: true });
  const bare = trace.steps.map(({ explain, ...s }) => s);
  fs.writeFileSync(path.join(fxDir, "steps.jsonl"), bare.map(s => JSON.stringify(s)).join("\n") + "\n");
  await page.goto(`${base}/?trace=${fx}`);
  await page.getByTestId("selected").waitFor();
  await page.locator(`.strip .tok[data-index="${i}"]`).click();
  await page.getByTestId("selected").filter({ hasText: `token #${i} ` }).waitFor();
  check((await page.getByTestId("dla").textContent()).includes("not in this trace"), "DLA says 'not in this trace' without explain");
  check((await page.getByTestId("sources").textContent()).includes("not in this trace"), "sources say 'not in this trace' without explain");

  // An RWKV-6 trace: no attention pattern; the sources panel shows the WKV readout's sources.
  const makeFixtures = process.env.TOKENPROBE_MAKE_FIXTURES;
  if (makeFixtures && fs.existsSync(makeFixtures)) {
    const fixtures = path.join(tmp, "fixtures"), rw = "fixture-rwkv.tptrace";
    const ok = spawnSync(makeFixtures, [fixtures]).status === 0 &&
      spawnSync(cli, ["trace", "-m", path.join(fixtures, "rwkv6-tiny-f32.gguf"), "--tokens", "0,17,42,9,100,3", "-n", "3",
                      "--explain", "-o", path.join(traces, rw)]).status === 0;
    check(ok, "an RWKV-6 trace with explanations was written");
    const rtrace = await api(`/api/traces/${rw}`);
    await page.goto(`${base}/?trace=${rw}`);
    await page.getByTestId("selected").waitFor();
    const ri = rtrace.manifest.tokens.length + 1;
    await page.locator(`.strip .tok[data-index="${ri}"]`).click();
    await page.getByTestId("selected").filter({ hasText: `token #${ri} ` }).waitFor();
    const rex = rtrace.steps[1].explain, rsrc = await page.getByTestId("sources").textContent();
    const rl = rex.attention_sources.layers[0];
    check(rex.attention_sources.measure === "wkv_readout" && rsrc.includes("WKV readout") && rsrc.includes(rex.attention_sources.note),
          "RWKV: the sources panel is the WKV readout's, with its note");
    check(rsrc.includes(p4(rl.sources[0].weight)) && rsrc.includes("initial state"),
          `RWKV: layer 0's top readout source ${p4(rl.sources[0].weight)} and the initial state's share are shown`);
    check((await page.getByTestId("attention").textContent()).includes("no attention pattern"), "RWKV: the attention panel says there is no pattern");
    await page.screenshot({ path: path.join(out, "viewer-rwkv.png"), fullPage: true });
  } else {
    console.log("note: TOKENPROBE_MAKE_FIXTURES unset, the RWKV view is not checked");
  }

  // Responsiveness: a 2,000-token trace (prompt tokens repeated in the manifest).
  const lg = "fixture-long.tptrace", lgDir = path.join(traces, lg);
  fs.cpSync(path.join(traces, id), lgDir, { recursive: true });
  const man = JSON.parse(fs.readFileSync(path.join(lgDir, "manifest.json"), "utf8"));
  const toks = man.tokens;
  while (man.tokens.length < 2000 - trace.steps.length) man.tokens = man.tokens.concat(toks);
  man.tokens = man.tokens.slice(0, 2000 - trace.steps.length);
  fs.writeFileSync(path.join(lgDir, "manifest.json"), JSON.stringify(man));
  let t0 = Date.now();
  await page.goto(`${base}/?trace=${lg}`);
  await page.getByTestId("selected").waitFor();
  const loadMs = Date.now() - t0;
  check(await page.locator(".strip .tok").count() === 2000, `2,000-token trace loads (${loadMs} ms)`);
  t0 = Date.now();
  await page.locator(`.strip .tok[data-index="1500"]`).click();
  await page.getByTestId("selected").filter({ hasText: "token #1500 " }).waitFor();
  const clickMs = Date.now() - t0;
  check(loadMs < 5000 && clickMs < 2000, `stays responsive: load ${loadMs} ms, click ${clickMs} ms`);
  await page.screenshot({ path: path.join(out, "viewer-long.png") });
} finally {
  await ctx.close();
  server.kill();
  clearTimeout(deadline);
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) FAILED` : `all checks passed; screenshots in ${out}`);
process.exit(failures ? 1 : 0);
