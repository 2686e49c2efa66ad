// Where the viewer's data comes from: the server's JSON API, or the JSON embedded in a
// `tokenprobe report` file (no server). Both give the same shapes.

export interface TokenInfo { id: number; text?: string; bytes?: [number, number] }
export interface Stage { name: string; active: boolean; n_in: number; n_kept: number; threshold: number | null; threshold_unit: string | null; mass_removed: number; detail: string; top: { id: number; logit: number; p: number }[] }
export interface Record {
  raw: { n_vocab: number; entropy: number; top: { id: number; logit: number; p: number }[] };
  stages: Stage[];
  draw: { u: number; greedy: boolean; n_final: number; interval: [number, number] };
  chosen: { id: number; raw_rank: number; raw_logit: number; logit: number; p_raw: number; p_final: number };
  flip: { runner_up: { id: number; raw_logit: number; logit: number } | null; logit_gap: number | null };
}
export interface Step {
  step: number; position: number; id: number; text?: string;
  logprobs?: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[]; x_tokenprobe: Record };
  explain?: Explain;
}
export interface Explain {
  chosen?: { id: number; text: string; prob: number; logit: number; rank: number };
  runner_up?: { id: number; text: string; prob: number; logit: number };
  logit_lens?: { points: { name: string; layer: number; where: string; chosen_rank: number; chosen_prob: number; chosen_logit: number; kl_to_final?: number; top: { id: number; text: string; prob: number }[] }[] };
  dla?: { target: number; baseline: number; total_logit: number; total_diff: number; parts: { name: string; kind: string; layer?: number; head?: number; logit: number; diff: number }[] };
  // measure "attention" (transformers) or "wkv_readout" (RWKV: shares of the WKV readout, with
  // the initial state's share); note says what a weight is.
  attention_sources?: { measure?: string; note?: string; heads: SourceGroup[]; layers: SourceGroup[] };
  // A mixture of experts: per layer, the experts this position was routed to, most probable
  // first: the router's weight, and each expert's weighted output's direct logit attribution.
  experts?: { layer: number; chosen: { expert: number; weight: number; dla_logit: number; dla_diff: number }[] }[];
}
export interface Source { position: number; text: string; weight: number }
export interface SourceGroup { layer: number; head?: number; sources: Source[]; initial_state_weight?: number }
export interface Trace {
  id: string; complete: boolean; hooks: string[]; notes: string[];
  tensors: { name: string; hook: string; pass: number; dtype: string; shape: number[]; positions: number[]; heads: number[] }[];
  manifest: { prompt?: string; chat_template?: string; tokens: TokenInfo[]; model?: { path?: string; config?: { n_layers: number; n_heads: number } }; sampler?: object };
  steps: Step[];
}
export interface Lens {
  layers: string[]; hooks: string[]; positions: number[]; next_id: (number | null)[];
  top_id: number[][]; top_prob: number[][]; next_prob: (number | null)[][]; next_rank: (number | null)[][];
  texts: { [id: string]: string };
}
// One query row of one layer's attention: data[h * n_k + k].
export interface AttnRow { heads: number[]; n_k: number; data: Float32Array | number[] }
export interface AttnHead { rows: number; n_k: number; positions: number[]; data: Float32Array }

// GET /api/diff: two traces compared hook by hook over their aligned positions (tokenprobe diff).
export interface HookDiff { hook: string; family: string; layer: number; lens: boolean; cos: (number | null)[]; rel_l2: (number | null)[]; kl?: (number | null)[]; top1_a?: number[]; top1_b?: number[] }
export interface TraceDiff {
  a: string; b: string; tokens_a: number[]; tokens_b: number[]; generated_a: number[]; generated_b: number[]; n_prompt_a: number; n_prompt_b: number;
  alignment: { common_prefix: number; pairs: [number, number][]; substituted: number[]; only_a: number[]; only_b: number[] };
  hooks: HookDiff[]; threshold: number; notes: string[]; texts: { [id: string]: string };
  first_divergence: { hook: string; layer: number; pair: number; pos_a: number; pos_b: number; rel_l2: number; top1_differs: boolean } | null;
  token_divergence: { step: number; id_a: number; id_b: number } | null;
}

export interface Source_ {
  readonly offline: boolean;
  listTraces(): Promise<{ id: string; prompt: string; steps: number }[]>;
  trace(id: string): Promise<Trace>;
  lens(id: string): Promise<Lens | string>;  // a string says why there is none
  attentionRow(id: string, layer: number, position: number): Promise<AttnRow | null>;
  attentionHead(id: string, layer: number, head: number): Promise<AttnHead | null>;
  run?(body: object): Promise<{ trace: string }>;
  deleteTrace?(id: string): Promise<void>;
  diff?(a: string, b: string): Promise<TraceDiff>;
  patch?(body: object): Promise<unknown>;  // POST /api/patch: tokenprobe patch --json's shape
  // Where a hook's tensor downloads as .npy (null offline).
  npyUrl(id: string, hook: string, query?: string): string | null;
  model?(): Promise<{ name: string; chat_template?: string; config: { n_layers: number } } | null>;
  // A report's embedded patching / causal-tracing results (`tokenprobe report --result`).
  results?(): unknown[];
}

async function getJson(url: string, init?: RequestInit): Promise<any> {
  const r = await fetch(url, init);
  const j = await r.json().catch(() => ({ error: { message: `HTTP ${r.status}` } }));
  if (!r.ok) throw new Error(j?.error?.message ?? `HTTP ${r.status}`);
  return j;
}

export class ServerSource implements Source_ {
  readonly offline = false;
  async listTraces() { return (await getJson("/api/traces")).traces; }
  trace(id: string) { return getJson(`/api/traces/${encodeURIComponent(id)}`); }
  async lens(id: string) {
    try { return await getJson(`/api/traces/${encodeURIComponent(id)}/lens`); } catch (e) { return String((e as Error).message); }
  }
  async attentionRow(id: string, layer: number, position: number): Promise<AttnRow | null> {
    try {
      const t = await getJson(`/api/traces/${encodeURIComponent(id)}/tensor?hook=hook_pattern&layer=${layer}&positions=${position}`);
      if (!t.positions.length) return null;
      return { heads: t.heads, n_k: t.shape[2], data: rowsOf(t.data, t.heads.length, t.positions.length, t.shape[2], 0) };
    } catch { return null; }
  }
  async attentionHead(id: string, layer: number, head: number): Promise<AttnHead | null> {
    const r = await fetch(`/api/traces/${encodeURIComponent(id)}/tensor?hook=hook_pattern&layer=${layer}&heads=${head}&format=bin`);
    if (!r.ok) return null;
    const meta = JSON.parse(r.headers.get("X-Tokenprobe-Slice") ?? "{}");
    return { rows: meta.shape[1], n_k: meta.shape[2], positions: meta.positions, data: new Float32Array(await r.arrayBuffer()) };
  }
  async deleteTrace(id: string) { await getJson(`/api/traces/${encodeURIComponent(id)}`, { method: "DELETE" }); }
  patch(body: object) { return getJson("/api/patch", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }); }
  diff(a: string, b: string) { return getJson(`/api/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`); }
  npyUrl(id: string, hook: string, query = "") { return `/api/traces/${encodeURIComponent(id)}/tensor?hook=${encodeURIComponent(hook)}${query}&format=npy`; }
  run(body: object) { return getJson("/api/run", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }); }
  async model() { try { return await getJson("/api/model"); } catch { return null; } }
}

// Picks row `r` of each head out of [heads, rows, n_k].
function rowsOf(data: number[], heads: number, rows: number, n_k: number, r: number): number[] {
  const out: number[] = [];
  for (let h = 0; h < heads; h++) out.push(...data.slice((h * rows + r) * n_k, (h * rows + r + 1) * n_k));
  return out;
}

interface ReportData { trace: Trace; lens: Lens | null; lens_error?: string; results?: unknown[]; attention: { [layer: string]: { heads: number[]; positions: number[]; n_k: number; data: number[] } } }

export class ReportSource implements Source_ {
  readonly offline = true;
  constructor(private d: ReportData) {}
  async listTraces() { return [{ id: this.d.trace.id, prompt: this.d.trace.manifest.prompt ?? "", steps: this.d.trace.steps.length }]; }
  async trace() { return this.d.trace; }
  results() { return this.d.results ?? []; }
  npyUrl() { return null; }
  async lens() { return this.d.lens ?? this.d.lens_error ?? "not in this report"; }
  async attentionRow(_id: string, layer: number, position: number): Promise<AttnRow | null> {
    const a = this.d.attention[String(layer)];
    if (!a) return null;
    const r = a.positions.indexOf(position);
    if (r < 0) return null;
    return { heads: a.heads, n_k: a.n_k, data: rowsOf(a.data, a.heads.length, a.positions.length, a.n_k, r) };
  }
  async attentionHead(_id: string, layer: number, head: number): Promise<AttnHead | null> {
    const a = this.d.attention[String(layer)];
    if (!a) return null;
    const h = a.heads.indexOf(head), rows = a.positions.length;
    if (h < 0) return null;
    return { rows, n_k: a.n_k, positions: a.positions, data: new Float32Array(a.data.slice(h * rows * a.n_k, (h + 1) * rows * a.n_k)) };
  }
}

export function detectSource(): Source_ {
  const el = document.getElementById("tp-data");
  if (el?.textContent) return new ReportSource(JSON.parse(el.textContent));
  return new ServerSource();
}
