// The viewer: prompt box and sampler controls, a token strip (coloured by probability,
// searchable), and for the clicked token its trajectory, the logit-lens heatmap, attention
// (head grid + one head's pattern), the sampler funnel, the DLA waterfall and the top source
// tokens; a diff of two traces; activation patching run on the server, and patching /
// causal-tracing results opened from a file;
// exports (CSV, PNG, .npy) and deleting traces.
import "./style.css";
import { detectSource, type AttnRow, type Lens, type Trace } from "./data";
import { diffView } from "./diff";
import { button, download, el, tablesCsv, vis } from "./dom";
import { resultView } from "./patching";
import { buildStrip, tokenProbs } from "./strip";
import { attentionHeadView, attentionView, dlaView, expertsView, funnelView, lensView, sourcesView, trajectoryPoints, trajectoryView } from "./views";

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

// The text of a token id as far as the open trace knows it (its own tokens), else "#id".
function textOf(id: number): string {
  const i = st?.ids.indexOf(id) ?? -1;
  return i >= 0 ? st!.texts[i] : `#${id}`;
}

async function openTrace(id: string) {
  status(`opening ${id}…`);
  const trace = await src.trace(id);
  const { texts, ids } = tokenTexts(trace);
  const nLayers = trace.manifest.model?.config?.n_layers ?? 0;
  const nPrompt = trace.manifest.tokens.length;
  st = { trace, lens: "computing the logit lens…", texts, ids, nPrompt, nLayers, sel: -1, strip: [] };
  $<HTMLSelectElement>("trace-select").value = id;
  $("diff").replaceChildren();
  const lens = await src.lens(id);
  if (st?.trace !== trace) return;  // another trace was opened meanwhile
  st.lens = lens;
  const strip = buildStrip($("strip"), texts, ids, nPrompt, tokenProbs(trace, lens, texts, nPrompt, nLayers), i => void select(i));
  st.strip = strip.spans;
  $("strip-tools").replaceChildren(strip.tools);
  fillTraceTools(trace);
  const chat = trace.manifest.chat_template ? `, a chat rendered by the ${trace.manifest.chat_template === "model" ? "model's template" : "fallback"}` : "";
  status(`${id}: ${nPrompt} prompt tokens${chat}, ${trace.steps.length} generated${trace.complete ? "" : " (incomplete)"}`);
  await select(Math.min(texts.length - 1, nPrompt));
}

// A CSV button on every panel that shows a table of numbers (the lens has its own, of every cell).
function withCsv(p: HTMLElement, name: string): HTMLElement {
  const h = p.querySelector("h2");
  if (h && p.querySelector("table") && !p.querySelector("[data-testid$='-csv']"))
    h.append(" ", button("CSV", `${p.dataset.testid}-csv`, () => download(`${name}.csv`, new Blob([tablesCsv(p)], { type: "text/csv" })), "this panel's numbers"));
  return p;
}

// Scrolls the strip (not the page) so that the token is in view.
function showInStrip(t: HTMLElement | undefined) {
  const box = $("strip");
  if (!t) return;
  const top = t.offsetTop - box.offsetTop;
  if (top < box.scrollTop || top + t.offsetHeight > box.scrollTop + box.clientHeight) box.scrollTop = top - box.clientHeight / 2;
}

// Token i was chosen by the logits at position i − 1.
async function select(i: number) {
  if (!st || i < 0 || i >= st.texts.length) return;
  const s = st, seq = ++selectSeq;
  if (s.sel >= 0) s.strip[s.sel]?.classList.remove("sel");
  s.sel = i;
  s.strip[i]?.classList.add("sel");
  showInStrip(s.strip[i]);
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
    const npy = src.npyUrl(s.trace.id, "hook_pattern", `&layer=${layer}&heads=${h}`);
    document.getElementById("attn-big")?.replaceChildren(attentionHeadView(a, layer, h, pos, s.texts, npy));
  });
  const tag = `${s.trace.id}-token${i}`;
  $("panels").replaceChildren(head,
    el("div", { class: "row" }, withCsv(trajectoryView(trajectoryPoints(s.lens, pos, ex), token, finalP), `${tag}-trajectory`), withCsv(funnelView(step, token), `${tag}-sampler`)),
    lensView(s.lens, pos, s.texts, p => void select(p + 1)), withCsv(attn, `${tag}-attention`),
    el("div", { class: "row" }, withCsv(dlaView(ex), `${tag}-dla`), withCsv(sourcesView(ex), `${tag}-sources`)));
  const experts = expertsView(ex);
  if (experts) $("panels").append(withCsv(experts, `${tag}-experts`));
}

// The bar under the strip: compare with another trace, download a hook's tensor.
function fillTraceTools(t: Trace) {
  const tools = $("trace-tools");
  tools.hidden = src.offline;
  if (src.offline) return;
  const hookSel = $<HTMLSelectElement>("npy-hook"), posIn = $<HTMLInputElement>("npy-pos"), link = $<HTMLAnchorElement>("npy-link");
  hookSel.replaceChildren(...t.hooks.map(h => el("option", { value: h }, h)));
  const upd = () => {
    link.href = src.npyUrl(t.id, hookSel.value, `&positions=${encodeURIComponent(posIn.value)}`) ?? "";
    link.download = `${t.id}-${hookSel.value}.npy`;
  };
  hookSel.onchange = upd;
  posIn.oninput = upd;
  upd();
}

async function refreshList() {
  const sel = $<HTMLSelectElement>("trace-select");
  const list = await src.listTraces();
  sel.replaceChildren(el("option", { value: "" }, src.offline ? "report" : `— ${list.length} saved —`),
    ...list.map(t => el("option", { value: t.id }, `${t.id}: ${t.prompt.slice(0, 40)} (${t.steps})`)));
  if (st) sel.value = st.trace.id;
  $("diff-select").replaceChildren(...list.map(t => el("option", { value: t.id }, `${t.id}: ${t.prompt.slice(0, 40)}`)));
  return list;
}

async function runDiff() {
  if (!st || !src.diff) return;
  const b = $<HTMLSelectElement>("diff-select").value;
  if (!b) return;
  status(`comparing ${st.trace.id} with ${b}…`);
  try {
    const d = await src.diff(st.trace.id, b);
    $("diff").replaceChildren(diffView(d, textOf));
    status(`diff of ${d.a} and ${d.b}: ${d.alignment.pairs.length} aligned positions`);
  } catch (e) { status(`diff: ${(e as Error).message}`); }
}

async function deleteOpen() {
  if (!st || !src.deleteTrace) return;
  const id = st.trace.id;
  if (!confirm(`Delete the trace ${id} from the server's traces folder? This cannot be undone.`)) return;
  try {
    await src.deleteTrace(id);
    st = null;
    $("strip").replaceChildren();
    $("strip-tools").replaceChildren();
    $("panels").replaceChildren();
    $("diff").replaceChildren();
    $("trace-tools").hidden = true;
    await refreshList();
    status(`deleted ${id}`);
  } catch (e) { status(`delete: ${(e as Error).message}`); }
}

// A patching or causal-tracing result file, read in the browser.
$<HTMLInputElement>("result-file").onchange = async ev => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (!f) return;
  try { $("result").replaceChildren(resultView(JSON.parse(await f.text()))); status(`opened ${f.name}`); }
  catch (e) { status(`${f.name}: ${(e as Error).message}`); }
};

async function main() {
  const form = $<HTMLFormElement>("run-form");
  if (src.offline) {
    form.hidden = true;
    const list = await refreshList();
    if (list.length) await openTrace(list[0].id);
    const results = src.results?.() ?? [];
    if (results.length) $("result").replaceChildren(...results.map(r => resultView(r)));
    return;
  }
  const model = await src.model?.();
  $("model-info").textContent = model ? `model ${model.name}${model.chat_template === "model" ? " · has a chat template" : ""}`
                                      : "no model loaded: traces only";
  $<HTMLSelectElement>("trace-select").onchange = ev => {
    const v = (ev.target as HTMLSelectElement).value;
    if (v) void openTrace(v).catch(e => status(String(e.message)));
  };
  const del = $<HTMLButtonElement>("delete-trace");
  del.hidden = false;
  del.onclick = () => void deleteOpen();
  $("diff-run").onclick = () => void runDiff();
  const pf = $<HTMLFormElement>("patch-form");
  pf.hidden = false;
  pf.onsubmit = async ev => {
    ev.preventDefault();
    const f = new FormData(pf);
    status("patching…");
    try {
      const j = await src.patch!({ clean: f.get("clean"), corrupt: f.get("corrupt"), metric: f.get("metric"), target: f.get("target"), mode: f.get("mode") });
      $("result").replaceChildren(resultView(j));
      status(`patched: ${(j as { runs: number }).runs} runs`);
    } catch (e) { status(`patch: ${(e as Error).message}`); }
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
