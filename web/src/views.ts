// The views of one chosen token. Each returns a panel element with a data-testid; the
// numbers they print come straight from the trace (steps.jsonl, explain, tensors) or the
// lens computed from it, formatted with p4 (probabilities) and f3 (logits).
import { absent, button, csv, download, el, f3, heat, legend, p4, panel, short, svg, vis } from "./dom";
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
    svg("text", { x: pad, y: 10, "font-size": 10, fill: "#555" }, `P(“${vis(token)}”), probability under the logit lens`),
    svg("polyline", { points: pts.map((p, i) => `${x(i)},${y(p.prob)}`).join(" "), fill: "none", stroke: "#2563eb", "stroke-width": 2 }),
    ...pts.map((p, i) => svg("circle", { cx: x(i), cy: y(p.prob), r: 3, fill: "#2563eb" }, svg("title", {}, `${p.label}: ${p4(p.prob)}`))),
    ...pts.map((p, i) => svg("text", { x: x(i), y: H - 4, "font-size": 10, "text-anchor": "middle" }, p.label)),
    svg("text", { x: W - pad, y: H - 16, "font-size": 10, fill: "#555", "text-anchor": "end" }, "layer →"));
  const rows = pts.map(p => el("tr", { "data-layer": p.label }, el("td", {}, p.label), el("td", { class: "num" }, p4(p.prob)), el("td", { class: "num" }, p.rank === null ? "—" : String(p.rank)), el("td", { class: "tok" }, vis(p.top)), el("td", { class: "num" }, p4(p.topProb))));
  return panel(`Trajectory of “${vis(token)}”: embedding → layers → logits`, "trajectory", chart,
    el("p", {}, "final probability (model output) ", el("b", { "data-testid": "trajectory-final" }, p4(finalProb ?? pts[pts.length - 1].prob))),
    el("table", {}, el("tr", {}, el("th", {}, "layer"), el("th", {}, "P(token), probability"), el("th", {}, "rank (0 = top)"), el("th", {}, "top-1 token"), el("th", {}, "P(top-1), probability")), ...rows));
}

// Cell width of the lens heatmap in px, kept across selections (the zoom buttons set it).
let lensCell = 0;
const LENS_MAX_W = 32000;  // a canvas wider than this fails in Chromium

// The lens heatmap: layers (rows) × positions (columns), each column labelled with the input
// token at that position; colour is a probability (top-1's or the actual next token's).
export function lensView(lens: Lens | string, pos: number, tokens: string[], onPick: (pos: number) => void): HTMLElement {
  if (typeof lens === "string") return panel("Logit lens", "lens", absent(lens));
  const nL = lens.layers.length, nP = lens.positions.length;
  const fit = Math.floor(880 / Math.max(1, nP)), maxCw = Math.max(2, Math.floor(LENS_MAX_W / Math.max(1, nP)));
  if (!lensCell) lensCell = Math.max(12, Math.min(28, fit));
  const wrap = el("div", { class: "scroll", "data-testid": "lens-scroll" });
  const tip = el("div", { class: "tip", "data-testid": "lens-tip" }, "hover a cell: layer, position, input token, top-1 token and probabilities");
  const mode = el("select", { "data-testid": "lens-mode" }, el("option", { value: "top" }, "top-1 probability"), el("option", { value: "next" }, "P(actual next token)"));
  const zoomLabel = el("span", { class: "num", "data-testid": "lens-zoom" });
  const col = lens.positions.indexOf(pos);
  const left = 48, top = 64, ch = 18;
  let canvas: HTMLCanvasElement, cw = 0;
  const value = (l: number, c: number) => mode.value === "next" ? lens.next_prob[l][c] : lens.top_prob[l][c];
  const draw = () => {
    cw = Math.max(2, Math.min(maxCw, lensCell));
    zoomLabel.textContent = `${cw} px/position`;
    canvas = el("canvas", { width: left + nP * cw + 2, height: top + nL * ch + 4, "data-testid": "lens-canvas", "data-left": left, "data-top": top, "data-cw": cw, "data-ch": ch, "data-labels": cw >= 10 ? "tokens" : "none" });
    const g = canvas.getContext("2d")!;
    g.font = "11px sans-serif";
    g.fillStyle = "#333";
    g.fillText("layer", 2, top - 4);
    for (let l = 0; l < nL; l++) {
      g.fillStyle = "#333";
      g.fillText(lens.layers[l], 2, top + l * ch + 13);
      for (let c = 0; c < nP; c++) {
        const v = value(l, c);
        g.fillStyle = v === null ? "#eee" : heat(v);
        g.fillRect(left + c * cw, top + l * ch, cw - (cw > 4 ? 1 : 0), ch - 1);
      }
    }
    // x labels: the input token at each position, drawn upwards when a column can hold one
    g.font = "10px ui-monospace, monospace";
    g.fillStyle = "#333";
    if (cw >= 10) for (let c = 0; c < nP; c++) {
      g.save();
      g.translate(left + c * cw + cw / 2 + 3, top - 3);
      g.rotate(-Math.PI / 2);
      g.fillText(short(tokens[lens.positions[c]]), 0, 0);
      g.restore();
    }
    else g.fillText("positions (zoom in for token labels)", left, top - 4);
    if (col >= 0) { g.strokeStyle = "#dc2626"; g.lineWidth = 2; g.strokeRect(left + col * cw, top + 1, cw, nL * ch); }
    const cellAt = (ev: MouseEvent) => {
      const r = canvas.getBoundingClientRect();
      const c = Math.floor((ev.clientX - r.left - left) / cw), l = Math.floor((ev.clientY - r.top - top) / ch);
      return c >= 0 && c < nP && l >= 0 && l < nL ? { c, l } : null;
    };
    canvas.addEventListener("mousemove", ev => {
      const h = cellAt(ev);
      if (!h) return;
      const p = lens.positions[h.c], nx = lens.next_id[h.c];
      tip.textContent = `layer ${lens.layers[h.l]}, position ${p} (input “${vis(tokens[p])}”): top-1 “${vis(lens.texts[String(lens.top_id[h.l][h.c])])}” probability ${p4(lens.top_prob[h.l][h.c])}` +
        (nx === null ? "" : `; actual next token “${vis(lens.texts[String(nx)])}” probability ${p4(lens.next_prob[h.l][h.c])}, rank ${lens.next_rank[h.l][h.c]}`);
    });
    canvas.addEventListener("click", ev => { const h = cellAt(ev); if (h) onPick(lens.positions[h.c]); });
    wrap.replaceChildren(canvas);
    if (col >= 0) requestAnimationFrame(() => { wrap.scrollLeft = Math.max(0, left + col * cw - wrap.clientWidth / 2); });
  };
  mode.addEventListener("change", draw);
  draw();
  const zoom = (f: number) => () => { lensCell = Math.max(2, Math.min(maxCw, Math.round(cw * f))); draw(); };
  const toCsv = () => {
    const rows: (string | number | null)[][] = [["layer", "position", "input_token", "top1_id", "top1_token", "top1_prob", "next_id", "next_token", "next_prob", "next_rank"]];
    for (let l = 0; l < nL; l++) for (let c = 0; c < nP; c++) {
      const p = lens.positions[c], nx = lens.next_id[c];
      rows.push([lens.layers[l], p, tokens[p] ?? "", lens.top_id[l][c], lens.texts[String(lens.top_id[l][c])] ?? "", lens.top_prob[l][c], nx, nx === null ? "" : lens.texts[String(nx)] ?? "", lens.next_prob[l][c], lens.next_rank[l][c]]);
    }
    download("logit-lens.csv", new Blob([csv(rows)], { type: "text/csv" }));
  };
  const colList = col < 0 ? absent("position not in the heatmap") : el("table", { "data-testid": "lens-column" },
    el("tr", {}, el("th", {}, "layer"), el("th", {}, "top-1 token"), el("th", {}, "P(top-1), probability")),
    ...lens.layers.map((L, l) => el("tr", {}, el("td", {}, L), el("td", { class: "tok" }, vis(lens.texts[String(lens.top_id[l][col])])), el("td", { class: "num" }, p4(lens.top_prob[l][col])))));
  return panel(`Logit lens: layers × positions (position ${pos} outlined; each column reads the residual stream at that position, predicting the next token)`, "lens",
    el("div", { class: "tools" }, "colour ", mode, " ", legend(heat, "0", "1", "probability", "lens-legend"), " zoom ",
      button("−", "lens-zoom-out", zoom(0.5), "narrower columns"), button("+", "lens-zoom-in", zoom(2), "wider columns (token labels from 10 px)"),
      button("fit", "lens-zoom-fit", () => { lensCell = Math.max(2, fit); draw(); }, "fit the width"), zoomLabel, " ",
      button("CSV", "lens-csv", toCsv, "every cell: top-1 and next-token probability and rank"),
      button("PNG", "lens-png", () => download("logit-lens.png", canvas.toDataURL("image/png")), "the heatmap as drawn")),
    wrap, tip, el("h3", {}, `column of position ${pos}`), colList);
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
    const cell = el("td", { class: "head", "data-layer": layer, "data-head": r.heads[h], title: `L${layer}H${r.heads[h]}: top source “${vis(tokens[best])}” at position ${best}, attention weight ${p4(vals[best])}; click for the full pattern` }, c,
      el("div", { class: "src" }, el("span", { class: "tok" }, vis(tokens[best])), ` @${best} w=`, el("span", { class: "num", "data-testid": "attn-top" }, p4(vals[best]))));
    cell.addEventListener("click", () => onHead(layer, r.heads[h]));
    return cell;
  })));
  return panel(`Attention from position ${pos}: head grid`, "attention",
    el("p", { class: "note" }, "Each strip: the attention weight (0–1, a softmax row summing to 1) from position ", String(pos),
      " onto every earlier token, left to right; below it the top source token, its position and weight. ", legend(heat, "0", "1", "attention weight", "attn-legend")),
    el("div", { class: "scroll" }, el("table", { class: "grid" }, head, ...body)), el("div", { id: "attn-big", "data-testid": "attention-head" }));
}

// One head's whole pattern: queries (rows, labelled with their tokens) × keys (columns).
export function attentionHeadView(a: AttnHead | null, layer: number, head: number, pos: number, tokens: string[], npyUrl: string | null): HTMLElement {
  if (!a) return absent(`L${layer}H${head}: not in this trace`);
  const cell = Math.max(2, Math.min(18, Math.floor(560 / Math.max(a.rows, a.n_k)))), labels = cell >= 9;
  const left = labels ? 64 : 4, top = labels ? 64 : 4;
  const c = el("canvas", { width: left + a.n_k * cell + 2, height: top + a.rows * cell + 2, "data-testid": "attn-head-canvas", "data-left": left, "data-top": top, "data-cw": cell, "data-ch": cell, "data-labels": labels ? "tokens" : "none" });
  const g = c.getContext("2d")!;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, c.width, c.height);
  for (let q = 0; q < a.rows; q++) for (let k = 0; k < a.n_k; k++) {
    const v = a.data[q * a.n_k + k];
    if (v > 0.004) { g.fillStyle = heat(v); g.fillRect(left + k * cell, top + q * cell, cell, cell); }
  }
  g.strokeStyle = "#e5e7eb";
  g.strokeRect(left, top, a.n_k * cell, a.rows * cell);
  if (labels) {
    g.font = "10px ui-monospace, monospace";
    g.fillStyle = "#333";
    for (let q = 0; q < a.rows; q++) g.fillText(short(tokens[a.positions[q]]), 2, top + q * cell + cell - 2);
    for (let k = 0; k < a.n_k; k++) {
      g.save(); g.translate(left + k * cell + cell - 2, top - 3); g.rotate(-Math.PI / 2); g.fillText(short(tokens[k]), 0, 0); g.restore();
    }
  }
  const r = a.positions.indexOf(pos);
  if (r >= 0) { g.strokeStyle = "#dc2626"; g.lineWidth = 2; g.strokeRect(left, top + r * cell, a.n_k * cell, cell); }
  const tip = el("div", { class: "tip", "data-testid": "attn-head-tip" }, "hover a cell: query token, key token, attention weight");
  c.addEventListener("mousemove", ev => {
    const b = c.getBoundingClientRect(), k = Math.floor((ev.clientX - b.left - left) / cell), q = Math.floor((ev.clientY - b.top - top) / cell);
    if (q < 0 || q >= a.rows || k < 0 || k >= a.n_k) return;
    const qp = a.positions[q];
    tip.textContent = k > qp ? `query #${qp} “${vis(tokens[qp])}” cannot attend to key #${k} (a later position)`
      : `query #${qp} “${vis(tokens[qp])}” → key #${k} “${vis(tokens[k])}”: attention weight ${p4(a.data[q * a.n_k + k])}`;
  });
  return el("div", {}, el("h3", {}, `L${layer}H${head}: pattern, queries (rows, by token) × keys (columns, by token); position ${pos} outlined `,
      button("PNG", "attn-png", () => download(`L${layer}H${head}-pattern.png`, c.toDataURL("image/png"))),
      ...(npyUrl ? [el("a", { href: npyUrl, download: `L${layer}H${head}-pattern.npy`, class: "act", "data-testid": "attn-npy", title: "float32 [1, queries, keys]" }, ".npy")] : [])),
    legend(heat, "0", "1", "attention weight (each row sums to 1)", "attn-head-legend"), el("div", { class: "scroll" }, c), tip);
}

export function funnelView(step: Step | undefined, token: string): HTMLElement {
  const lp = step?.logprobs, rec = lp?.x_tokenprobe;
  if (!rec) return panel("Sampler funnel", "funnel", absent(step ? "no sampler record in this step" : "a prompt token: given, not sampled"));
  // raw.top[i] and top_logprobs[i] are the same token (sampling/record.cpp): text by id.
  const text = new Map<number, string>();
  rec.raw.top.forEach((t, i) => { if (lp.top_logprobs?.[i]) text.set(t.id, lp.top_logprobs[i].token); });
  if (step) text.set(rec.chosen.id, token);
  const tok = (id: number) => el("span", { class: "tok", title: `token id ${id}` }, text.has(id) ? `“${vis(text.get(id))}”` : `#${id}`);
  const maxN = Math.max(1, rec.raw.n_vocab);
  const bar = (label: string, n: number, ...extra: (Node | string)[]) => el("div", { class: "fbar", "data-stage": label }, el("span", { class: "flabel" }, label),
    el("span", { class: "fill", style: `width:${Math.max(2, (Math.log(n + 1) / Math.log(maxN + 1)) * 260)}px` }), el("span", { class: "num", title: "candidate tokens left" }, `${n}`), " candidates ", ...extra);
  const stages = rec.stages.filter(s => s.active).map(s => bar(s.name, s.n_kept, s.mass_removed > 0
    ? `(removed probability mass ${p4(s.mass_removed)}${s.threshold !== null ? `; cut-off ${f3(s.threshold)}${s.threshold_unit ? ` (${s.threshold_unit})` : ""}` : ""})` : "(nothing cut)"));
  const top = rec.raw.top.slice(0, 5).map(t => el("tr", { "data-id": t.id }, el("td", {}, tok(t.id)), el("td", { class: "num" }, p4(t.p)), el("td", { class: "num" }, f3(t.logit))));
  const ru = rec.flip.runner_up;
  return panel(`Sampler funnel for “${vis(token)}”`, "funnel", bar("vocabulary", rec.raw.n_vocab, `(entropy ${f3(rec.raw.entropy)} nats)`), ...stages,
    el("p", { "data-testid": "funnel-draw" }, rec.draw.greedy ? "greedy: the top token is taken, no random draw"
      : `random draw u = ${p4(rec.draw.u)} (uniform in [0, 1)) fell in the chosen token's cumulative-probability interval [${p4(rec.draw.interval[0])}, ${p4(rec.draw.interval[1])})`),
    el("p", {}, "chosen: probability under the model (temperature 1) ", el("b", { "data-testid": "funnel-p-raw" }, p4(rec.chosen.p_raw)),
      ", probability after the sampler ", el("b", { "data-testid": "funnel-p-final" }, p4(rec.chosen.p_final)),
      `, rank ${rec.chosen.raw_rank} by raw logit (0 = top), raw logit ${f3(rec.chosen.raw_logit)}`,
      ...(rec.flip.logit_gap !== null && ru ? [", lead over runner-up ", tok(ru.id), ` ${f3(rec.flip.logit_gap)} logits`] : [])),
    el("h3", {}, "raw top 5 (model's distribution before the sampler)"),
    el("table", { class: "toplist", "data-testid": "funnel-top" }, el("tr", {}, el("th", {}, "token"), el("th", {}, "probability"), el("th", {}, "logit")), ...top));
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
    el("p", {}, "total logit of “", vis(ex?.chosen?.text), "” ", el("b", { "data-testid": "dla-total" }, f3(d.total_logit)), ` (logits); lead over the runner-up “${vis(ex?.runner_up?.text)}” `, el("b", {}, f3(d.total_diff)), " logits"),
    el("p", { class: "note" }, "Each part's direct contribution to the final logit (bars, in logits; green raises, red lowers). ",
      `“diff” is the part's contribution to the logit of “${vis(ex?.chosen?.text)}” minus its contribution to the logit of “${vis(ex?.runner_up?.text)}”.`),
    el("table", {}, el("tr", {}, el("th", {}, "part"), el("th", { title: "direct contribution to the chosen token's logit" }, "logit (chosen)"), el("th", { "data-testid": "dla-diff-head", title: "contribution to the chosen token's logit minus to the runner-up's" }, `diff vs “${vis(ex?.runner_up?.text)}” (logits)`)),
      ...shown.map(p => el("tr", { "data-part": p.name }, el("td", {}, p.name), el("td", { class: "num" }, f3(p.logit)), el("td", { class: "num" }, f3(p.diff))))));
}

export function sourcesView(ex: Explain | undefined): HTMLElement {
  const s = ex?.attention_sources;
  if (!s) return panel("Top source tokens", "sources", absent("not in this trace (run with “explain”, or trace with --explain, to get attention sources)"));
  const wkv = s.measure === "wkv_readout";
  const unit = wkv ? "share of the readout" : "weight";
  const list = (g: SourceGroup) => el("ol", {}, ...g.sources.slice(0, 5).map(x => el("li", { title: `position ${x.position}, ${unit} ${p4(x.weight)}` }, el("span", { class: "tok" }, vis(x.text)), ` @${x.position} ${wkv ? "share" : "w"}=`, el("span", { class: "num" }, p4(x.weight)))),
    ...(g.initial_state_weight === undefined ? [] : [el("li", { class: "state0" }, "initial state ", el("span", { class: "num" }, p4(g.initial_state_weight)))]));
  return panel(wkv ? "Top source tokens of the WKV readout" : "Top source tokens", "sources",
    ...(s.note ? [el("p", { class: "note", "data-testid": "sources-note" }, s.note)] : []),
    el("p", { class: "note", "data-testid": "sources-unit" }, wkv ? "Numbers: each token's signed share of the WKV readout (the initial state's share listed last); @N is the token's position."
      : `Numbers: w = each source token's weight${s.note ? " as the note above defines it" : ""}; @N is the source's position.`),
    el("h3", {}, wkv ? "by head (heads of the layers whose time mix has the largest |DLA|)" : "by head (heads with the largest |DLA|)"),
    ...s.heads.map(h => el("div", { class: "srcgroup" }, el("b", {}, `L${h.layer}H${h.head}`), list(h))),
    el("h3", {}, "by layer"), ...s.layers.map(l => el("div", { class: "srcgroup" }, el("b", {}, `layer ${l.layer}`), list(l))));
}

// A mixture of experts: which experts each layer routed the deciding position to, with what
// weight, and what each one's weighted output adds to the chosen token's logit (null for a
// dense model: the panel is not shown).
export function expertsView(ex: Explain | undefined): HTMLElement | null {
  const layers = ex?.experts;
  if (!layers?.length) return null;
  const chosen = vis(ex?.chosen?.text), runner = vis(ex?.runner_up?.text);
  const maxAbs = Math.max(1e-9, ...layers.flatMap(l => l.chosen.map(e => Math.abs(e.dla_logit))));
  const bar = (v: number, scale: number, colour: string) =>
    el("span", { class: "bar", style: `display:inline-block;height:10px;width:${Math.round(60 * Math.min(1, Math.abs(v) / scale))}px;background:${colour}` });
  return panel(`Experts of the deciding position (routing and each expert's DLA on “${chosen}”)`, "experts",
    el("p", { class: "note", "data-testid": "experts-note" },
      "Per layer, the experts the router sent this position to, most probable first. weight: the expert's share of the layer's MLP output ",
      "(the router's probability after top-k, normalised where the model normalises); DLA: the expert's weighted output through the final norm ",
      `(its scale frozen) and the unembedding, in logits of “${chosen}”; diff: the same minus its logit of “${runner}”.`),
    el("table", {}, el("tr", {}, el("th", {}, "layer"), el("th", {}, "expert"), el("th", { title: "the expert's weight in the layer's mixture (0-1)" }, "weight (0-1)"),
      el("th", { title: "direct contribution to the chosen token's logit" }, `DLA on “${chosen}” (logits)`),
      el("th", { title: "contribution to the chosen token's logit minus to the runner-up's" }, `diff vs “${runner}” (logits)`)),
      ...layers.flatMap(l => l.chosen.map((e, i) => el("tr", { "data-expert": `${l.layer}:${e.expert}` },
        el("td", {}, i === 0 ? String(l.layer) : ""), el("td", {}, `E${e.expert}`),
        el("td", { class: "num" }, bar(e.weight, 1, "#60a5fa"), " ", p4(e.weight)),
        el("td", { class: "num" }, bar(e.dla_logit, maxAbs, e.dla_logit >= 0 ? "#16a34a" : "#dc2626"), " ", f3(e.dla_logit)),
        el("td", { class: "num" }, f3(e.dla_diff)))))));
}
