// The dashboard's calls to paddock serve (/ui/api, internal/dashboard).
// The session cookie goes along by itself; a lost session sends the page
// to the login form.

export interface Use {
  t: string;
  cpu: number;
  mem: number;
  mem_limit?: number;
}

export interface Sandbox {
  name: string;
  state: string;
  reason?: string;
  template: string;
  owner?: string;
  created: string;
  deadline?: string;
  cpus: number;
  memory_bytes: number;
  boot?: string;
  from?: string;
  pool?: string;
  use?: Use;
  policy?: { preset: string; allow?: string[]; deny?: string[]; add_hosts?: Record<string, string> };
}

export interface NetRecord {
  time: string;
  event: string;
  proto: string;
  dest?: string;
  name?: string;
  type?: string;
  addr?: string;
  port?: number;
  verdict: string;
  rule: string;
  error?: string;
  method?: string;
  path?: string;
  status?: number;
}

export interface ExecRecord {
  time: string;
  argv?: string[];
  user?: string;
  cwd?: string;
  tty?: boolean;
  exit_code?: number;
  duration_ms?: number;
  error?: string;
}

export class APIError extends Error {}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`/ui/api/${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (r.status === 401) {
    window.location.assign("/ui/login");
    throw new APIError("logged out");
  }
  const ct = r.headers.get("Content-Type") || "";
  const data = ct.includes("application/json") ? await r.json() : { error: await r.text() };
  if (!r.ok) throw new APIError((data && data.error) || `${r.status} ${r.statusText}`);
  return data as T;
}

export const api = {
  me: () => call<{ key: string; admin: boolean; default_template: string }>("GET", "me"),
  templates: () => call<string[]>("GET", "templates"),
  list: () => call<Sandbox[]>("GET", "sandboxes"),
  get: (name: string) => call<Sandbox>("GET", `sandboxes/${encodeURIComponent(name)}`),
  stats: (name: string) => call<{ every_s: number; points: Use[] }>("GET", `sandboxes/${encodeURIComponent(name)}/stats`),
  create: (req: { name?: string; template: string; policy?: string; ttl_s?: number; cpus?: number; memory?: string }) =>
    call<Sandbox>("POST", "sandboxes", req),
  act: (name: string, action: string, body: unknown = {}) =>
    call<Record<string, string>>("POST", `sandboxes/${encodeURIComponent(name)}/${action}`, body),
};

// actionDone is what an action that worked says: the checkpoint saved,
// the fork made, or the action.
export function actionDone(name: string, action: string, out: Record<string, string>): string {
  if (out.checkpoint) return `checkpoint ${out.checkpoint} of ${name} saved`;
  if (out.fork) return `forked ${name} as ${out.fork}`;
  return `${action}: ${name}`;
}

// follow streams a log of a sandbox (server-sent events), one parsed
// record or console line per call of each; it returns a stop function.
export function follow<T>(name: string, kind: "net" | "exec" | "console", each: (rec: T) => void, dropped?: (n: number) => void): () => void {
  const es = new EventSource(`/ui/api/sandboxes/${encodeURIComponent(name)}/logs/${kind}`);
  es.onmessage = (ev) => {
    try {
      each(JSON.parse(ev.data) as T);
    } catch {
      /* a line that is not JSON is skipped */
    }
  };
  es.addEventListener("dropped", (ev) => dropped?.(Number((ev as MessageEvent).data)));
  return () => es.close();
}
