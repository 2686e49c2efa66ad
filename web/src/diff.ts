// The diff view: two saved traces side by side, compared by `tokenprobe diff`'s analysis
// (GET /api/diff): the aligned tokens, the first divergence, and per layer the cosine,
// relative L2 and the KL divergence of the logit lens, as a table and a layers × pairs heatmap.
import type { HookDiff, TraceDiff } from "./data";
import { absent, button, csv, download, el, f3, heat, legend, p4, panel, short, vis } from "./dom";

const mean = (v: (number | null)[]) => { const x = v.filter((a): a is number => a !== null && Number.isFinite(a)); return x.length ? x.reduce((s, a) => s + a, 0) / x.length : null; };
const max = (v: (number | null)[]) => { const x = v.filter((a): a is number => a !== null && Number.isFinite(a)); return x.length ? Math.max(...x) : null; };
const min = (v: (number | null)[]) => { const x = v.filter((a): a is number => a !== null && Number.isFinite(a)); return x.length ? Math.min(...x) : null; };

// Metrics: what each is, its unit and how it maps to a colour (0 = same, 1 = most different).
const METRICS: { [k: string]: { label: string; unit: string; of: (h: HookDiff) => (number | null)[] | undefined; colour: (v: number, top: number) => number } } = {
  kl: { label: "KL(A ‖ B) of the logit lens", unit: "nats", of: h => h.kl, colour: (v, top) => v / Math.max(1e-9, top) },
  rel_l2: { label: "relative L2 ‖a − b‖ / ‖a‖", unit: "ratio", of: h => h.rel_l2, colour: (v, top) => v / Math.max(1e-9, top) },
  cos: { label: "cosine similarity", unit: "−1…1", of: h => h.cos, colour: v => (1 - v) / 2 },
};

export function diffView(d: TraceDiff, tokenText: (id: number) => string): HTMLElement {
  const t = (id: number) => d.texts[String(id)] ?? tokenText(id);
  const al = d.alignment, fd = d.first_divergence, td = d.token_divergence;
  // Side by side: each run's tokens, marked by how they pair.
  const kindA = new Map<number, string>(), kindB = new Map<number, string>();
  al.pairs.forEach(([a, b], i) => { const k = a < al.common_prefix ? "same" : al.substituted.includes(i) ? "subst" : "match"; kindA.set(a, k); kindB.set(b, k); });
  al.only_a.forEach(a => kindA.set(a, "only")); al.only_b.forEach(b => kindB.set(b, "only"));
  const side = (name: string, ids: number[], nPrompt: number, kinds: Map<number, string>, divAt: number | null, testid: string) =>
    el("div", { class: "diffside", "data-testid": testid }, el("h3", {}, name),
      el("div", { class: "strip small" }, ...ids.map((id, p) => el("span", { class: `tok d-${kinds.get(p) ?? "only"}${p === divAt ? " div" : ""}${p >= nPrompt ? " gen" : ""}`, title: `position ${p}, id ${id}` }, vis(t(id)) || "∅"))));
  const summary = el("div", { "data-testid": "diff-summary" },
    el("p", {}, el("b", {}, "first divergence: "), fd
      ? `pair ${fd.pair} (position ${fd.pos_a} “${vis(t(d.tokens_a[fd.pos_a]))}” in A, ${fd.pos_b} in B), at ${fd.hook}: relative L2 ${f3(fd.rel_l2)} (threshold ${d.threshold})${fd.top1_differs ? ", the lens top-1 tokens differ" : ""}`
      : `none: every residual-stream hook stays within relative L2 ${d.threshold} with the same lens top-1 token`),
    el("p", {}, el("b", {}, "chosen tokens: "), td ? `first differ at step ${td.step}: “${vis(t(td.id_a))}” (A) vs “${vis(t(td.id_b))}” (B)`
      : "the generated tokens agree"),
    el("p", { class: "note" }, `${al.pairs.length} aligned pairs (common prefix ${al.common_prefix}, ${al.substituted.length} substituted), ${al.only_a.length} only in A, ${al.only_b.length} only in B.`),
    ...d.notes.map(n => el("p", { class: "note" }, n)));
  const families = [...new Set(d.hooks.map(h => h.family))];
  const fam = el("select", { "data-testid": "diff-family" }, ...families.map(f => el("option", { value: f }, f)));
  fam.value = families.includes("hook_resid_post") ? "hook_resid_post" : families[0] ?? "";
  const metric = el("select", { "data-testid": "diff-metric" }, ...Object.entries(METRICS).map(([k, m]) => el("option", { value: k }, `${m.label} (${m.unit})`)));
  const body = el("div", {});
  const tip = el("div", { class: "tip", "data-testid": "diff-tip" }, "hover a cell: layer, pair, tokens, value");
  let canvas: HTMLCanvasElement | null = null;
  const draw = () => {
    const rows = d.hooks.filter(h => h.family === fam.value);
    if (!rows.some(h => h.lens) && metric.value === "kl") metric.value = "rel_l2";
    const M = METRICS[metric.value];
    const table = el("table", { "data-testid": "diff-table" },
      el("tr", {}, el("th", {}, "layer"), el("th", {}, "hook"), el("th", {}, "mean cosine"), el("th", {}, "min cosine"), el("th", {}, "mean rel. L2 (ratio)"),
        el("th", {}, "mean KL (nats)"), el("th", {}, "max KL (nats)"), el("th", {}, "top-1 agree (fraction of pairs)")),
      ...rows.map(h => {
        const agree = h.top1_a && h.top1_b ? h.top1_a.map((x, i) => (x < 0 || h.top1_b![i] < 0 ? null : x === h.top1_b![i] ? 1 : 0)) : null;
        return el("tr", { "data-layer": h.layer }, el("td", {}, h.layer < 0 ? "—" : String(h.layer)), el("td", {}, h.hook), el("td", { class: "num" }, p4(mean(h.cos))), el("td", { class: "num" }, p4(min(h.cos))),
          el("td", { class: "num" }, p4(mean(h.rel_l2))), el("td", { class: "num" }, h.kl ? p4(mean(h.kl)) : "—"), el("td", { class: "num" }, h.kl ? p4(max(h.kl)) : "—"),
          el("td", { class: "num" }, agree ? p4(mean(agree)) : "—"));
      }));
    // Heatmap: hooks (rows) × aligned pairs (columns), labelled with A's token of each pair.
    const nP = al.pairs.length, cw = Math.max(4, Math.min(28, Math.floor(880 / Math.max(1, nP)))), ch = 16, left = 150, top = 60;
    const vals = rows.map(h => M.of(h) ?? []), top1 = max(vals.flat()) ?? 1;
    canvas = el("canvas", { width: left + nP * cw + 2, height: top + rows.length * ch + 2, "data-testid": "diff-canvas", "data-left": left, "data-top": top, "data-cw": cw, "data-ch": ch });
    const g = canvas.getContext("2d")!;
    g.font = "10px ui-monospace, monospace";
    rows.forEach((h, r) => {
      g.fillStyle = "#333"; g.fillText(short(h.hook, 24), 2, top + r * ch + 12);
      vals[r].forEach((v, c) => { g.fillStyle = v === null ? "#eee" : heat(M.colour(v, top1)); g.fillRect(left + c * cw, top + r * ch, cw - 1, ch - 1); });
    });
    if (cw >= 10) al.pairs.forEach(([a], c) => { g.save(); g.fillStyle = "#333"; g.translate(left + c * cw + cw / 2 + 3, top - 3); g.rotate(-Math.PI / 2); g.fillText(short(t(d.tokens_a[a])), 0, 0); g.restore(); });
    if (fd && rows.some(h => h.hook === fd.hook)) { g.strokeStyle = "#dc2626"; g.lineWidth = 2; g.strokeRect(left + fd.pair * cw, top + rows.findIndex(h => h.hook === fd.hook) * ch, cw, ch); }
    const cv = canvas;
    cv.addEventListener("mousemove", ev => {
      const b = cv.getBoundingClientRect(), c = Math.floor((ev.clientX - b.left - left) / cw), r = Math.floor((ev.clientY - b.top - top) / ch);
      if (r < 0 || r >= rows.length || c < 0 || c >= nP) return;
      const [pa, pb] = al.pairs[c], v = vals[r][c];
      tip.textContent = `${rows[r].hook}, pair ${c}: A position ${pa} “${vis(t(d.tokens_a[pa]))}”, B position ${pb} “${vis(t(d.tokens_b[pb]))}”: ${M.label} ${v === null ? "— (not captured)" : p4(v)} ${M.unit}`;
    });
    const scaleHi = metric.value === "cos" ? "−1" : `${f3(top1)} ${M.unit}`;
    body.replaceChildren(table, el("h3", {}, `${M.label}, hooks × aligned pairs (first divergence outlined)`),
      legend(heat, metric.value === "cos" ? "1" : "0", scaleHi, `${M.label}: white = the same`, "diff-legend"), el("div", { class: "scroll" }, canvas), tip);
  };
  fam.addEventListener("change", draw);
  metric.addEventListener("change", draw);
  if (!families.length) return panel(`Diff: ${d.a} vs ${d.b}`, "diff", summary, absent("the traces share no hook captured one row per position"));
  draw();
  return panel(`Diff: A = ${d.a} vs B = ${d.b}`, "diff", summary,
    el("div", { class: "row" }, side(`A: ${d.a}`, d.tokens_a, d.n_prompt_a, kindA, fd?.pos_a ?? null, "diff-a"), side(`B: ${d.b}`, d.tokens_b, d.n_prompt_b, kindB, fd?.pos_b ?? null, "diff-b")),
    el("p", { class: "note" }, "Tokens: plain = common prefix, blue = matched later, orange = substituted, red = in one run only; the first divergence is outlined."),
    el("div", { class: "tools" }, "hooks ", fam, " colour ", metric, " ",
      button("CSV", "diff-csv", () => {
        const rows = d.hooks.filter(h => h.family === fam.value);
        const lines: (string | number | null | undefined)[][] = [["hook", "layer", "pair", "pos_a", "pos_b", "token_a", "token_b", "cos", "rel_l2", "kl_nats", "top1_a", "top1_b"]];
        rows.forEach(h => al.pairs.forEach(([a, b], i) => lines.push([h.hook, h.layer, i, a, b, t(d.tokens_a[a]), t(d.tokens_b[b]), h.cos[i], h.rel_l2[i], h.kl?.[i], h.top1_a?.[i], h.top1_b?.[i]])));
        download("diff.csv", new Blob([csv(lines)], { type: "text/csv" }));
      }, "every hook and pair of this family"),
      button("PNG", "diff-png", () => { if (canvas) download("diff.png", canvas.toDataURL("image/png")); }, "the heatmap as drawn")),
    body);
}
