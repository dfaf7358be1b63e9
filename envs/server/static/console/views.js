// edmarl web console: the Watch, Play and Results views and start-up (console.js holds
// the plumbing and the episode board; both are plain scripts sharing one global scope).
"use strict";

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
  for (const r of runs) RUN_VERSIONS[r.name] = r.ed_version || null;
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "none"),
    ...runs.filter((r) => r.trained && r.ruleset === "ed").map((r) => el("option", { value: r.name }, `${r.name} (${r.task}${r.ed_version ? `, ed ${r.ed_version}` : ""})`)));
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
        el("h4", {}, `${p.patient_id} · `, catBadge(p.category), `${p.triaged ? "" : p.category ? " (self-report)" : " (untriaged: urgency unknown)"} · waited ${p.wait} · ${p.condition.replace("_", " ")}`),
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
