// Small helpers to build the pages. Every text from a sandbox (names,
// commands, console lines, host names) goes in as textContent: never as
// HTML.

type Attrs = Record<string, string | number | boolean | undefined | ((ev: Event) => unknown)>;
type Child = Node | string | null | undefined | false;

// h makes an element with attributes ("on*" functions become listeners)
// and children (strings become text nodes).
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (k === "class") {
      el.className = String(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

// text sets el's text, as text.
export function text(el: Element, s: string): void {
  if (el.textContent !== s) el.textContent = s;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

// ago is how long before now t was, shortly: "42s", "5m", "3h", "2d".
export function ago(t: string | Date): string {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

// until is how long from now to t: "in 4m", or "due".
export function until(t: string | undefined): string {
  if (!t) return "none";
  const s = (new Date(t).getTime() - Date.now()) / 1000;
  if (s <= 0) return "due";
  if (s < 60) return `in ${Math.floor(s)}s`;
  if (s < 3600) return `in ${Math.floor(s / 60)}m`;
  if (s < 86400) return `in ${Math.floor(s / 3600)}h`;
  return `in ${Math.floor(s / 86400)}d`;
}

export function clock(t: string): string {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false });
}

// confirmButton is a button that asks to be clicked again before it acts.
export function confirmButton(label: string, cls: string, act: () => void): HTMLButtonElement {
  const b = h("button", { class: cls, type: "button" }, label);
  let armed = 0;
  b.addEventListener("click", () => {
    if (armed) {
      window.clearTimeout(armed);
      armed = 0;
      b.textContent = label;
      b.classList.remove("armed");
      act();
      return;
    }
    b.textContent = `${label}?`;
    b.classList.add("armed");
    armed = window.setTimeout(() => {
      armed = 0;
      b.textContent = label;
      b.classList.remove("armed");
    }, 4000);
  });
  return b;
}
