// edmarl web console: plain JS over the server's own API (POST /reset, POST /step and
// /console/api/*). No framework, no build step. DOM is built with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const ROLE_LABEL = { triage_nurse: "Triage nurse", pharmacist: "Pharmacist", consultant: "Consultant" };
const CAT_LABEL = { 1: "immediate", 2: "very urgent", 3: "urgent", 4: "standard", 5: "non-urgent" };
const HUMAN_TOOL = { triage_nurse: "triage_patient", pharmacist: "dispense_drug", consultant: "serve_patient" };
let OPTIONS = null;
const RUN_VERSIONS = {}; // run name -> the ed version its team trained on (config.json)

// ---------------------------------------------------------------- plumbing
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

const REFUSAL = {
  illegal_action: "Refused — illegal action",
  already_acted: "Refused — you already acted in this sub-step",
  episode_finished: "Refused — the episode is over",
  episode_running: "Not yet — the episode is still running",
  session_expired: "Your session expired",
  unknown_session: "Your session no longer exists",
  session_limit: "The server is full",
  no_active_task: "No episode is running",
  wrong_ruleset: "Wrong ruleset",
  bad_argument: "Refused",
  invalid_request: "Refused",
  unknown_run: "Unknown run",
  bad_host: "Refused by the server",
};

function explain(e) {
  if (!(e instanceof ApiError)) return `Cannot reach the server (${e.message}). Is edmarl-server still running?`;
  const head = REFUSAL[e.code] || `Server error ${e.status}`;
  let tail = "";
  if (e.code === "session_expired" || e.code === "unknown_session") {
    tail = " Press Start to begin a new episode.";
  } else if (e.code === "episode_finished") {
    tail = " Start a new episode to play again.";
  }
  return `${head}: ${e.message}${tail}`;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (TOKEN) opts.headers.Authorization = `Bearer ${TOKEN}`;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch { data = { error: r.statusText, code: `http_${r.status}` }; }
  if (!r.ok) throw new ApiError(r.status, data.code, data.error || data.message || r.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function table(caption, head, rows, numeric = []) {
  return el("table", {},
    el("caption", { class: "help", text: caption }),
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c))))));
}

const say = (text) => { $("msg").textContent = text; };
const fail = (e) => { $("err").textContent = typeof e === "string" ? e : explain(e); };
const fmt = (x, nd = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(nd));
const catBadge = (c) => (c ? el("span", { class: `cat cat-${c}`, title: CAT_LABEL[c], "aria-label": `category ${c} (${CAT_LABEL[c]})` }, String(c)) : "–");

// Every handler runs through here: one request at a time, errors shown, body flags for tests.
async function busy(fn) {
  if (document.body.dataset.busy === "1") return undefined;
  document.body.dataset.busy = "1";
  $("err").textContent = "";
  try {
    return await fn();
  } catch (e) {
    fail(e);
    return undefined;
  } finally {
    document.body.dataset.busy = "0";
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  }
}

// ---------------------------------------------------------------- an episode
class Episode {
  constructor(board) { this.board = board; this.sid = null; }

  async start(task, seed, players, run) {
    if (this.sid) api("DELETE", `/sessions/${encodeURIComponent(this.sid)}`).catch(() => {});
    this.sid = null;
    const r = await api("POST", "/reset", { task_id: task, seed, ruleset: "ed" });
    let meta = r.observation;
    const version = run ? RUN_VERSIONS[run] : null;
    if (version && meta.version !== version) { // a trained team plays the version it learned
      const s = await api("POST", "/step", {
        session_id: r.session_id, tool: "start_task",
        arguments: { task_id: task, seed, ruleset: "ed", version },
      });
      meta = s.result;
    }
    Object.assign(this, {
      sid: r.session_id, meta, view: meta.state, players, run,
      seed, events: [], terms: {}, last: {}, teamReturn: 0, done: false, final: null, debrief: null,
    });
    const n = this.view.consultant.patients.length;
    this.log(`Started ${this.meta.task_name} (${task}, ed ${this.meta.version}), seed ${seed}: ${n} patient(s) waiting`);
  }

  log(text) { this.events.push({ step: this.view ? this.view.step : 0, text }); }

  async advance(until, passTurn = false) {
    const r = await api("POST", "/console/api/advance", {
      session_id: this.sid, players: this.players, until, run: this.run || null, pass_turn: passTurn,
    });
    for (const s of r.substeps) {
      for (const e of s.events) this.events.push({ step: s.step, text: e });
      for (const [agent, terms] of Object.entries(s.reward_terms)) {
        const acc = (this.terms[agent] ||= {});
        for (const [k, v] of Object.entries(terms)) acc[k] = (acc[k] || 0) + v;
      }
      this.last = s.reward_terms;
      this.teamReturn += s.step_reward;
    }
    this.view = r.state;
    this.done = r.done;
    return r;
  }

  tool(name, args) { return api("POST", "/step", { session_id: this.sid, tool: name, arguments: args }); }

  async finish() {
    this.final = (await this.tool("finalize_episode", {})).result;
    this.debrief = (await api("GET", `/console/api/debrief?session_id=${encodeURIComponent(this.sid)}`)).patients;
    this.log(`Episode over: score ${fmt(this.final.score, 4)}`);
  }

  // -------------------------------------------------------------- board
  render() {
    const v = this.view;
    const b = this.board;
    b.hidden = false;
    b.dataset.session = this.sid;  // for scripts and tests: the server's session id
    const panels = [
      this.clockPanel(v), this.roomPanel(v),
      el("div", {}, this.resourcePanel(v), this.rolesPanel(v)),
      this.termsPanel(), this.eventsPanel(),
    ];
    if (this.debrief) panels.push(this.debriefPanel());
    b.replaceChildren(...panels);
  }

  clockPanel(v) {
    return el("div", { class: "panel wide", "aria-label": "Clock" },
      el("strong", {}, `${this.meta.task_name} · seed ${this.seed} · `),
      `time step ${v.step} of ${v.max_steps}, sub-step ${v.substep} · waiting ${v.queue_length} (untriaged ${v.untriaged}) · served ${v.patients_served} · team return `,
      el("span", { id: `${this.board.id}-return` }, fmt(this.teamReturn, 3)),
      v.done ? el("strong", {}, " · episode over") : null);
  }

  roomPanel(v) {
    const nurse = Object.fromEntries(v.triage_nurse.patients.map((p) => [p.patient_id, p]));
    const pharm = Object.fromEntries(v.pharmacist.patients.map((p) => [p.patient_id, p]));
    const rows = v.consultant.patients.map((p) => {
      const chart = (nurse[p.patient_id] || {}).chart || "";
      const m = chart.match(/^Complaint: (.*)$/m);
      const ph = pharm[p.patient_id] || {};
      const flags = [
        p.requires_icu ? "ICU" : null, p.requires_specialist ? "specialist" : null,
        ...(ph.given || []).map((d) => `given ${d}`),
        ...(ph.allergies || []).map((d) => `allergic: ${d}`),
      ].filter(Boolean).map((f) => el("span", { class: "flag" }, f));
      return [
        p.patient_id, m ? m[1] : "",
        el("span", {}, catBadge(p.category), p.triaged ? "" : p.category ? " self-report" : " untriaged"),
        String(p.wait), el("span", { class: `cond-${p.condition}` }, p.condition.replace("_", " ")),
        p.deterioration_countdown === null ? "–" : String(p.deterioration_countdown), el("span", {}, flags),
      ];
    });
    return el("div", { class: "panel", "aria-label": "Waiting room" }, el("h3", {}, "Waiting room"),
      rows.length ? table("Patients waiting now (visible information only)",
        ["patient", "complaint", "category", "wait", "condition", "countdown", "flags"], rows, [3, 5])
        : el("p", { class: "help" }, "Nobody is waiting."));
  }

  resourcePanel(v) {
    const c = v.consultant;
    const spec = c.patients.filter((p) => p.requires_specialist).length;
    const stock = Object.entries(v.pharmacist.stock).map(([d, n]) => [d.replaceAll("_", " "), String(n)]);
    return el("div", { class: "panel", "aria-label": "Resources" }, el("h3", {}, "Resources"),
      el("p", {}, `Doctors free this step: ${c.doctors_left} of ${c.doctors_total} · ICU beds free: ${c.icu_available} of ${c.icu_total} · waiting for a specialist: ${spec}`),
      el("details", {}, el("summary", {}, `Drug stock (${stock.length} drugs)`), table("Doses left", ["drug", "stock"], stock, [1])));
  }

  rolesPanel(v) {
    const rows = Object.entries(v.roles).map(([a, r]) => [
      ROLE_LABEL[a], (OPTIONS.players[this.players[a]] || {}).label || this.players[a],
      `${r.left} / ${r.capacity}`, r.turn_over ? "done" : "acting", r.queued || "–",
    ]);
    return el("div", { class: "panel", "aria-label": "Roles" }, el("h3", {}, "Roles"),
      table("Each role this time step", ["role", "player", "left", "turn", "queued"], rows));
  }

  termsPanel() {
    const agents = Object.keys(this.terms);
    const names = [...new Set(agents.flatMap((a) => Object.keys(this.terms[a])))];
    const rows = names.map((t) => [t.replaceAll("_", " "), ...agents.map((a) => {
      const last = (this.last[a] || {})[t];
      return `${fmt((this.terms[a] || {})[t], 3)}${last ? ` (${last > 0 ? "+" : ""}${fmt(last, 3)})` : ""}`;
    })]);
    return el("div", { class: "panel", "aria-label": "Reward terms" }, el("h3", {}, "Reward terms"),
      rows.length ? table("Episode total per role (last sub-step in brackets)", ["term", ...agents.map((a) => ROLE_LABEL[a])], rows, agents.map((_, i) => i + 1))
        : el("p", { class: "help" }, "No sub-step played yet."));
  }

  eventsPanel() {
    const items = this.events.slice(-300).map((e) => el("li", {}, `[step ${e.step}] ${e.text}`));
    const list = el("ol", { class: "events", "aria-label": "Events, oldest first" }, items);
    queueMicrotask(() => { list.scrollTop = list.scrollHeight; });
    return el("div", { class: "panel", "aria-label": "Events" }, el("h3", {}, "Events"), list);
  }

  debriefPanel() {
    const f = this.final;
    const rows = this.debrief.map((p) => [
      p.patient_id, p.complaint, catBadge(p.true_category), catBadge(p.nurse_category),
      p.triage ? el("span", { class: p.triage }, p.triage) : "not triaged", String(p.self_reported), p.outcome,
    ]);
    return el("div", { class: "panel wide", "aria-label": "Debrief" }, el("h3", {}, "Debrief: the truth beside the nurse's triage"),
      el("p", {}, "Score ", el("strong", { id: `${this.board.id}-score`, "data-value": String(f.score) }, fmt(f.score, 4)),
        ` · served ${f.patients_served} · missed emergencies ${f.missed_emergencies} · clairvoyant bound (Σ serve reward) ${fmt(f.oracle_value, 3)}`),
      table("Every patient of the episode", ["patient", "complaint", "true category", "nurse's category", "triage", "self-report", "outcome"], this.debrief.length ? rows : []));
  }
}
