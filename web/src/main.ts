// The viewer: prompt box and sampler controls, a token strip, and for the clicked token
// its trajectory, the logit-lens heatmap, attention (head grid + one head's pattern), the
// sampler funnel, the DLA waterfall and the top source tokens.
import "./style.css";
import { detectSource, type AttnRow, type Lens, type Trace } from "./data";
import { el, vis } from "./dom";
import { attentionHeadView, attentionView, dlaView, funnelView, lensView, sourcesView, trajectoryPoints, trajectoryView } from "./views";

const src = detectSource();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (s: string) => { $("status").textContent = s; };

interface State { trace: Trace; lens: Lens | string; texts: string[]; ids: number[]; nPrompt: number; nLayers: number; sel: number; strip: HTMLElement[] }
let st: State | null = null;
let selectSeq = 0;

function tokenTexts(t: Trace): { texts: string[]; ids: number[] } {
  const texts = t.manifest.tokens.map(x => x.text ?? String(x.id)), ids = t.manifest.tokens.map(x => x.id);
  for (const s of t.steps) { texts.push(s.text ?? s.logprobs?.token ?? String(s.id)); ids.push(s.id); }
  return { texts, ids };
}

async function openTrace(id: string) {
  status(`opening ${id}…`);
  const trace = await src.trace(id);
  const { texts, ids } = tokenTexts(trace);
  const nLayers = trace.manifest.model?.config?.n_layers ?? 0;
  const strip = $("strip");
  strip.replaceChildren();
  const nPrompt = trace.manifest.tokens.length;
  const spans = texts.map((t, i) => {
    const s = el("span", { class: i < nPrompt ? "tok prompt" : "tok gen", "data-index": i, title: `#${i} id ${ids[i]}` }, vis(t) || "∅");
    strip.append(s);
    return s;
  });
  strip.onclick = ev => {
    const i = (ev.target as HTMLElement).closest<HTMLElement>(".tok")?.dataset.index;
    if (i !== undefined) void select(Number(i));
  };
  st = { trace, lens: "computing the logit lens…", texts, ids, nPrompt, nLayers, sel: -1, strip: spans };
  $<HTMLSelectElement>("trace-select").value = id;
  st.lens = await src.lens(id);
  const chat = trace.manifest.chat_template ? `, a chat rendered by the ${trace.manifest.chat_template === "model" ? "model's template" : "fallback"}` : "";
  status(`${id}: ${nPrompt} prompt tokens${chat}, ${trace.steps.length} generated${trace.complete ? "" : " (incomplete)"}`);
  await select(Math.min(texts.length - 1, nPrompt));
}

// Token i was chosen by the logits at position i − 1.
async function select(i: number) {
  if (!st || i < 0 || i >= st.texts.length) return;
  const s = st, seq = ++selectSeq;
  if (s.sel >= 0) s.strip[s.sel].classList.remove("sel");
  s.sel = i;
  s.strip[i].classList.add("sel");
  const pos = Math.max(0, i - 1), step = s.trace.steps.find(x => x.step === i - s.nPrompt);
  const ex = step?.explain;
  const rows: (AttnRow | null)[] = await Promise.all(Array.from({ length: s.nLayers }, (_, l) => src.attentionRow(s.trace.id, l, pos)));
  if (seq !== selectSeq) return;  // a later click won
  const token = s.texts[i];
  const finalP = step?.logprobs?.x_tokenprobe?.chosen.p_raw ?? null;
  const head = el("div", { class: "selected", "data-testid": "selected" }, `token #${i} “${vis(token)}” (id ${s.ids[i]}), chosen at position ${pos}`,
    i === 0 ? " — the first token has no deciding position" : "");
  const attn = attentionView(rows, s.texts, pos, async (layer, h) => {
    const a = await src.attentionHead(s.trace.id, layer, h);
    document.getElementById("attn-big")?.replaceChildren(attentionHeadView(a, layer, h, pos));
  });
  $("panels").replaceChildren(head,
    el("div", { class: "row" }, trajectoryView(trajectoryPoints(s.lens, pos, ex), token, finalP), funnelView(step, token)),
    lensView(s.lens, pos, p => void select(p + 1)), attn,
    el("div", { class: "row" }, dlaView(ex), sourcesView(ex)));
}

async function refreshList() {
  const sel = $<HTMLSelectElement>("trace-select");
  const list = await src.listTraces();
  sel.replaceChildren(el("option", { value: "" }, src.offline ? "report" : `— ${list.length} saved —`),
    ...list.map(t => el("option", { value: t.id }, `${t.id}: ${t.prompt.slice(0, 40)} (${t.steps})`)));
  return list;
}

async function main() {
  const form = $<HTMLFormElement>("run-form");
  if (src.offline) {
    form.hidden = true;
    const list = await refreshList();
    if (list.length) await openTrace(list[0].id);
    return;
  }
  const model = await src.model?.();
  $("model-info").textContent = model ? `model ${model.name}${model.chat_template === "model" ? " · has a chat template" : ""}`
                                      : "no model loaded: traces only";
  $<HTMLSelectElement>("trace-select").onchange = ev => {
    const v = (ev.target as HTMLSelectElement).value;
    if (v) void openTrace(v).catch(e => status(String(e.message)));
  };
  form.onsubmit = async ev => {
    ev.preventDefault();
    const f = new FormData(form), num = (k: string) => Number(f.get(k));
    status("running…");
    try {
      const prompt = String(f.get("prompt")), chat = f.get("chat") !== null;
      const r = await src.run!({ ...(chat ? { messages: [{ role: "user", content: prompt }] } : { prompt }), n: num("n"), capture: String(f.get("capture")), explain: f.get("explain") !== null,
        sampler: { temperature: num("temperature"), top_k: num("top_k"), top_p: num("top_p"), min_p: num("min_p"), seed: num("seed") } });
      await refreshList();
      await openTrace(r.trace);
    } catch (e) { status(`error: ${(e as Error).message}`); }
  };
  await refreshList();
  const want = new URLSearchParams(location.search).get("trace");
  if (want) await openTrace(want).catch(e => status(String(e.message)));
}

document.addEventListener("keydown", ev => {
  if (!st || (ev.target as HTMLElement).tagName === "INPUT" || (ev.target as HTMLElement).tagName === "TEXTAREA") return;
  if (ev.key === "ArrowRight") void select(st.sel + 1);
  if (ev.key === "ArrowLeft") void select(st.sel - 1);
});
void main().catch(e => status(`error: ${(e as Error).message}`));
