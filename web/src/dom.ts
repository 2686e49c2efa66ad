// Tiny DOM helpers: no framework, so the bundle stays small.
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: { [k: string]: string | number } = {}, ...kids: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = String(v); else e.setAttribute(k, String(v));
  }
  for (const c of kids) if (c !== null) e.append(c);
  return e;
}
const SVGNS = "http://www.w3.org/2000/svg";
export function svg(tag: string, attrs: { [k: string]: string | number } = {}, ...kids: (Node | string)[]): SVGElement {
  const e = document.createElementNS(SVGNS, tag) as SVGElement;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of kids) e.append(c);
  return e;
}
export const p4 = (x: number | null | undefined) => (x === null || x === undefined ? "—" : x.toFixed(4));
export const f3 = (x: number | null | undefined) => (x === null || x === undefined ? "—" : x.toFixed(3));
// Token text made visible: newlines and tabs as symbols, the rest as is.
export const vis = (s: string | undefined) => (s ?? "").replace(/\n/g, "↵").replace(/\t/g, "⇥");
// Probability -> colour (white to dark blue).
export function heat(p: number): string {
  const t = Math.max(0, Math.min(1, p));
  return `rgb(${Math.round(255 - 225 * t)},${Math.round(255 - 175 * t)},${Math.round(255 - 60 * t)})`;
}
export function panel(title: string, testid: string, ...kids: (Node | string | null)[]): HTMLElement {
  return el("section", { class: "panel", "data-testid": testid }, el("h2", {}, title), ...kids);
}
export function absent(what: string): HTMLElement {
  return el("p", { class: "absent", "data-testid": "absent" }, what);
}
// Probability of a token -> background colour: red (0) through yellow to green (1).
export function probColour(p: number): string {
  const t = Math.max(0, Math.min(1, p));
  return `hsl(${Math.round(120 * t)},85%,${Math.round(82 + 6 * t)}%)`;
}
// A colour bar with its scale and unit, for a canvas heatmap or the token strip.
export function legend(colour: (v: number) => string, lo: string, hi: string, what: string, testid: string): HTMLElement {
  const stops = Array.from({ length: 11 }, (_, i) => `${colour(i / 10)} ${i * 10}%`).join(",");
  return el("div", { class: "legend", "data-testid": testid }, el("span", { class: "num" }, lo),
    el("span", { class: "bar", style: `background:linear-gradient(to right,${stops})` }), el("span", { class: "num" }, hi), " ", what);
}
// Token text cut to `n` characters for an axis label.
export const short = (s: string | undefined, n = 8) => { const v = vis(s); return v.length > n ? v.slice(0, n - 1) + "…" : v; };
// Saves `data` as a file named `name` (CSV, PNG, .npy) through a temporary link.
export function download(name: string, data: Blob | string) {
  const a = el("a", { href: typeof data === "string" ? data : URL.createObjectURL(data), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  if (typeof data !== "string") setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
// CSV text of rows (RFC 4180 quoting).
export function csv(rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map(r => r.map(cell).join(",")).join("\n") + "\n";
}
// The numbers of every table in a panel as CSV rows, each table after a blank line.
export function tablesCsv(root: HTMLElement): string {
  const rows: string[][] = [];
  root.querySelectorAll("table").forEach((t, i) => {
    if (i > 0) rows.push([]);
    t.querySelectorAll("tr").forEach(tr => rows.push(Array.from(tr.querySelectorAll("th,td"), c => c.textContent ?? "")));
  });
  return csv(rows);
}
export function button(label: string, testid: string, onClick: () => void, title = ""): HTMLButtonElement {
  const b = el("button", { type: "button", class: "act", "data-testid": testid, title }, label);
  b.addEventListener("click", onClick);
  return b;
}
