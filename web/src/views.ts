// The views of one chosen token. Each returns a panel element with a data-testid; the
// numbers they print come straight from the trace (steps.jsonl, explain, tensors) or the
// lens computed from it, formatted with p4 (probabilities) and f3 (logits).
import { absent, el, f3, heat, p4, panel, svg, vis } from "./dom";
import type { AttnHead, AttnRow, Explain, Lens, SourceGroup, Step } from "./data";

export interface TrajPoint { label: string; prob: number; rank: number | null; top: string; topProb: number }

export function trajectoryPoints(lens: Lens | string, pos: number, explain?: Explain): TrajPoint[] | string {
  if (explain?.logit_lens?.points?.length)
    return explain.logit_lens.points.map(p => ({ label: p.where === "embed" ? "embed" : `${p.layer}${p.where === "mid" ? " mid" : ""}`, prob: p.chosen_prob, rank: p.chosen_rank, top: p.top?.[0]?.text ?? "", topProb: p.top?.[0]?.prob ?? 0 }));
  if (typeof lens === "string") return lens;
  const c = lens.positions.indexOf(pos);
  if (c < 0) return "this position's residual stream is not in the trace";
  return lens.layers.map((l, i) => ({ label: l, prob: lens.next_prob[i][c] ?? 0, rank: lens.next_rank[i][c], top: lens.texts[String(lens.top_id[i][c])] ?? String(lens.top_id[i][c]), topProb: lens.top_prob[i][c] }));
}

export function trajectoryView(pts: TrajPoint[] | string, token: string, finalProb: number | null): HTMLElement {
  if (typeof pts === "string") return panel("Trajectory", "trajectory", absent(pts));
  const W = 460, H = 150, pad = 30, n = pts.length;
  const x = (i: number) => pad + (n > 1 ? (i * (W - 2 * pad)) / (n - 1) : 0), y = (p: number) => H - pad + 10 - p * (H - pad - 10);
  const chart = svg("svg", { width: W, height: H, class: "chart" },
    svg("line", { x1: pad, y1: y(0), x2: W - pad, y2: y(0), stroke: "#999" }),
    svg("text", { x: 2, y: y(1) + 4, "font-size": 10 }, "1"), svg("text", { x: 2, y: y(0) + 4, "font-size": 10 }, "0"),
    svg("polyline", { points: pts.map((p, i) => `${x(i)},${y(p.prob)}`).join(" "), fill: "none", stroke: "#2563eb", "stroke-width": 2 }),
    ...pts.map((p, i) => svg("circle", { cx: x(i), cy: y(p.prob), r: 3, fill: "#2563eb" }, svg("title", {}, `${p.label}: ${p4(p.prob)}`))),
    ...pts.map((p, i) => svg("text", { x: x(i), y: H - 4, "font-size": 10, "text-anchor": "middle" }, p.label)));
  const rows = pts.map(p => el("tr", { "data-layer": p.label }, el("td", {}, p.label), el("td", { class: "num" }, p4(p.prob)), el("td", { class: "num" }, p.rank === null ? "—" : String(p.rank)), el("td", { class: "tok" }, vis(p.top)), el("td", { class: "num" }, p4(p.topProb))));
  return panel(`Trajectory of “${vis(token)}”: embedding → layers → logits`, "trajectory", chart,
    el("p", {}, "final probability ", el("b", { "data-testid": "trajectory-final" }, p4(finalProb ?? pts[pts.length - 1].prob))),
    el("table", {}, el("tr", {}, el("th", {}, "layer"), el("th", {}, "P(token)"), el("th", {}, "rank"), el("th", {}, "top-1"), el("th", {}, "P(top-1)")), ...rows));
}

export function lensView(lens: Lens | string, pos: number, onPick: (pos: number) => void): HTMLElement {
  if (typeof lens === "string") return panel("Logit lens", "lens", absent(lens));
  const nL = lens.layers.length, nP = lens.positions.length;
  const cw = Math.max(2, Math.min(28, Math.floor(880 / Math.max(1, nP)))), ch = 18, left = 44;
  const canvas = el("canvas", { width: left + nP * cw, height: nL * ch + 4, "data-testid": "lens-canvas" });
  const g = canvas.getContext("2d")!;
  g.font = "11px sans-serif";
  for (let l = 0; l < nL; l++) {
    g.fillStyle = "#333";
    g.fillText(lens.layers[l], 2, l * ch + 13);
    for (let c = 0; c < nP; c++) {
      g.fillStyle = heat(lens.top_prob[l][c]);
      g.fillRect(left + c * cw, l * ch, cw - (cw > 4 ? 1 : 0), ch - 1);
    }
  }
  const col = lens.positions.indexOf(pos);
  if (col >= 0) { g.strokeStyle = "#dc2626"; g.lineWidth = 2; g.strokeRect(left + col * cw, 1, cw, nL * ch); }
  const tip = el("div", { class: "tip", "data-testid": "lens-tip" }, "hover a cell");
  const cellAt = (ev: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    const c = Math.floor((ev.clientX - r.left - left) / cw), l = Math.floor((ev.clientY - r.top) / ch);
    return c >= 0 && c < nP && l >= 0 && l < nL ? { c, l } : null;
  };
  canvas.addEventListener("mousemove", ev => {
    const h = cellAt(ev);
    if (h) tip.textContent = `layer ${lens.layers[h.l]}, position ${lens.positions[h.c]}: top-1 “${vis(lens.texts[String(lens.top_id[h.l][h.c])])}” ${p4(lens.top_prob[h.l][h.c])}`;
  });
  canvas.addEventListener("click", ev => { const h = cellAt(ev); if (h) onPick(lens.positions[h.c]); });
  const colList = col < 0 ? absent("position not in the heatmap") : el("table", { "data-testid": "lens-column" },
    el("tr", {}, el("th", {}, "layer"), el("th", {}, "top-1"), el("th", {}, "P")),
    ...lens.layers.map((L, l) => el("tr", {}, el("td", {}, L), el("td", { class: "tok" }, vis(lens.texts[String(lens.top_id[l][col])])), el("td", { class: "num" }, p4(lens.top_prob[l][col])))));
  return panel(`Logit lens: top-1 probability, layers × positions (position ${pos} outlined)`, "lens", el("div", { class: "scroll" }, canvas), tip, colList);
}

export function attentionView(rows: (AttnRow | null)[], tokens: string[], pos: number, onHead: (layer: number, head: number) => void): HTMLElement {
  if (rows.every(r => r === null)) return panel("Attention", "attention", absent("no attention pattern for this position in the trace"));
  const nHeads = Math.max(...rows.map(r => r?.heads.length ?? 0));
  const head = el("tr", {}, el("th", {}, "layer"), ...Array.from({ length: nHeads }, (_, h) => el("th", {}, `head ${rows.find(r => r)?.heads[h] ?? h}`)));
  const body = rows.map((r, layer) => el("tr", {}, el("td", {}, String(layer)), ...Array.from({ length: nHeads }, (_, h) => {
    if (!r || h >= r.heads.length) return el("td", {}, "—");
    const vals = Array.from(r.data.slice(h * r.n_k, h * r.n_k + pos + 1));
    let best = 0;
    vals.forEach((v, k) => { if (v > vals[best]) best = k; });
    const c = el("canvas", { width: 120, height: 12 });
    const g = c.getContext("2d")!, w = 120 / Math.max(1, vals.length);
    vals.forEach((v, k) => { g.fillStyle = heat(v); g.fillRect(k * w, 0, Math.max(1, w), 12); });
    const cell = el("td", { class: "head", "data-layer": layer, "data-head": r.heads[h], title: `L${layer}H${r.heads[h]}: click for the full pattern` }, c,
      el("div", { class: "src" }, el("span", { class: "tok" }, vis(tokens[best])), " ", el("span", { class: "num", "data-testid": "attn-top" }, p4(vals[best]))));
    cell.addEventListener("click", () => onHead(layer, r.heads[h]));
    return cell;
  })));
  return panel(`Attention from position ${pos}: head grid (each strip: weight on every earlier token; top source below)`, "attention",
    el("div", { class: "scroll" }, el("table", { class: "grid" }, head, ...body)), el("div", { id: "attn-big", "data-testid": "attention-head" }));
}

export function attentionHeadView(a: AttnHead | null, layer: number, head: number, pos: number): HTMLElement {
  if (!a) return absent(`L${layer}H${head}: not in this trace`);
  const size = Math.min(560, Math.max(240, Math.max(a.rows, a.n_k) * 8)), sx = size / a.n_k, sy = size / a.rows;
  const c = el("canvas", { width: size, height: size, "data-testid": "attn-head-canvas" });
  const g = c.getContext("2d")!;
  for (let q = 0; q < a.rows; q++) for (let k = 0; k < a.n_k; k++) {
    const v = a.data[q * a.n_k + k];
    if (v > 0.004) { g.fillStyle = heat(v); g.fillRect(k * sx, q * sy, Math.max(1, sx), Math.max(1, sy)); }
  }
  const r = a.positions.indexOf(pos);
  if (r >= 0) { g.strokeStyle = "#dc2626"; g.strokeRect(0, r * sy, size, Math.max(2, sy)); }
  return el("div", {}, el("h3", {}, `L${layer}H${head}: pattern, queries (rows) × keys (columns); position ${pos} outlined`), c);
}

export function funnelView(step: Step | undefined, token: string): HTMLElement {
  const rec = step?.logprobs?.x_tokenprobe;
  if (!rec) return panel("Sampler funnel", "funnel", absent(step ? "no sampler record in this step" : "a prompt token: given, not sampled"));
  const maxN = Math.max(1, rec.raw.n_vocab);
  const bar = (label: string, n: number, extra: string) => el("div", { class: "fbar" }, el("span", { class: "flabel" }, label),
    el("span", { class: "fill", style: `width:${Math.max(2, (Math.log(n + 1) / Math.log(maxN + 1)) * 300)}px` }), el("span", { class: "num" }, `${n}`), " ", extra);
  const stages = rec.stages.filter(s => s.active).map(s => bar(s.name, s.n_kept, s.mass_removed > 0 ? `removed mass ${p4(s.mass_removed)}${s.threshold !== null ? `, cut at ${f3(s.threshold)} ${s.threshold_unit ?? ""}` : ""}` : "nothing cut"));
  const top = rec.raw.top.slice(0, 5).map(t => el("li", {}, `#${t.id} p=${p4(t.p)} logit ${f3(t.logit)}`));
  return panel(`Sampler funnel for “${vis(token)}”`, "funnel", bar("vocabulary", rec.raw.n_vocab, ""), ...stages,
    el("p", { "data-testid": "funnel-draw" }, rec.draw.greedy ? "greedy: the top token is taken, no random draw"
      : `draw u = ${p4(rec.draw.u)}, interval [${p4(rec.draw.interval[0])}, ${p4(rec.draw.interval[1])})`),
    el("p", {}, "chosen: p(model) ", el("b", { "data-testid": "funnel-p-raw" }, p4(rec.chosen.p_raw)), ", p(after sampler) ", el("b", { "data-testid": "funnel-p-final" }, p4(rec.chosen.p_final)),
      `, raw rank ${rec.chosen.raw_rank}, logit ${f3(rec.chosen.raw_logit)}`,
      rec.flip.logit_gap !== null ? `, lead over runner-up ${f3(rec.flip.logit_gap)}` : ""),
    el("ol", { class: "toplist" }, ...top));
}

export function dlaView(ex: Explain | undefined): HTMLElement {
  const d = ex?.dla;
  if (!d) return panel("Direct logit attribution", "dla", absent("not in this trace (run with “explain”, or trace with --explain, to get DLA)"));
  const parts = [...d.parts].sort((a, b) => Math.abs(b.logit) - Math.abs(a.logit));
  const shown = parts.slice(0, 16), rest = parts.slice(16).reduce((s, p) => s + p.logit, 0);
  const items = [...shown.map(p => ({ name: p.name, v: p.logit })), ...(parts.length > 16 ? [{ name: `${parts.length - 16} others`, v: rest }] : [])];
  let acc = 0, lo = 0, hi = 0;
  const spans = items.map(it => { const a = acc; acc += it.v; lo = Math.min(lo, a, acc); hi = Math.max(hi, a, acc); return { ...it, a, b: acc }; });
  const W = 460, rowH = 16, left = 90, sc = (W - left - 60) / Math.max(1e-9, hi - lo), X = (v: number) => left + (v - lo) * sc;
  const chart = svg("svg", { width: W, height: (spans.length + 1) * rowH + 6, class: "chart" },
    svg("line", { x1: X(0), y1: 0, x2: X(0), y2: (spans.length + 1) * rowH, stroke: "#999" }),
    ...spans.flatMap((s, i) => [
      svg("text", { x: 2, y: i * rowH + 12, "font-size": 11 }, s.name),
      svg("rect", { x: Math.min(X(s.a), X(s.b)), y: i * rowH + 2, width: Math.max(1, Math.abs(X(s.b) - X(s.a))), height: rowH - 4, fill: s.v >= 0 ? "#16a34a" : "#dc2626" }),
      svg("text", { x: Math.max(X(s.a), X(s.b)) + 3, y: i * rowH + 12, "font-size": 10 }, f3(s.v))]),
    svg("text", { x: 2, y: spans.length * rowH + 14, "font-size": 11, "font-weight": "bold" }, "total"),
    svg("rect", { x: Math.min(X(0), X(acc)), y: spans.length * rowH + 2, width: Math.max(1, Math.abs(X(acc) - X(0))), height: rowH - 4, fill: "#2563eb" }));
  return panel(`Direct logit attribution of “${vis(ex?.chosen?.text)}” (waterfall, largest parts first)`, "dla", chart,
    el("p", {}, "total logit ", el("b", { "data-testid": "dla-total" }, f3(d.total_logit)), `, lead over “${vis(ex?.runner_up?.text)}” `, el("b", {}, f3(d.total_diff))),
    el("table", {}, el("tr", {}, el("th", {}, "part"), el("th", {}, "logit"), el("th", {}, "diff")),
      ...shown.map(p => el("tr", { "data-part": p.name }, el("td", {}, p.name), el("td", { class: "num" }, f3(p.logit)), el("td", { class: "num" }, f3(p.diff))))));
}

export function sourcesView(ex: Explain | undefined): HTMLElement {
  const s = ex?.attention_sources;
  if (!s) return panel("Top source tokens", "sources", absent("not in this trace (run with “explain”, or trace with --explain, to get attention sources)"));
  const wkv = s.measure === "wkv_readout";
  const list = (g: SourceGroup) => el("ol", {}, ...g.sources.slice(0, 5).map(x => el("li", {}, el("span", { class: "tok" }, vis(x.text)), ` @${x.position} `, el("span", { class: "num" }, p4(x.weight)))),
    ...(g.initial_state_weight === undefined ? [] : [el("li", { class: "state0" }, "initial state ", el("span", { class: "num" }, p4(g.initial_state_weight)))]));
  return panel(wkv ? "Top source tokens of the WKV readout" : "Top source tokens", "sources",
    ...(s.note ? [el("p", { class: "note", "data-testid": "sources-note" }, s.note)] : []),
    el("h3", {}, wkv ? "by head (heads of the layers whose time mix has the largest |DLA|)" : "by head (heads with the largest |DLA|)"),
    ...s.heads.map(h => el("div", { class: "srcgroup" }, el("b", {}, `L${h.layer}H${h.head}`), list(h))),
    el("h3", {}, "by layer"), ...s.layers.map(l => el("div", { class: "srcgroup" }, el("b", {}, `layer ${l.layer}`), list(l))));
}
