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
