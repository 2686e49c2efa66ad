// The token strip: every token of the trace (prompt, then generated), wrapped to its box,
// coloured by the model's probability of that token given the ones before it, with the
// alternatives on hover, and a search that marks (and can dim all but) matching tokens.
import type { Lens, Trace } from "./data";
import { el, legend, p4, probColour, vis } from "./dom";

export interface TokenProb { p: number; source: string; alts: { text: string; p: number }[] }

// P(token i | tokens before it) and the alternatives the trace holds: a generated token's
// from its step (the sampler's raw distribution, top_logprobs); a prompt token's from the
// last layer of the logit lens (its top-1 only), which is the model's output distribution.
// Only the lens of the last layer's output is the model's distribution: a trace that did not
// capture it leaves its prompt tokens uncoloured.
export function tokenProbs(t: Trace, lens: Lens | string, texts: string[], nPrompt: number, nLayers: number): (TokenProb | null)[] {
  const out: (TokenProb | null)[] = texts.map(() => null);
  if (typeof lens !== "string" && lens.layers.length && lens.layers[lens.layers.length - 1] === String(nLayers - 1)) {
    const L = lens.layers.length - 1;
    lens.positions.forEach((pos, c) => {
      const i = pos + 1, p = lens.next_prob[L][c];
      if (i >= nPrompt || p === null) return;
      out[i] = { p, source: `logit lens, layer ${lens.layers[L]}`, alts: [{ text: lens.texts[String(lens.top_id[L][c])] ?? `#${lens.top_id[L][c]}`, p: lens.top_prob[L][c] }] };
    });
  }
  for (const s of t.steps) {
    const lp = s.logprobs, i = nPrompt + s.step;
    if (!lp || i >= texts.length) continue;
    out[i] = { p: lp.x_tokenprobe?.chosen.p_raw ?? Math.exp(lp.logprob), source: "the model at this step",
               alts: (lp.top_logprobs ?? []).map(a => ({ text: a.token, p: Math.exp(a.logprob) })) };
  }
  return out;
}

export interface Strip { spans: HTMLElement[]; tools: HTMLElement }

export function buildStrip(box: HTMLElement, texts: string[], ids: number[], nPrompt: number, probs: (TokenProb | null)[], onPick: (i: number) => void): Strip {
  const tip = el("div", { class: "toktip", "data-testid": "token-tip", hidden: "" });
  const spans = texts.map((t, i) => {
    const pr = probs[i];
    const s = el("span", { class: i < nPrompt ? "tok prompt" : "tok gen", "data-index": i }, vis(t) || "∅");
    if (pr) { s.style.setProperty("--p", probColour(pr.p)); s.dataset.p = pr.p.toFixed(4); }
    return s;
  });
  box.replaceChildren(...spans);
  box.onclick = ev => {
    const i = (ev.target as HTMLElement).closest<HTMLElement>(".tok")?.dataset.index;
    if (i !== undefined) onPick(Number(i));
  };
  box.onmouseover = ev => {
    const t = (ev.target as HTMLElement).closest<HTMLElement>(".tok");
    if (!t) return;
    const i = Number(t.dataset.index), pr = probs[i];
    tip.replaceChildren(el("div", {}, el("b", {}, `#${i} “${vis(texts[i])}”`), ` id ${ids[i]}, ${i < nPrompt ? "prompt" : "generated"}`),
      pr ? el("div", {}, "P(this token | tokens before) = ", el("b", { "data-testid": "token-tip-p" }, p4(pr.p)), ` (${pr.source})`)
         : el("div", {}, i === 0 ? "the first token: nothing predicts it" : "no probability in this trace"),
      ...(pr?.alts.length ? [el("div", {}, i < nPrompt ? "top-1 there:" : "alternatives (top-k, probability):"),
        el("table", { "data-testid": "token-tip-alts" }, ...pr.alts.map(a => el("tr", {}, el("td", { class: "tok" }, `“${vis(a.text)}”`), el("td", { class: "num" }, p4(a.p)))))] : []));
    const r = t.getBoundingClientRect();
    tip.style.left = `${Math.min(window.innerWidth - 280, r.left + window.scrollX)}px`;
    tip.style.top = `${r.bottom + window.scrollY + 4}px`;
    tip.hidden = false;
  };
  box.onmouseleave = () => { tip.hidden = true; };
  document.querySelector(".toktip")?.remove();
  document.body.append(tip);

  // Colour mode and search.
  const mode = el("select", { "data-testid": "strip-colour" }, el("option", { value: "prob" }, "probability of each token"), el("option", { value: "kind" }, "prompt / generated"));
  const apply = () => box.classList.toggle("byprob", mode.value === "prob");
  mode.addEventListener("change", apply);
  apply();
  const q = el("input", { type: "search", placeholder: "search tokens (text, or #id)", "data-testid": "token-search", size: 22 });
  const dim = el("input", { type: "checkbox", "data-testid": "token-filter" });
  const count = el("span", { class: "num", "data-testid": "token-search-count" });
  let matches: number[] = [], at = -1;
  const search = () => {
    const v = q.value;
    const byId = /^#\d+$/.test(v.trim()) ? Number(v.trim().slice(1)) : null, low = v.toLowerCase();
    matches = [];
    spans.forEach((s, i) => {
      const hit = v !== "" && (byId !== null ? ids[i] === byId : vis(texts[i]).toLowerCase().includes(low));
      s.classList.toggle("match", hit);
      if (hit) matches.push(i);
    });
    box.classList.toggle("filtered", dim.checked && v !== "");
    count.textContent = v === "" ? "" : `${matches.length} match${matches.length === 1 ? "" : "es"}`;
    at = -1;
  };
  q.addEventListener("input", search);
  dim.addEventListener("change", search);
  q.addEventListener("keydown", ev => {
    if (ev.key !== "Enter" || !matches.length) return;
    at = (at + 1) % matches.length;
    spans[matches[at]].scrollIntoView({ block: "nearest" });
    onPick(matches[at]);
  });
  const tools = el("div", { class: "striptools" }, "colour ", mode, " ",
    legend(probColour, "0", "1", "P(token | tokens before it), probability; uncoloured: no probability", "strip-legend"), " ",
    q, el("label", { title: "dim the tokens that do not match" }, dim, " only matches"), " ", count,
    el("span", { class: "note" }, " (Enter: next match)"));
  return { spans, tools };
}
