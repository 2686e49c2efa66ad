// End-to-end test of the viewer: starts `tokenprobe serve` on stories260K, drives Debian's
// Chromium (playwright-core, no downloaded browsers), runs a prompt, clicks a token and
// checks that each view shows the numbers of the trace, the DLA and sources views included
// (the run asks for "explain" records, docs/explain-format.md), with their labels: the
// hover tooltips of the lens heatmap, the attention pattern and the token strip read the
// cell under the mouse; the strip is coloured by each token's probability; search, the
// CSV / PNG / .npy exports, the diff of two traces and deleting a trace. Then it opens a copy
// of the trace without explain records, an RWKV-6 trace (the WKV readout's sources where
// attention sources go; its fixture from $TOKENPROBE_MAKE_FIXTURES), a 400-token trace (the
// strip wraps in its box) and a 2,000-token trace for responsiveness. Screenshots of every
// view and the downloaded files go to $TP_TEST_OUTPUT (default build/test-output/web).
// Exit 77 = skipped (no chromium / playwright-core / model).
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
// A .npy answer: its shape and float32 values (format 1.0, '<f4', C order).
const parseNpy = buf => {
  const hl = buf.readUInt16LE(8), header = buf.subarray(10, 10 + hl).toString("latin1");
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(",").map(x => x.trim()).filter(x => x).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + hl, buf.byteOffset + buf.length));
  return { ok: buf.subarray(0, 6).toString("latin1") === "\x93NUMPY" && header.includes("'<f4'"), shape, data };
};
const npyAt = async url => parseNpy(Buffer.from(await (await fetch(base + url)).arrayBuffer()));
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

  // Labels. The lens heatmap: token labels drawn, a legend with its unit, a tooltip that
  // reads the cell under the mouse, zoom, and every cell as CSV.
  const hoverCell = async (testid, col, row) => {
    const c = page.getByTestId(testid);
    await c.scrollIntoViewIfNeeded();
    const b = await c.boundingBox(), d = await c.evaluate(e => ({ ...e.dataset }));
    await page.mouse.move(b.x + Number(d.left) + (col + 0.5) * Number(d.cw), b.y + Number(d.top) + (row + 0.5) * Number(d.ch));
    return d;
  };
  check((await page.getByTestId("lens-legend").textContent()).includes("probability"), "the lens heatmap has a colour legend with its unit");
  const lensDs = await hoverCell("lens-canvas", col, 2);
  check(lensDs.labels === "tokens", `lens columns are labelled with their tokens (${lensDs.cw} px each)`);
  const lensTip = await page.getByTestId("lens-tip").textContent();
  check(lensTip.includes(`layer ${lens.layers[2]}, position ${pos}`) && lensTip.includes(`probability ${p4(lens.top_prob[2][col])}`) &&
        lensTip.includes(`probability ${p4(lens.next_prob[2][col])}, rank ${lens.next_rank[2][col]}`),
        `lens tooltip reads the cell under the mouse: "${lensTip}"`);
  const w0 = Number(await page.getByTestId("lens-canvas").getAttribute("width"));
  await page.getByTestId("lens-zoom-in").click();
  const w1 = Number(await page.getByTestId("lens-canvas").getAttribute("width"));
  check(w1 > w0, `zoom widens the heatmap (${w0} → ${w1} px)`);
  await page.screenshot({ path: path.join(out, "viewer-lens-zoom.png"), fullPage: true });
  await page.getByTestId("lens-zoom-out").click();
  const saveDownload = async (testid, name) => {
    const [dl] = await Promise.all([page.waitForEvent("download"), page.getByTestId(testid).click()]);
    const file = path.join(out, name);
    await dl.saveAs(file);
    return fs.readFileSync(file);
  };
  const lensCsv = (await saveDownload("lens-csv", "logit-lens.csv")).toString("utf8").trim().split("\n");
  const csvRow = lensCsv.find(l => l.startsWith(`${lens.layers[2]},${pos},`))?.split(",") ?? [];
  check(lensCsv.length === 1 + L * lens.positions.length && lensCsv[0].startsWith("layer,position,input_token,top1_id") &&
        Math.abs(Number(csvRow[5]) - lens.top_prob[2][col]) < 1e-6,
        `lens CSV has a row per cell (${lensCsv.length - 1}) with the API's numbers`);
  const png = await saveDownload("lens-png", "logit-lens.png");
  check(png.subarray(1, 4).toString() === "PNG" && png.length > 1000, `lens PNG download (${png.length} bytes)`);
  const trajCsv = (await saveDownload("trajectory-csv", "trajectory.csv")).toString("utf8");
  check(trajCsv.startsWith("layer,\"P(token), probability\"") && trajCsv.includes(p4(pts[1].chosen_prob)), "trajectory CSV carries its table");
  // The single-head pattern: query/key token axes, a tooltip, a legend, its .npy.
  const head0 = await api(`/api/traces/${id}/tensor?hook=hook_pattern&layer=0&heads=0`);
  const [, hRows, hKeys] = head0.shape, hr = head0.positions.indexOf(pos);
  const hk = row.indexOf(Math.max(...row));
  const headDs = await hoverCell("attn-head-canvas", hk, hr);
  const headTip = await page.getByTestId("attn-head-tip").textContent();
  check(headDs.labels === "tokens" && headTip.includes(`query #${pos} `) && headTip.includes(`key #${hk} `) &&
        headTip.includes(`attention weight ${p4(head0.data[hr * hKeys + hk])}`), `attention pattern tooltip: "${headTip}"`);
  check((await page.getByTestId("attn-head-legend").textContent()).includes("attention weight"), "the pattern has a legend with its unit");
  const headNpy = await npyAt(await page.getByTestId("attn-npy").getAttribute("href"));
  check(headNpy.ok && headNpy.shape.join() === `1,${hRows},${hKeys}` && headNpy.data.every((v, j) => v === Math.fround(head0.data[j])),
        `the pattern's .npy [${headNpy.shape}] holds the tensor's values`);
  await page.getByTestId("attn-head-canvas").screenshot({ path: path.join(out, "viewer-attention-head.png") });
  // Sampler top 5 as token text with the id in a tooltip; DLA and sources say what their numbers are.
  const top0 = page.getByTestId("funnel-top").locator("tr[data-id]").first();
  check((await top0.locator("td").first().textContent()) === `“${step.logprobs.top_logprobs[0].token}”` &&
        (await top0.locator("span.tok").getAttribute("title")) === `token id ${rec.raw.top[0].id}` &&
        (await top0.locator("td").nth(1).textContent()) === p4(rec.raw.top[0].p), "sampler top 5 shows token text, id on hover, probability");
  check((await page.getByTestId("funnel").textContent()).includes("candidates"), "each funnel stage says its number is candidates left");
  check((await page.getByTestId("dla-diff-head").textContent()) === `diff vs “${ex.runner_up.text}” (logits)`, "DLA diff column names the runner-up and the unit");
  check((await page.getByTestId("sources-unit").textContent()).includes("w = each source token's weight"), "source weights are labelled");

  // The strip: tokens coloured by the model's probability of each, alternatives on hover.
  const span = j => page.locator(`.strip .tok[data-index="${j}"]`);
  const pPrompt = lens.next_prob[L - 1][lens.positions.indexOf(1)];
  check((await span(i).getAttribute("data-p")) === p4(rec.chosen.p_raw) && (await span(2).getAttribute("data-p")) === p4(pPrompt) &&
        (await span(0).getAttribute("data-p")) === null, `strip colours: generated ${p4(rec.chosen.p_raw)} (sampler), prompt ${p4(pPrompt)} (last-layer lens), first token none`);
  check((await page.getByTestId("strip-legend").textContent()).includes("probability"), "the strip's colours have a legend");
  await span(i).hover();
  const alts = page.getByTestId("token-tip-alts").locator("tr");
  check(await page.getByTestId("token-tip").isVisible() && (await page.getByTestId("token-tip-p").textContent()) === p4(rec.chosen.p_raw) &&
        (await alts.count()) === step.logprobs.top_logprobs.length &&
        (await alts.first().locator("td").nth(1).textContent()) === p4(Math.exp(step.logprobs.top_logprobs[0].logprob)),
        "hovering a token shows its probability and the top-k alternatives with theirs");
  await page.screenshot({ path: path.join(out, "viewer-strip-hover.png") });
  await page.mouse.move(0, 0);

  // Search and filter.
  const allTexts = [...trace.manifest.tokens.map(x => x.text ?? String(x.id)), ...trace.steps.map(s => s.text ?? s.logprobs?.token ?? String(s.id))];
  const vis = s => s.replace(/\n/g, "↵").replace(/\t/g, "⇥");
  const want = allTexts.filter(t => vis(t).toLowerCase().includes("e")).length;
  await page.getByTestId("token-search").fill("e");
  check((await page.getByTestId("token-search-count").textContent()) === `${want} matches` && (await page.locator(".strip .tok.match").count()) === want,
        `searching "e" marks the ${want} tokens that hold it`);
  await page.getByTestId("token-filter").check();
  check(await page.getByTestId("token-strip").evaluate(e => e.classList.contains("filtered")), "'only matches' dims the others");
  await page.screenshot({ path: path.join(out, "viewer-search.png") });
  await page.getByTestId("token-search").press("Enter");
  const firstMatch = allTexts.findIndex(t => vis(t).toLowerCase().includes("e"));
  await page.getByTestId("selected").filter({ hasText: `token #${firstMatch} ` }).waitFor();
  check(true, `Enter selects the first match (#${firstMatch})`);
  await page.getByTestId("token-search").fill(`#${step.id}`);
  const wantId = [...trace.manifest.tokens.map(x => x.id), ...trace.steps.map(s => s.id)].filter(x => x === step.id).length;
  check((await page.locator(".strip .tok.match").count()) === wantId, `searching #${step.id} finds the ${wantId} tokens with that id`);
  await page.getByTestId("token-filter").uncheck();
  await page.getByTestId("token-search").fill("");
  // A hook's tensor as .npy from the bar under the strip.
  await page.getByTestId("npy-hook").selectOption("blocks.1.hook_resid_post");
  await page.getByTestId("npy-pos").fill("2-4");
  const resid = await api(`/api/traces/${id}/tensor?hook=blocks.1.hook_resid_post&positions=2-4`);
  const residNpy = await npyAt(await page.getByTestId("npy-link").getAttribute("href"));
  check(residNpy.ok && residNpy.shape.join() === resid.shape.join() && residNpy.data.every((v, j) => v === Math.fround(resid.data[j])),
        `the tensor bar's .npy of blocks.1.hook_resid_post positions 2-4 is [${residNpy.shape}] with the API's values`);
  await page.locator(`.strip .tok[data-index="${i}"]`).click();
  await page.getByTestId("selected").filter({ hasText: `token #${i} ` }).waitFor();
  await page.screenshot({ path: path.join(out, "viewer-run.png"), fullPage: true });

  // As a chat: stories260K has no template, so the prompt is the "role: content" fallback.
  await page.getByTestId("chat").check();
  await page.getByTestId("run").click();
  await page.getByTestId("status").filter({ hasText: "a chat rendered by the fallback" }).waitFor({ timeout: 30_000 });
  const chatTrace = await api(`/api/traces/${await page.getByTestId("trace-select").inputValue()}`);
  check(chatTrace.manifest.chat_template === "fallback", "a chat run's trace says the fallback rendered it");
  check((await page.getByTestId("token-strip").textContent()).includes("user"), "the token strip shows the rendered chat ('user: …')");
  await page.getByTestId("chat").uncheck();

  // Diff: the first run (A) against the chat run (B), numbers as GET /api/diff has them;
  // then against a copy of itself (no divergence, KL 0).
  const chatId = chatTrace.id, mean = v => { const x = v.filter(a => a !== null); return x.reduce((s, a) => s + a, 0) / x.length; };
  await page.goto(`${base}/?trace=${id}`);
  await page.getByTestId("selected").waitFor();
  await page.getByTestId("diff-select").selectOption(chatId);
  await page.getByTestId("diff-run").click();
  await page.getByTestId("diff").waitFor();
  const dd = await api(`/api/diff?a=${id}&b=${chatId}`);
  const summary = await page.getByTestId("diff-summary").textContent();
  check(dd.first_divergence ? summary.includes(`pair ${dd.first_divergence.pair} (position ${dd.first_divergence.pos_a} `) && summary.includes(dd.first_divergence.hook)
                            : summary.includes("none"), `diff summary states the first divergence: "${summary.slice(0, 160)}…"`);
  const post2 = dd.hooks.find(h => h.hook === "blocks.2.hook_resid_post");
  const dRow = page.getByTestId("diff-table").locator('tr[data-layer="2"] td');
  check((await dRow.nth(2).textContent()) === p4(mean(post2.cos)) && (await dRow.nth(5).textContent()) === p4(mean(post2.kl)),
        `diff table, layer 2: mean cosine ${p4(mean(post2.cos))}, mean KL ${p4(mean(post2.kl))} nats`);
  check((await page.getByTestId("diff-a").locator(".tok").count()) === dd.tokens_a.length && (await page.getByTestId("diff-b").locator(".tok").count()) === dd.tokens_b.length,
        "the two runs' tokens side by side");
  await hoverCell("diff-canvas", 0, 0);
  check((await page.getByTestId("diff-tip").textContent()).includes("pair 0: A position"), "diff heatmap tooltip names the pair and its tokens");
  await page.getByTestId("diff").screenshot({ path: path.join(out, "viewer-diff.png") });
  const twin = "fixture-twin.tptrace";
  fs.cpSync(path.join(traces, id), path.join(traces, twin), { recursive: true });
  await page.goto(`${base}/?trace=${id}`);
  await page.getByTestId("selected").waitFor();
  await page.getByTestId("diff-select").selectOption(twin);
  await page.getByTestId("diff-run").click();
  await page.getByTestId("diff").waitFor();
  check((await page.getByTestId("diff-summary").textContent()).includes("first divergence: none") &&
        (await page.getByTestId("diff-table").locator('tr[data-layer="2"] td').nth(5).textContent()) === p4(0), "a trace against its copy: no divergence, KL 0");

  // Delete: the confirm dialog can refuse; accepted, the trace is gone.
  await page.goto(`${base}/?trace=${twin}`);
  await page.getByTestId("selected").waitFor();
  page.once("dialog", d => d.dismiss());
  await page.getByTestId("delete-trace").click();
  check((await fetch(`${base}/api/traces/${twin}`)).status === 200, "dismissing the confirm keeps the trace");
  page.once("dialog", d => d.accept());
  await page.getByTestId("delete-trace").click();
  await page.getByTestId("status").filter({ hasText: `deleted ${twin}` }).waitFor();
  check((await fetch(`${base}/api/traces/${twin}`)).status === 404 && !fs.existsSync(path.join(traces, twin)) &&
        (await page.getByTestId("trace-select").locator(`option[value="${twin}"]`).count()) === 0, "an accepted delete removes the trace and its list entry");

  // Patching and causal-tracing results (the commands' --json output) opened from a file.
  const clean = "Lily and Tim went to the park. Lily gave the ball to", corrupt = "Lily and Tim went to the park. Tim gave the ball to";
  const runJson = (args, name) => {
    const r = spawnSync(cli, [...args, "-m", model, "--json", "-t", "2"], { maxBuffer: 64 << 20 });
    const file = path.join(out, name);
    fs.writeFileSync(file, r.stdout);
    return r.status === 0 ? { file, j: JSON.parse(r.stdout) } : null;
  };
  const pr = runJson(["patch", "--clean", clean, "--corrupt", corrupt, "--metric", "logit_diff(' Tim',' Lily')", "--target", "resid_pre,z"], "patch.json");
  check(pr !== null, "tokenprobe patch --json ran");
  await page.getByTestId("result-file").setInputFiles(pr.file);
  await page.getByTestId("patch").waitFor();
  check((await page.getByTestId("patch-summary").textContent()).includes(`metric ${p4(pr.j.clean.metric)}`), "patching view: the clean and corrupted metrics");
  const sw = pr.j.sweeps[0], [, pCols] = sw.shape, pc = pr.j.clean.tokens.findIndex((t, j) => t !== pr.j.corrupt.tokens[j]);
  await hoverCell(`patch-${sw.target}-canvas`, pc, 1);
  const pTip = await page.getByTestId(`patch-${sw.target}-tip`).textContent();
  check(pTip.includes(`position ${pc} `) && pTip.includes("(corrupted: ") && pTip.includes(`score ${p4(sw.score[pCols + pc])}, metric ${p4(sw.metric[pCols + pc])}`),
        `patching heatmap tooltip: "${pTip}"`);
  check((await page.getByTestId(`patch-${sw.target}-legend`).textContent()).includes("score: 0 = the corrupted run's metric"), "patching legend says what the score is");
  check(await page.getByTestId("patch-z-canvas").count() === 1, "the per-head sweep (z) has its heatmap too");
  await page.getByTestId("result-box").screenshot({ path: path.join(out, "viewer-patch.png") });
  // The same sweep run by the server (POST /api/patch) gives the CLI's numbers.
  await page.getByTestId("patch-clean").fill(clean);
  await page.getByTestId("patch-corrupt").fill(corrupt);
  await page.getByTestId("patch-metric").fill("logit_diff(' Tim',' Lily')");
  await page.getByTestId("patch-target").fill("resid_pre,z");
  await page.getByTestId("patch-run").click();
  await page.getByTestId("status").filter({ hasText: "patched:" }).waitFor({ timeout: 30_000 });
  await hoverCell(`patch-${sw.target}-canvas`, pc, 1);
  check((await page.getByTestId(`patch-${sw.target}-tip`).textContent()).includes(`score ${p4(sw.score[pCols + pc])}, metric ${p4(sw.metric[pCols + pc])}`) &&
        (await page.getByTestId("status").textContent()) === `patched: ${pr.j.runs} runs`, "the viewer's Patch (POST /api/patch) gives tokenprobe patch's cell and run count");
  await page.getByTestId("result-box").screenshot({ path: path.join(out, "viewer-patch-server.png") });
  const ct = runJson(["causal-trace", "-p", clean, "--subject", "Tim", "--kind", "resid,mlp", "--samples", "3"], "causal_trace.json");
  check(ct !== null, "tokenprobe causal-trace --json ran");
  await page.getByTestId("result-file").setInputFiles(ct.file);
  await page.getByTestId("causal").waitFor();
  const cm = ct.j.maps[0], [, cL] = cm.shape, cp = ct.j.corrupted_positions[1] + 2;
  await hoverCell(`causal-${cm.kind}-canvas`, 2, cp);
  const cTip = await page.getByTestId(`causal-${cm.kind}-tip`).textContent();
  check(cTip.includes(`position ${cp} `) && cTip.includes(`layer 2: indirect effect ${p4(cm.effect[cp * cL + 2])}, metric with the state restored ${p4(cm.restored[cp * cL + 2])}`),
        `causal-tracing heatmap tooltip: "${cTip}"`);
  await page.getByTestId("result-box").screenshot({ path: path.join(out, "viewer-causal-trace.png") });

  // The same viewer in a `tokenprobe report` file, opened from disk.
  const reportFile = path.join(out, "report.html");
  check(spawnSync(cli, ["report", path.join(traces, id), "-o", reportFile, "-m", model, "--result", pr.file, "--result", ct.file]).status === 0,
        "tokenprobe report wrote a file (with a patching and a causal-tracing result)");
  await page.goto("file://" + reportFile);
  await page.getByTestId("selected").waitFor();
  check(await page.locator(".strip .tok").count() === nPrompt + 12 && (await span(i).getAttribute("data-p")) === p4(rec.chosen.p_raw) &&
        await page.getByTestId("lens-canvas").count() === 1 && await page.getByTestId("trace-tools").isHidden(),
        "the report shows the strip with its colours and the lens, without the server's tools");
  await hoverCell(`patch-${sw.target}-canvas`, pc, 1);
  check((await page.getByTestId(`patch-${sw.target}-tip`).textContent()).includes(`score ${p4(sw.score[pCols + pc])}, metric ${p4(sw.metric[pCols + pc])}`),
        "the report's patching section gives tokenprobe patch's cell");
  await hoverCell(`causal-${cm.kind}-canvas`, 2, cp);
  check((await page.getByTestId(`causal-${cm.kind}-tip`).textContent()).includes(`indirect effect ${p4(cm.effect[cp * cL + 2])}`),
        "the report's causal-tracing section gives tokenprobe causal-trace's cell");
  await page.screenshot({ path: path.join(out, "viewer-report.png") });

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
    await page.mouse.move(0, 0);  // the strip's hover card would cover the panels
    await page.screenshot({ path: path.join(out, "viewer-rwkv.png"), fullPage: true });

    // A mixture of experts (Qwen3-MoE fixture): the experts panel lists each layer's routing
    // with the explain record's weights and DLA; a dense trace has no such panel.
    check(await page.getByTestId("experts").count() === 0, "a model without experts shows no experts panel");
    const mx = "fixture-moe.tptrace";
    check(spawnSync(cli, ["trace", "-m", path.join(fixtures, "qwen3moe-tiny-f32.gguf"), "--tokens", "0,17,42,9,100,3", "-n", "3",
                          "--explain", "-o", path.join(traces, mx)]).status === 0, "a Qwen3-MoE trace with explanations was written");
    const mtrace = await api(`/api/traces/${mx}`);
    await page.goto(`${base}/?trace=${mx}`);
    await page.getByTestId("selected").waitFor();
    const mi = mtrace.manifest.tokens.length + 1;
    await page.locator(`.strip .tok[data-index="${mi}"]`).click();
    await page.getByTestId("selected").filter({ hasText: `token #${mi} ` }).waitFor();
    const mex = mtrace.steps[1].explain, panelText = await page.getByTestId("experts").textContent();
    const layers = mex.experts ?? [];
    check(layers.length === mtrace.manifest.model.config.n_layers, `MoE: the explain record routes every layer (${layers.length})`);
    const rows = await page.locator("[data-testid=experts] tr[data-expert]").count();
    check(rows === layers.reduce((n, l) => n + l.chosen.length, 0), `MoE: one row per routed expert (${rows})`);
    const e0 = layers[0].chosen[0];
    const row0 = await page.locator(`[data-testid=experts] tr[data-expert="${layers[0].layer}:${e0.expert}"]`).textContent();
    check(row0.includes(`E${e0.expert}`) && row0.includes(p4(e0.weight)) && row0.includes(f3(e0.dla_logit)) && row0.includes(f3(e0.dla_diff)),
          `MoE: layer ${layers[0].layer}'s top expert E${e0.expert} with weight ${p4(e0.weight)} and DLA ${f3(e0.dla_logit)} logits`);
    check(panelText.includes("weight (0-1)") && panelText.includes("(logits)"), "MoE: the experts panel's numbers say what they are");
    await page.mouse.move(0, 0);
    await page.getByTestId("experts").screenshot({ path: path.join(out, "viewer-experts.png") });
  } else {
    console.log("note: TOKENPROBE_MAKE_FIXTURES unset, the RWKV view is not checked");
  }

  // A 400-token trace fits its box: the strip wraps (no horizontal overflow).
  const mid = "fixture-400.tptrace", midDir = path.join(traces, mid);
  fs.cpSync(path.join(traces, id), midDir, { recursive: true });
  const midMan = JSON.parse(fs.readFileSync(path.join(midDir, "manifest.json"), "utf8"));
  let midToks = [];
  while (midToks.length < 400 - trace.steps.length) midToks = midToks.concat(trace.manifest.tokens);
  midMan.tokens = midToks.slice(0, 400 - trace.steps.length);
  fs.writeFileSync(path.join(midDir, "manifest.json"), JSON.stringify(midMan));
  await page.goto(`${base}/?trace=${mid}`);
  await page.getByTestId("selected").waitFor();
  const fit = await page.getByTestId("token-strip").evaluate(e => ({ sw: e.scrollWidth, cw: e.clientWidth, n: e.querySelectorAll(".tok").length }));
  check(fit.n === 400 && fit.sw <= fit.cw, `a 400-token strip wraps inside its box (scrollWidth ${fit.sw} <= clientWidth ${fit.cw})`);
  const selIn = await page.getByTestId("token-strip").evaluate(e => {
    const t = e.querySelector(".tok.sel").getBoundingClientRect(), b = e.getBoundingClientRect();
    return t.top >= b.top && t.bottom <= b.bottom;
  });
  check(selIn, "the selected token is scrolled into the strip's view");
  await page.screenshot({ path: path.join(out, "viewer-400.png") });

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
  const fitLong = await page.getByTestId("token-strip").evaluate(e => ({ sw: e.scrollWidth, cw: e.clientWidth }));
  check(fitLong.sw <= fitLong.cw, `the 2,000-token strip wraps too (scrollWidth ${fitLong.sw} <= clientWidth ${fitLong.cw})`);
  await page.screenshot({ path: path.join(out, "viewer-long.png") });
} finally {
  await ctx.close();
  server.kill();
  clearTimeout(deadline);
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) FAILED` : `all checks passed; screenshots in ${out}`);
process.exit(failures ? 1 : 0);
