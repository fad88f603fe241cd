// A sandbox's page: its header and actions, a live terminal, the network
// decisions (with "allow" on a denied row), the exec audit log, the
// console log and a chart of its CPU and memory.
import { actionDone, api, ExecRecord, follow, NetRecord, Sandbox } from "./api";
import { Chart } from "./chart";
import { ago, bytes, clock, confirmButton, h, text, until } from "./dom";
import { stateBadge } from "./list";
import { flash } from "./main";
import { openTerminal, terminalBox, TermHandle } from "./terminal";

const maxRows = 500;
const consoleMax = 2000;

// Stops are what a page undoes when it closes: streams, the terminal.
type Stops = (() => void)[];

export function sandboxPage(root: HTMLElement, name: string): () => void {
  const stops: Stops = [];
  const term = terminalCard(name, stops);
  const chart = new Chart();
  const head = header(name, (action) => {
    if (action === "remove") {
      window.location.assign("/ui/");
      return;
    }
    // A reset or start boots the VM again, and a checkpoint (a fork's
    // too) reconnects the host to the guest's agent: either ends the shell.
    if (action === "reset" || action === "start" || action === "checkpoint" || action === "fork") term.connect();
    refresh();
  });
  root.append(
    head.el,
    h(
      "div",
      { class: "cols" },
      h("div", { class: "col-main" }, term.el, consoleCard(name, stops)),
      h("div", { class: "col-side" }, h("section", { class: "card" }, h("h3", {}, "CPU and memory"), chart.el), netCard(name, stops), execCard(name, stops)),
    ),
  );

  let current: Sandbox | null = null;
  let timer = 0;
  let stopped = false;
  async function refresh() {
    window.clearTimeout(timer);
    try {
      const sb = await api.get(name);
      const was = current?.state;
      current = sb;
      head.show(sb);
      if (sb.state === "running" && (!term.open() || (was !== undefined && was !== "running" && was !== "paused"))) term.connect();
      const st = await api.stats(name);
      chart.draw(st.points, sb.cpus);
    } catch (e) {
      if (current === null || (e as Error).message.startsWith("no sandbox")) {
        // Gone (removed elsewhere), or never there for this key.
        stopped = true;
        stops.forEach((s) => s());
        root.replaceChildren(h("section", { class: "card" }, h("p", { id: "gone" }, (e as Error).message), h("a", { href: "/ui/" }, "← sandboxes")));
        return;
      }
      flash((e as Error).message, true);
    }
    if (!stopped) timer = window.setTimeout(refresh, 2000);
  }
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    stops.forEach((s) => s());
  };
}

// header is the sandbox's name, state, facts and action buttons; done is
// called after an action that worked.
function header(name: string, done: (action: string) => void) {
  const badge = h("span", { class: "badge", id: "state" });
  const facts = h("span", { class: "facts", id: "facts" });
  const act = (action: string) => async () => {
    try {
      const out = await api.act(name, action);
      flash(actionDone(name, action, out));
      done(action);
    } catch (e) {
      flash((e as Error).message, true);
    }
  };
  const buttons: Record<string, HTMLButtonElement> = {
    pause: h("button", { type: "button", class: "pause", onclick: act("pause") }, "Pause"),
    resume: h("button", { type: "button", class: "resume", onclick: act("resume") }, "Resume"),
    start: h("button", { type: "button", class: "start", onclick: act("start") }, "Start"),
    checkpoint: h("button", { type: "button", class: "checkpoint", onclick: act("checkpoint") }, "Checkpoint"),
    fork: h("button", { type: "button", class: "fork", title: "a new sandbox from this one as it is now", onclick: act("fork") }, "Fork"),
  };
  const actions = h(
    "span",
    { class: "actions" },
    ...Object.values(buttons),
    confirmButton("Reset", "reset", act("reset")),
    confirmButton("Remove", "remove danger", act("remove")),
  );
  const reason = h("span", { class: "reason", id: "reason" });
  const el = h("section", { class: "card head" }, h("a", { href: "/ui/", class: "back" }, "← sandboxes"), h("h2", {}, name), badge, reason, facts, actions);
  const show = (sb: Sandbox) => {
    stateBadge(badge, sb);
    text(reason, sb.reason ?? "");
    text(
      facts,
      `${sb.template}${sb.from ? ` from ${sb.from}` : ""} · ${sb.cpus} CPU · ${bytes(sb.memory_bytes)} · age ${ago(sb.created)} · deadline ${until(sb.deadline)}` +
        (sb.policy ? ` · network ${sb.policy.preset}` : ""),
    );
    buttons.pause.hidden = sb.state !== "running";
    buttons.resume.hidden = sb.state !== "paused";
    buttons.start.hidden = sb.state !== "stopped" && sb.state !== "created";
    buttons.checkpoint.hidden = sb.state !== "running";
    buttons.fork.hidden = sb.state !== "running";
  };
  return { el, show };
}

function terminalCard(name: string, stops: Stops) {
  const status = h("span", { class: "term-status", id: "term-status" }, "not connected");
  const box = terminalBox();
  let term: TermHandle | null = null;
  const connect = () => {
    term?.close();
    term = openTerminal(box, name, (s) => text(status, s));
  };
  stops.push(() => term?.close());
  const reconnect = h("button", { type: "button", id: "term-connect", onclick: connect }, "Reconnect");
  const el = h("section", { class: "card term-card" }, h("h3", {}, "Terminal ", status, reconnect), box);
  return { el, connect, open: () => term !== null };
}

// table is a compact table with the given columns and its body.
function table(id: string, columns: string[]): [HTMLTableElement, HTMLTableSectionElement] {
  const body = h("tbody");
  const t = h("table", { id, class: "grid compact" }, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))), body);
  return [t, body];
}

function netCard(name: string, stops: Stops): HTMLElement {
  const [t, body] = table("net", ["Time", "Verdict", "Host", "Destination", "Rule", ""]);
  const deniedOnly = h("input", { type: "checkbox", id: "net-denied-only" });
  deniedOnly.addEventListener("change", () => t.classList.toggle("denied-only", deniedOnly.checked));
  stops.push(follow<NetRecord>(name, "net", (r) => addNet(body, name, r)));
  return h("section", { class: "card" }, h("h3", {}, "Network ", h("label", { class: "filter" }, deniedOnly, " denied only")), h("div", { class: "scroll" }, t));
}

function execCard(name: string, stops: Stops): HTMLElement {
  const [t, body] = table("exec", ["Time", "User", "Command", "Exit", "Took"]);
  stops.push(follow<ExecRecord>(name, "exec", (r) => addExec(body, r)));
  return h("section", { class: "card" }, h("h3", {}, "Commands"), h("div", { class: "scroll" }, t));
}

// consoleCard is the console log: text in a <pre>, escape sequences
// taken out, following the end unless scrolled up.
function consoleCard(name: string, stops: Stops): HTMLElement {
  const con = h("pre", { id: "console", class: "console" });
  let lines = 0;
  const add = (line: string) => {
    const stick = con.scrollTop + con.clientHeight >= con.scrollHeight - 8;
    con.append(document.createTextNode(stripEscapes(line) + "\n"));
    if (++lines > consoleMax && con.firstChild) con.firstChild.remove();
    if (stick) con.scrollTop = con.scrollHeight;
  };
  const dropped = (n: number) => con.append(document.createTextNode(`… ${n} earlier lines not shown …\n`));
  stops.push(follow<string>(name, "console", add, dropped));
  return h("section", { class: "card" }, h("h3", {}, "Console"), con);
}

function trim(body: HTMLElement) {
  while (body.children.length > maxRows) body.lastElementChild?.remove();
}

// addNet puts a network decision at the top of the table; a denied one
// gets a button that allows its host.
function addNet(body: HTMLElement, sandbox: string, r: NetRecord) {
  if (r.event === "close") return; // the connect row says it all
  const host = r.name || r.dest || "";
  const dest = r.addr && r.addr !== r.dest ? `${r.dest ?? ""} → ${r.addr}` : r.dest ?? "";
  const what = r.event === "dns" ? `dns ${r.type ?? ""}` : r.event === "request" ? `${r.method} ${r.path} → ${r.status}` : r.proto;
  const actions = h("td");
  const tr = h(
    "tr",
    { class: `verdict-${r.verdict}`, "data-verdict": r.verdict, "data-host": host },
    h("td", {}, clock(r.time)),
    h("td", {}, h("span", { class: `badge ${r.verdict}` }, r.verdict === "allow" ? "allowed" : r.verdict === "deny" ? "denied" : r.verdict)),
    h("td", { class: "host" }, host),
    h("td", { class: "dest" }, `${what} ${dest}`.trim()),
    h("td", { class: "rule" }, r.error ? `${r.rule} (${r.error})` : r.rule),
    actions,
  );
  if (r.verdict === "deny" && host) {
    const b = h("button", { type: "button", class: "allow" }, "Allow");
    b.title = `allow ${host} for this sandbox`;
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const out = await api.act(sandbox, "allow", { name: r.name, dest: r.dest, port: r.port });
        flash(`allowed ${out.rule}`);
        // Every denied row of this host is allowed now.
        for (const other of body.querySelectorAll<HTMLButtonElement>("button.allow")) {
          if ((other.closest("tr") as HTMLElement | null)?.dataset.host === host) {
            other.disabled = true;
            other.textContent = "Allowed";
          }
        }
      } catch (e) {
        b.disabled = false;
        flash((e as Error).message, true);
      }
    });
    actions.append(b);
  }
  body.prepend(tr);
  trim(body);
}

function addExec(body: HTMLElement, r: ExecRecord) {
  // A terminal's shell ends when its page closes (killed): not a failure.
  const cmd = (r.tty ? "terminal: " : "") + (r.argv ?? []).join(" ");
  const tr = h(
    "tr",
    { class: r.error || (r.exit_code && !r.tty) ? "failed" : "" },
    h("td", {}, clock(r.time)),
    h("td", {}, r.user ?? ""),
    h("td", { class: "cmd", title: r.cwd ? `in ${r.cwd}` : "" }, cmd),
    h("td", {}, r.error ? `error: ${r.error}` : String(r.exit_code ?? 0)),
    h("td", {}, r.duration_ms === undefined ? "" : `${(r.duration_ms / 1000).toFixed(1)}s`),
  );
  body.prepend(tr);
  trim(body);
}

// stripEscapes takes terminal escape sequences and other control
// characters but tab out of a console line.
function stripEscapes(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g, "");
}
