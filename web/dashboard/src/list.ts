// The sandboxes page: every sandbox the key may see, refreshed every two
// seconds, with create and the actions.
import { actionDone, api, Sandbox } from "./api";
import { ago, bytes, confirmButton, h, text, until } from "./dom";
import { flash } from "./main";

const refreshEvery = 2000;

export function listPage(root: HTMLElement, defaultTemplate: string): () => void {
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No sandboxes yet: create one above, or with paddock create.");
  const table = h(
    "table",
    { id: "sandboxes", class: "grid" },
    h("thead", {}, h("tr", {}, ...["Name", "State", "Template", "Age", "CPU", "Memory", "Deadline", ""].map((c) => h("th", {}, c)))),
    tbody,
  );
  root.append(createForm(defaultTemplate, () => refresh()), h("section", { class: "card" }, table, empty));

  const rows = new Map<string, HTMLTableRowElement>();
  let stopped = false;
  let timer = 0;
  async function refresh() {
    window.clearTimeout(timer);
    try {
      const list = await api.list();
      const seen = new Set<string>();
      for (const sb of list) {
        seen.add(sb.name);
        let tr = rows.get(sb.name);
        if (!tr) {
          tr = row(sb, refresh);
          rows.set(sb.name, tr);
        }
        update(tr, sb);
        tbody.append(tr); // keeps the server's order
      }
      for (const [name, tr] of rows) {
        if (!seen.has(name)) {
          tr.remove();
          rows.delete(name);
        }
      }
      empty.hidden = list.length > 0;
    } catch (e) {
      flash(String((e as Error).message), true);
    }
    if (!stopped) timer = window.setTimeout(refresh, refreshEvery);
  }
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

function createForm(defaultTemplate: string, done: () => void): HTMLElement {
  const tpl = h("select", { id: "create-template", name: "template" });
  const name = h("input", { id: "create-name", name: "name", placeholder: "name (optional)", pattern: "[a-z0-9][a-z0-9-]{0,62}" });
  const ttl = h(
    "select",
    { id: "create-ttl", name: "ttl" },
    h("option", { value: "0" }, "no time limit"),
    h("option", { value: "900" }, "15 minutes"),
    h("option", { value: "3600" }, "1 hour"),
    h("option", { value: "86400" }, "1 day"),
  );
  const policy = h(
    "select",
    { id: "create-policy", name: "policy" },
    ...["balanced", "deny-all", "allow-all", "learn"].map((p) => h("option", { value: p }, `network: ${p}`)),
  );
  const cpus = h(
    "select",
    { id: "create-cpus", name: "cpus" },
    h("option", { value: "0" }, "default CPUs"),
    ...[1, 2, 4].map((n) => h("option", { value: String(n) }, `${n} CPU`)),
  );
  const memory = h(
    "select",
    { id: "create-memory", name: "memory" },
    h("option", { value: "" }, "default memory"),
    ...["512M", "1G", "2G", "4G", "8G"].map((m) => h("option", { value: m }, `${m}B memory`)),
  );
  const button = h("button", { type: "submit", class: "primary", id: "create" }, "Create sandbox");
  api.templates().then((ts) => {
    for (const t of ts) tpl.append(h("option", { value: t, selected: t === defaultTemplate }, t));
  });
  const form = h("form", { class: "card create" }, tpl, name, policy, ttl, cpus, memory, button);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const sb = await api.create({
        template: tpl.value,
        name: name.value || undefined,
        policy: policy.value,
        ttl_s: Number(ttl.value),
        cpus: Number(cpus.value),
        memory: memory.value || undefined,
      });
      flash(`created ${sb.name}`);
      name.value = "";
      done();
    } catch (e) {
      flash((e as Error).message, true);
    } finally {
      button.disabled = false;
      button.textContent = "Create sandbox";
    }
  });
  return form;
}

function row(sb: Sandbox, refresh: () => void): HTMLTableRowElement {
  const link = h("a", { href: `/ui/s/${encodeURIComponent(sb.name)}`, class: "name" }, sb.name);
  const cells = ["state", "template", "age", "cpu", "mem", "deadline"].map((c) => h("td", { class: c }));
  const actions = h("td", { class: "actions" });
  const tr = h("tr", { "data-name": sb.name }, h("td", {}, link), ...cells, actions);
  const act = (action: string) => async () => {
    tr.classList.add("busy");
    try {
      const out = await api.act(sb.name, action);
      flash(actionDone(sb.name, action, out));
    } catch (e) {
      flash((e as Error).message, true);
    } finally {
      tr.classList.remove("busy");
      refresh();
    }
  };
  const pause = h("button", { type: "button", class: "pause", onclick: act("pause") }, "Pause");
  const resume = h("button", { type: "button", class: "resume", onclick: act("resume") }, "Resume");
  const start = h("button", { type: "button", class: "start", onclick: act("start") }, "Start");
  const checkpoint = h("button", { type: "button", class: "checkpoint", onclick: act("checkpoint") }, "Checkpoint");
  const fork = h("button", { type: "button", class: "fork", title: "a new sandbox from this one as it is now", onclick: act("fork") }, "Fork");
  actions.append(pause, resume, start, checkpoint, fork, confirmButton("Reset", "reset", act("reset")), confirmButton("Remove", "remove danger", act("remove")));
  return tr;
}

export function stateBadge(el: Element, sb: Sandbox): void {
  el.className = `badge state-${sb.state}`;
  text(el, sb.state);
  if (sb.reason) el.setAttribute("title", sb.reason);
  else el.removeAttribute("title");
}

function update(tr: HTMLTableRowElement, sb: Sandbox): void {
  const q = (c: string) => tr.querySelector(`td.${c}`)!;
  let badge = q("state").querySelector(".badge");
  if (!badge) {
    badge = h("span");
    q("state").append(badge);
  }
  stateBadge(badge, sb);
  let reason = q("state").querySelector(".reason");
  if (!reason) {
    reason = h("div", { class: "reason" });
    q("state").append(reason);
  }
  text(reason, sb.reason ?? "");
  tr.dataset.state = sb.state;
  text(q("template"), sb.template + (sb.pool ? " (warm pool)" : ""));
  text(q("age"), ago(sb.created));
  text(q("cpu"), sb.use ? `${sb.use.cpu.toFixed(0)}%` : "–");
  text(q("mem"), sb.use ? bytes(sb.use.mem) : "–");
  text(q("deadline"), until(sb.deadline));
  const show = (cls: string, on: boolean) => ((tr.querySelector(`button.${cls}`) as HTMLElement).hidden = !on);
  show("pause", sb.state === "running");
  show("resume", sb.state === "paused");
  show("start", sb.state === "stopped" || sb.state === "created");
  show("checkpoint", sb.state === "running");
  show("fork", sb.state === "running");
}
