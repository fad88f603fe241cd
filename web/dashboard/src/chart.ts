// A small line chart of a sandbox's CPU and memory over the last minutes,
// drawn as SVG.
import { Use } from "./api";
import { bytes, h } from "./dom";

const ns = "http://www.w3.org/2000/svg";
const W = 480;
const H = 120;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class Chart {
  readonly el: HTMLElement;
  private cpu = svg("polyline", { fill: "none", stroke: "#2a5bd7", "stroke-width": 2 });
  private mem = svg("polyline", { fill: "none", stroke: "#d97706", "stroke-width": 2 });
  private legend = h("div", { class: "legend" });

  constructor() {
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "chart-svg" });
    for (const y of [0.25, 0.5, 0.75]) s.append(svg("line", { x1: 0, x2: W, y1: H * y, y2: H * y, stroke: "#e5e7eb" }));
    s.append(this.cpu, this.mem);
    this.el = h("div", { id: "chart", class: "chart" }, s, this.legend);
  }

  // draw plots points over the last minutes (from one to five, as far
  // back as they go): CPU against 100% of one core times the sandbox's
  // CPUs, memory against its limit (or its largest value).
  draw(points: Use[], cpus: number): void {
    const now = Date.now();
    const oldest = points.length ? (now - new Date(points[0].t).getTime()) / 1000 : 0;
    const span = Math.min(300, Math.max(60, Math.ceil(oldest / 60) * 60));
    const x = (t: string) => W - ((now - new Date(t).getTime()) / 1000 / span) * W;
    const cpuMax = 100 * Math.max(1, cpus);
    let memMax = 1;
    for (const p of points) memMax = Math.max(memMax, p.mem_limit || 0, p.mem);
    const line = (v: (p: Use) => number, max: number) =>
      points.map((p) => `${x(p.t).toFixed(1)},${(H - 2 - (Math.min(v(p), max) / max) * (H - 4)).toFixed(1)}`).join(" ");
    this.cpu.setAttribute("points", line((p) => p.cpu, cpuMax));
    this.mem.setAttribute("points", line((p) => p.mem, memMax));
    const last = points[points.length - 1];
    this.legend.replaceChildren(
      h("span", { class: "cpu" }, `CPU ${last ? last.cpu.toFixed(0) : "–"}% (of ${cpuMax}%)`),
      h("span", { class: "mem" }, `memory ${last ? bytes(last.mem) : "–"}${last?.mem_limit ? ` of ${bytes(last.mem_limit)}` : ""}`),
      h("span", { class: "span" }, span === 60 ? "last minute" : `last ${span / 60} minutes`),
    );
  }
}
