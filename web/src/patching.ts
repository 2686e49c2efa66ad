// Heatmaps of `tokenprobe patch --json` results (opened from a file, or POST /api/patch's
// answer, the same shape) and `tokenprobe causal-trace --json` results: activation patching's
// normalised score per layer × position (or layer × head), and causal tracing's indirect
// effect per position × layer, each with token axes, a legend with its unit and a tooltip.
import { absent, button, csv, download, el, legend, p4, panel, short, vis } from "./dom";

interface PatchRun { text: string; tokens: number[]; token_text: string[]; metric: number }
interface PatchJson { metric: string; mode: string; clean: PatchRun; corrupt: PatchRun; sweeps: { target: string; shape: [number, number]; axes: string[]; hooks: string[]; score?: number[]; metric?: number[] }[] }
interface CausalJson { metric: string; tokens: number[]; token_text: string[]; corrupted_positions: [number, number]; clean_metric: number; corrupted_metric: number;
  maps: { kind: string; hook: string; shape: [number, number]; effect?: number[]; restored?: number[] }[] }

// Signed value -> colour: white at 0, red towards +1, blue towards −1 (clamped).
export function signed(v: number): string {
  const t = Math.max(-1, Math.min(1, v)), a = Math.abs(t);
  return t >= 0 ? `rgb(255,${Math.round(255 - 200 * a)},${Math.round(255 - 200 * a)})` : `rgb(${Math.round(255 - 200 * a)},${Math.round(255 - 140 * a)},255)`;
}

interface Grid { title: string; rows: string[]; cols: string[]; values: number[]; scale: number; tipOf: (r: number, c: number) => string; testid: string; csvHead: string[]; csvRow: (r: number, c: number) => (string | number)[] }

function heatGrid(g: Grid, legendText: string): HTMLElement {
  const cw = Math.max(6, Math.min(28, Math.floor(880 / Math.max(1, g.cols.length)))), ch = 16, left = 150, top = 60;
  const c = el("canvas", { width: left + g.cols.length * cw + 2, height: top + g.rows.length * ch + 2, "data-testid": `${g.testid}-canvas`, "data-left": left, "data-top": top, "data-cw": cw, "data-ch": ch });
  const x = c.getContext("2d")!;
  x.font = "10px ui-monospace, monospace";
  g.rows.forEach((name, r) => {
    x.fillStyle = "#333"; x.fillText(short(name.replace(/^blocks\.(\d+)\./, "L$1 "), 22), 2, top + r * ch + 12);
    g.cols.forEach((_, k) => { x.fillStyle = signed(g.values[r * g.cols.length + k] / g.scale); x.fillRect(left + k * cw, top + r * ch, cw - 1, ch - 1); });
  });
  if (cw >= 10) g.cols.forEach((name, k) => { x.save(); x.fillStyle = "#333"; x.translate(left + k * cw + cw / 2 + 3, top - 3); x.rotate(-Math.PI / 2); x.fillText(short(name), 0, 0); x.restore(); });
  const tip = el("div", { class: "tip", "data-testid": `${g.testid}-tip` }, "hover a cell");
  c.addEventListener("mousemove", ev => {
    const b = c.getBoundingClientRect(), k = Math.floor((ev.clientX - b.left - left) / cw), r = Math.floor((ev.clientY - b.top - top) / ch);
    if (r >= 0 && r < g.rows.length && k >= 0 && k < g.cols.length) tip.textContent = g.tipOf(r, k);
  });
  const toCsv = () => {
    const rows: (string | number)[][] = [g.csvHead];
    g.rows.forEach((_, r) => g.cols.forEach((_, k) => rows.push(g.csvRow(r, k))));
    download(`${g.testid}.csv`, new Blob([csv(rows)], { type: "text/csv" }));
  };
  return el("div", { "data-testid": g.testid }, el("h3", {}, g.title, " ", button("CSV", `${g.testid}-csv`, toCsv, "every cell"),
      button("PNG", `${g.testid}-png`, () => download(`${g.testid}.png`, c.toDataURL("image/png")), "the heatmap as drawn")),
    legend(v => signed(2 * v - 1), `−${p4(g.scale)}`, `+${p4(g.scale)}`, legendText, `${g.testid}-legend`), el("div", { class: "scroll" }, c), tip);
}

function patchView(p: PatchJson): HTMLElement {
  const differs = p.clean.tokens.map((t, i) => t !== p.corrupt.tokens[i]);
  const posName = (i: number) => `${differs[i] ? "*" : ""}${p.clean.token_text[i] ?? i}`;
  const grids = p.sweeps.map(s => {
    if (!s.score || !s.metric) return absent(`${s.target}: values are in .npy files (run with --json for them inline)`);
    const [nL, nC] = s.shape, perHead = s.axes[1] === "head", score = s.score, metric = s.metric;
    const cols = Array.from({ length: nC }, (_, i) => (perHead ? `H${i}` : posName(i)));
    return heatGrid({
      title: `${s.target}: layer × ${perHead ? "head (all positions)" : "position"}`, rows: s.hooks.length === nL ? s.hooks : Array.from({ length: nL }, (_, l) => `layer ${l}`), cols, values: score, scale: 1,
      testid: `patch-${s.target}`,
      tipOf: (r, k) => `${s.hooks[r] ?? `layer ${r}`}, ${perHead ? `head ${k}` : `position ${k} “${vis(p.clean.token_text[k])}”${differs[k] ? ` (corrupted: “${vis(p.corrupt.token_text[k])}”)` : ""}`}: score ${p4(score[r * nC + k])}, metric ${p4(metric[r * nC + k])}`,
      csvHead: ["target", "layer", perHead ? "head" : "position", "score", "metric"], csvRow: (r, k) => [s.target, r, k, score[r * nC + k], metric[r * nC + k]],
    }, "score: 0 = the corrupted run's metric, 1 = the clean run's (red restores, blue moves away)");
  });
  return panel(`Activation patching (${p.mode}): ${p.metric}`, "patch",
    el("p", { "data-testid": "patch-summary" }, `clean “${p.clean.text}” metric ${p4(p.clean.metric)}; corrupted “${p.corrupt.text}” metric ${p4(p.corrupt.metric)}. `,
      "score = (metric − corrupted) / (clean − corrupted); the metric is ", p.metric, ". Positions whose tokens differ are marked *."), ...grids);
}

function causalView(c: CausalJson): HTMLElement {
  const [a, b] = c.corrupted_positions;
  const grids = c.maps.map(m => {
    if (!m.effect || !m.restored) return absent(`${m.kind}: values are in .npy files (run with --json for them inline)`);
    const [nP, nL] = m.shape, effect = m.effect, restored = m.restored;
    const scale = Math.max(1e-12, ...effect.map(Math.abs));
    return heatGrid({
      title: `${m.kind} (${m.hook}): position × layer`, rows: Array.from({ length: nP }, (_, i) => `${i >= a && i <= b ? "*" : ""}${c.token_text[i] ?? i}`),
      cols: Array.from({ length: nL }, (_, l) => `${l}`), values: effect, scale, testid: `causal-${m.kind}`,
      tipOf: (r, k) => `position ${r} “${vis(c.token_text[r])}”, layer ${k}: indirect effect ${p4(effect[r * nL + k])}, metric with the state restored ${p4(restored[r * nL + k])}`,
      csvHead: ["kind", "position", "layer", "indirect_effect", "restored_metric"], csvRow: (r, k) => [m.kind, r, k, effect[r * nL + k], restored[r * nL + k]],
    }, `indirect effect in the metric's units (${c.metric}), full colour at ±${p4(scale)}`);
  });
  return panel(`Causal tracing: ${c.metric}`, "causal",
    el("p", { "data-testid": "causal-summary" }, `clean metric ${p4(c.clean_metric)}, corrupted ${p4(c.corrupted_metric)}; corrupted positions ${a}–${b} (marked *). `,
      "Indirect effect = mean over the noise draws of the metric with one state restored, minus the corrupted metric."), ...grids);
}

// The view of a result file, or a line saying what it is not.
export function resultView(j: unknown): HTMLElement {
  const o = j as { sweeps?: unknown; maps?: unknown };
  if (o && Array.isArray(o.sweeps)) return patchView(j as PatchJson);
  if (o && Array.isArray(o.maps)) return causalView(j as CausalJson);
  return panel("Result", "result-error", absent("not a tokenprobe patch --json or causal-trace --json result"));
}
