// The dashboard's entry: the header, the page for the path (/ui/: the
// sandboxes; /ui/s/NAME: one sandbox) and the flash messages.
import { api } from "./api";
import { h } from "./dom";
import { listPage } from "./list";
import { sandboxPage } from "./sandbox";
import "./style.css";

const flashBox = h("div", { id: "flash", class: "flash", role: "status" });

// flash shows a short message, as text.
export function flash(msg: string, error = false): void {
  const m = h("div", { class: error ? "msg error" : "msg" }, msg);
  flashBox.append(m);
  window.setTimeout(() => m.remove(), error ? 8000 : 3000);
}

async function main() {
  const app = document.getElementById("app")!;
  const who = h("span", { class: "who", id: "who" });
  const logout = h("form", { method: "post", action: "/ui/logout", class: "logout" }, h("button", { type: "submit" }, "Log out"));
  app.append(h("header", {}, h("a", { href: "/ui/", class: "brand" }, "paddock"), h("span", { class: "spacer" }), who, logout), flashBox);
  const main = h("main");
  app.append(main);
  const me = await api.me();
  who.textContent = `key ${me.key}${me.admin ? " (sees every sandbox)" : ""}`;
  const m = /^\/ui\/s\/([^/]+)$/.exec(location.pathname);
  if (m) {
    const name = decodeURIComponent(m[1]);
    document.title = `${name} · paddock`;
    sandboxPage(main, name);
  } else {
    listPage(main, me.default_template);
  }
}

main();
