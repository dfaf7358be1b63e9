// edmarl web console: plain JS over the server's own API (POST /reset, POST /step and
// /console/api/*). No framework, no build step. DOM is built with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const ROLE_LABEL = { triage_nurse: "Triage nurse", pharmacist: "Pharmacist", consultant: "Consultant" };
const CAT_LABEL = { 1: "immediate", 2: "very urgent", 3: "urgent", 4: "standard", 5: "non-urgent" };
const HUMAN_TOOL = { triage_nurse: "triage_patient", pharmacist: "dispense_drug", consultant: "serve_patient" };
let OPTIONS = null;

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
    Object.assign(this, {
      sid: r.session_id, meta: r.observation, view: r.observation.state, players, run,
      seed, events: [], terms: {}, last: {}, teamReturn: 0, done: false, final: null, debrief: null,
    });
    const n = this.view.consultant.patients.length;
    this.log(`Started ${this.meta.task_name} (${task}), seed ${seed}: ${n} patient(s) waiting`);
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
        el("span", {}, catBadge(p.category), p.triaged ? "" : " self-report"),
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

// ---------------------------------------------------------------- views
function showView(name, load = true) {
  for (const v of ["watch", "play", "results"]) {
    $(`view-${v}`).hidden = v !== name;
    if (v === name) $(`tab-${v}`).setAttribute("aria-current", "page");
    else $(`tab-${v}`).removeAttribute("aria-current");
  }
  $("main").focus();
  if (name === "results" && load) busy(loadRuns);
}

function fillTasks(select) {
  select.replaceChildren(...OPTIONS.tasks.map((t) => el("option", { value: t }, t.replaceAll("_", " "))));
  if (OPTIONS.tasks.includes("basic_triage")) select.value = "basic_triage";
}

function fillRuns(select, runs) {
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "none"),
    ...runs.filter((r) => r.trained && r.ruleset === "ed").map((r) => el("option", { value: r.name }, `${r.name} (${r.task})`)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

// ---------------------------------------------------------------- Watch
const watch = new Episode(null);
let autoplay = false;

function watchPlayers() {
  return Object.fromEntries(OPTIONS.roles.map((a) => [a, $(`watch-player-${a}`).value]));
}

function buildWatchForm() {
  const fs = $("watch-players");
  fs.replaceChildren(el("legend", {}, "Players"));
  for (const a of OPTIONS.roles) {
    const sel = el("select", { id: `watch-player-${a}` },
      Object.entries(OPTIONS.players).filter(([k]) => k !== OPTIONS.human)
        .map(([k, p]) => el("option", { value: k, title: p.description }, p.label)));
    sel.value = "heuristic";
    sel.addEventListener("change", () => {  // the oracle is one player for the whole team
      const whole = (k) => OPTIONS.players[k].whole_team;
      for (const b of OPTIONS.roles) {
        const other = $(`watch-player-${b}`);
        if (other === sel) continue;
        if (whole(sel.value)) other.value = sel.value;
        else if (whole(other.value)) other.value = "heuristic";
      }
    });
    fs.append(el("label", {}, ROLE_LABEL[a], sel));
  }
}

function watchButtons() {
  const live = watch.sid && !watch.done;
  for (const id of ["watch-substep", "watch-step", "watch-auto", "watch-end"]) $(id).disabled = !live;
}

async function watchStart(ev) {
  ev.preventDefault();
  autoplay = false;
  $("watch-auto").setAttribute("aria-pressed", "false");
  await busy(async () => {
    const seed = Number($("watch-seed").value);
    await watch.start($("watch-task").value, seed, watchPlayers(), $("watch-run").value);
    watch.render();
    say(`Watching seed ${seed}: press n for the next sub-step, t for the next time step, a to autoplay.`);
  });
  watchButtons();
}

async function watchAdvance(until) {
  await busy(async () => {
    await watch.advance(until);
    if (watch.done) {
      await watch.finish();
      say(`Episode over. Final score ${fmt(watch.final.score, 4)}.`);
    }
    watch.render();
  });
  watchButtons();
}

async function toggleAutoplay() {
  autoplay = !autoplay;
  $("watch-auto").setAttribute("aria-pressed", String(autoplay));
  while (autoplay && watch.sid && !watch.done) {
    const before = $("err").textContent;
    await watchAdvance("substep");
    if ($("err").textContent && $("err").textContent !== before) break;
    await new Promise((r) => setTimeout(r, Number($("watch-delay").value)));
  }
  autoplay = false;
  $("watch-auto").setAttribute("aria-pressed", "false");
}

// ---------------------------------------------------------------- Play
const play = new Episode(null);

function playPlayers() {
  const me = $("play-role").value;
  const mates = $("play-mates").value;
  return Object.fromEntries(OPTIONS.roles.map((a) => [a, a === me ? OPTIONS.human : mates]));
}

async function playStart(ev) {
  ev.preventDefault();
  await busy(async () => {
    const seed = Number($("play-seed").value);
    $("play-result").hidden = true;
    await play.start($("play-task").value, seed, playPlayers(), $("play-run").value);
    play.me = $("play-role").value;
    await play.advance("human");
    await afterPlay();
    say(`Shift started as ${ROLE_LABEL[play.me].toLowerCase()}, seed ${seed}.`);
  });
}

async function afterPlay() {
  if (play.done) {
    await play.finish();
    const cmp = await api("POST", "/console/api/compare", { session_id: play.sid, run: play.run || null });
    renderPlayResult(cmp);
  }
  renderTurn();
  play.render();
}

function renderTurn() {
  const sec = $("play-turn");
  sec.hidden = play.done;
  if (play.done) return;
  const me = play.me;
  const v = play.view;
  const cards = [];
  if (me === "triage_nurse") {
    $("play-help").textContent = `Read each presentation card and assign a Manchester category (1 immediate … 5 non-urgent). ${v.roles.triage_nurse.left} triage(s) left this time step. Keys: Tab to a card, 1–5, e to end your turn.`;
    for (const p of v.triage_nurse.patients.filter((q) => q.can_triage)) {
      cards.push(el("article", { class: "card", tabindex: "0", "data-patient": p.patient_id, "data-self-report": p.self_reported_urgency, "aria-label": `Patient ${p.patient_id}, waited ${p.wait} step(s), ${p.condition}` },
        el("h4", {}, `${p.patient_id} · waited ${p.wait} · ${p.condition.replace("_", " ")}${p.triage_category ? ` · now category ${p.triage_category}` : ""}`),
        el("pre", {}, p.chart),
        el("div", { class: "choices", role: "group", "aria-label": `Category for ${p.patient_id}` },
          [1, 2, 3, 4, 5].map((c) => el("button", { type: "button", class: `cat-btn`, "data-category": c, "aria-label": `Assign ${p.patient_id} category ${c} (${CAT_LABEL[c]})`, onclick: () => humanAct({ patient_id: p.patient_id, category: c }) }, `${c} ${CAT_LABEL[c]}`)))));
    }
  } else if (me === "pharmacist") {
    $("play-help").textContent = `Give one dose per sub-step (${v.roles.pharmacist.left} left this time step); mind allergies and stock. e ends your turn.`;
    for (const p of v.pharmacist.patients.filter((q) => q.can_dispense.length)) {
      cards.push(el("article", { class: "card", tabindex: "0", "data-patient": p.patient_id, "aria-label": `Patient ${p.patient_id}` },
        el("h4", {}, `${p.patient_id} · category ${p.triage_category || "–"} · ${p.condition.replace("_", " ")}${p.allergies.length ? ` · allergic: ${p.allergies.join(", ")}` : ""}`),
        el("pre", {}, p.chart),
        el("div", { class: "choices", role: "group", "aria-label": `Drugs for ${p.patient_id}` },
          p.can_dispense.map((d) => el("button", { type: "button", "data-drug": d, "aria-label": `Give ${p.patient_id} ${d.replaceAll("_", " ")}`, onclick: () => humanAct({ patient_id: p.patient_id, drug: d }) }, d.replaceAll("_", " "))))));
    }
  } else {
    $("play-help").textContent = `Serve patients: ${v.consultant.doctors_left} doctor slot(s) and ${v.consultant.icu_available} ICU bed(s) free this time step. e ends your turn.`;
    for (const p of v.consultant.patients.filter((q) => q.can_serve)) {
      const flags = [p.requires_icu ? "needs ICU" : "", p.requires_specialist ? "needs a specialist (2 doctors)" : "", p.medicated ? "medicated" : ""].filter(Boolean).join(", ");
      cards.push(el("article", { class: "card", tabindex: "0", "data-patient": p.patient_id, "aria-label": `Patient ${p.patient_id}` },
        el("h4", {}, `${p.patient_id} · `, catBadge(p.category), `${p.triaged ? "" : " (self-report)"} · waited ${p.wait} · ${p.condition.replace("_", " ")}`),
        el("p", {}, flags || "no flags", p.deterioration_countdown !== null ? ` · deteriorates in ${p.deterioration_countdown}` : ""),
        el("button", { type: "button", "aria-label": `Serve ${p.patient_id}`, onclick: () => humanAct({ patient_id: p.patient_id }) }, "Serve")));
    }
  }
  $("play-cards").replaceChildren(...(cards.length ? cards : [el("p", { class: "help" }, "Nothing for you to do now: end your turn.")]));
  const first = $("play-cards").querySelector(".card");
  if (first && !sec.contains(document.activeElement)) first.focus();
}

async function humanAct(args) {
  await busy(async () => {
    const r = await play.tool(HUMAN_TOOL[play.me], args);
    play.log(`you: ${r.result.action}`);
    await play.advance("human");
    await afterPlay();
  });
}

async function endTurn() {
  await busy(async () => {
    play.log("you: end turn");
    await play.advance("human", true);
    await afterPlay();
  });
}

function renderPlayResult(cmp) {
  const f = play.final;
  const k = f.kpis;
  const pct = (serve) => (f.oracle_value ? `${fmt((100 * serve) / f.oracle_value, 1)} %` : "–");
  const rows = [
    ["your team", el("span", { id: "play-team-score" }, fmt(f.score, 4)), pct(f.grader.cumulative_reward), fmt(k.under_triage_rate, 3), fmt(k.over_triage_rate, 3)],
    ...cmp.teams.map((t) => [t.team, fmt(t.score, 4), `${fmt(t.pct_of_oracle, 1)} %`, fmt(t.under_triage_rate, 3), fmt(t.over_triage_rate, 3)]),
    ["clairvoyant bound", fmt(cmp.oracle.score, 4), "100.0 %", "0.000", "0.000"],
  ];
  $("play-summary").replaceChildren(
    el("p", {}, "Your score: ", el("span", { id: "play-score", class: "score", "data-value": String(f.score) }, fmt(f.score, 4))),
    el("p", {}, `Under-triage: ${k.under_triage_events} event(s), rate ${fmt(k.under_triage_rate, 3)} · over-triage rate ${fmt(k.over_triage_rate, 3)} · served ${f.patients_served} · missed emergencies ${f.missed_emergencies}`),
    table(`Same task and seed (${cmp.task}, seed ${cmp.seed}); % of oracle = Σ serve reward over the clairvoyant bound`, ["team", "score", "% of oracle", "under-triage rate", "over-triage rate"], rows, [1, 2, 3, 4]));
  $("play-result").hidden = false;
  say(`Shift over. Your score ${fmt(f.score, 4)}; the heuristic team scored ${fmt(cmp.teams[0].score, 4)} on the same seed.`);
  $("play-result-h").focus?.();
}

// ---------------------------------------------------------------- Results
async function loadRuns() {
  const r = await api("GET", "/console/api/runs");
  $("results-root").textContent = `Run directories under ${r.results_root} (set EDMARL_RESULTS_ROOT to change): ${r.runs.length} found.`;
  $("results-run").replaceChildren(...r.runs.map((x) => el("option", { value: x.name }, `${x.name} (${x.task || "?"}, ${x.ruleset || "?"})`)));
  $("results-open").disabled = !r.runs.length;
  fillRuns($("watch-run"), r.runs);
  fillRuns($("play-run"), r.runs);
}

async function openRun(ev) {
  ev.preventDefault();
  await busy(async () => {
    const name = $("results-run").value;
    const r = await api("GET", `/console/api/runs/${encodeURIComponent(name)}`);
    const s = r.summary;
    const pm = (m, ci, nd) => `${fmt(m, nd)} ± ${fmt(ci, nd)}`;
    const summary = (s.summary || []).map((x) => [x.policy, String(x.episodes ?? "–"), pm(x.score, x.score_ci95, 3),
      fmt(x.episode_return, 2), fmt(x.pct_of_oracle, 1), fmt(x.served, 1), fmt(x.missed_emergencies, 1)]);
    const paired = (s.paired || []).map((p) => [`${p.policy} − ${p.versus}`, String(p.seeds),
      `${p.score.mean_diff >= 0 ? "+" : ""}${fmt(p.score.mean_diff, 4)} ± ${fmt(p.score.ci95, 4)}`,
      `${p.score.wins}/${p.score.losses}/${p.score.ties}`,
      p.pct_of_oracle ? `${fmt(p.pct_of_oracle.mean_diff, 2)} ± ${fmt(p.pct_of_oracle.ci95, 2)}` : "–"]);
    const alt = {
      "comparison.png": "Comparison plot: each policy's score and share of the oracle bound",
      "learning_curve.png": "Learning curve: training return per iteration",
      "timeline.png": "Timeline: patients waiting over an episode per team",
    };
    const cfg = r.config || {};
    $("results-body").replaceChildren(
      el("h3", {}, `${name}: ${cfg.task || "?"} (${cfg.ruleset || "?"}), ${cfg.eval_episodes ?? "?"} seeds from ${cfg.eval_seed_start ?? "?"}`),
      table("Summary (mean ± 95 % CI over seeds)", ["policy", "episodes", "score", "return", "% of oracle", "served", "missed emerg."], summary, [1, 2, 3, 4, 5, 6]),
      el("h3", {}, "Paired differences by seed"),
      paired.length ? table("Mean difference ± 95 % CI; seeds won/lost/tied", ["policy − versus", "seeds", "Δ score", "won/lost/tied", "Δ % of oracle"], paired, [1, 2, 3, 4])
        : el("p", { class: "help" }, "No paired comparisons in this run."),
      ...r.files.filter((f) => f.endsWith(".png")).map((f) => el("figure", {},
        el("img", { class: "plot", src: `/console/api/runs/${encodeURIComponent(name)}/files/${f}`, alt: alt[f] || f }),
        el("figcaption", { class: "help" }, f))),
      r.files.includes("summary.md") ? el("p", {}, el("a", { href: `/console/api/runs/${encodeURIComponent(name)}/files/summary.md` }, "summary.md")) : null);
    say(`Opened ${name}.`);
  });
}

// ---------------------------------------------------------------- keys and start-up
function onKey(ev) {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const tag = (ev.target.tagName || "").toLowerCase();
  if (["input", "select", "textarea"].includes(tag)) return;
  if (!$("view-watch").hidden) {
    const map = { n: "watch-substep", t: "watch-step", a: "watch-auto" };
    const id = map[ev.key];
    if (id && !$(id).disabled) { ev.preventDefault(); $(id).click(); }
  } else if (!$("view-play").hidden && play.sid && !play.done) {
    if (ev.key === "e") { ev.preventDefault(); endTurn(); return; }
    if (play.me === "triage_nurse" && /^[1-5]$/.test(ev.key)) {
      const card = ev.target.closest && ev.target.closest(".card");
      if (!card) { fail("Select a patient first: Tab to a presentation card, then press 1–5."); return; }
      ev.preventDefault();
      humanAct({ patient_id: card.dataset.patient, category: Number(ev.key) });
    }
  }
}

async function init() {
  $("tab-watch").addEventListener("click", () => showView("watch"));
  $("tab-play").addEventListener("click", () => showView("play"));
  $("tab-results").addEventListener("click", () => showView("results"));
  $("watch-form").addEventListener("submit", watchStart);
  $("watch-substep").addEventListener("click", () => watchAdvance("substep"));
  $("watch-step").addEventListener("click", () => watchAdvance("step"));
  $("watch-end").addEventListener("click", () => watchAdvance("end"));
  $("watch-auto").addEventListener("click", toggleAutoplay);
  $("play-form").addEventListener("submit", playStart);
  $("play-endturn").addEventListener("click", endTurn);
  $("results-form").addEventListener("submit", openRun);
  $("results-refresh").addEventListener("click", () => busy(loadRuns));
  document.addEventListener("keydown", onKey);
  watch.board = $("watch-board");
  play.board = $("play-board");
  await busy(async () => {
    OPTIONS = await api("GET", "/console/api/options");
    fillTasks($("watch-task"));
    fillTasks($("play-task"));
    buildWatchForm();
    $("play-mates").replaceChildren(...Object.entries(OPTIONS.players)
      .filter(([k, p]) => k !== OPTIONS.human && !p.whole_team)
      .map(([k, p]) => el("option", { value: k, title: p.description }, p.label)));
    $("play-mates").value = "heuristic";
    await loadRuns();
    const hashView = () => (location.hash.match(/view=(watch|play|results)/) || [])[1];
    window.addEventListener("hashchange", () => { if (hashView()) showView(hashView()); });
    showView(hashView() || "watch", false);
    say("Ready. Pick a task and a seed, then Start.");
  });
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
