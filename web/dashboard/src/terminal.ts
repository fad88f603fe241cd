// A live terminal: xterm.js (its DOM renderer) over the WebSocket of
// /ui/api/sandboxes/NAME/terminal to a shell on a PTY in the guest. The
// terminal fills its box and follows the window's size.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { h } from "./dom";

export interface TermHandle {
  close(): void;
}

export function openTerminal(box: HTMLElement, name: string, status: (s: string) => void): TermHandle {
  // Once closed (a new terminal replaced this one), this socket's late
  // events, its close above all, no longer speak for the terminal.
  let closed = false;
  const say = (s: string) => {
    if (!closed) status(s);
  };
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 13,
    theme: { background: "#111418", foreground: "#e6e6e6" },
    scrollback: 5000,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  box.replaceChildren();
  term.open(box);
  fit.fit();
  // For tests and the benchmark: the terminal's buffer as text.
  (window as unknown as { paddockTerminal: Terminal }).paddockTerminal = term;

  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ui/api/sandboxes/${encodeURIComponent(name)}/terminal?cols=${term.cols}&rows=${term.rows}`);
  ws.binaryType = "arraybuffer";
  const enc = new TextEncoder();
  ws.onopen = () => {
    say("connected");
    term.focus();
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      const m = JSON.parse(ev.data) as { type: string; code?: number; error?: string };
      if (m.type === "exit") {
        say(m.error ? `ended: ${m.error}` : `the shell exited (${m.code ?? 0})`);
      }
      return;
    }
    term.write(new Uint8Array(ev.data as ArrayBuffer));
  };
  ws.onclose = () => say("disconnected");
  ws.onerror = () => say("could not connect");
  const input = term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
  const binary = term.onBinary((d) => {
    const b = new Uint8Array(d.length);
    for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
    if (ws.readyState === WebSocket.OPEN) ws.send(b);
  });
  const resized = term.onResize(({ cols, rows }) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols, rows }));
  });
  let pending = 0;
  const onWindow = () => {
    window.clearTimeout(pending);
    pending = window.setTimeout(() => fit.fit(), 50);
  };
  window.addEventListener("resize", onWindow);
  return {
    close() {
      closed = true;
      window.removeEventListener("resize", onWindow);
      input.dispose();
      binary.dispose();
      resized.dispose();
      ws.close();
      term.dispose();
    },
  };
}

export function terminalBox(): HTMLElement {
  return h("div", { id: "terminal", class: "terminal" });
}
