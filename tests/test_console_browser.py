"""The web console in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against a running ``edmarl-server``.

* Play: one whole basic_triage episode as the human triage nurse, by clicks and key
  presses only; the score the page shows must equal the env's score for the same nurse
  actions (heuristic teammates) on the same seed, computed here with ``ed_triage_v0``.
* Watch: a heuristic-team episode played to the end (autoplay), then a refused action
  (the session deleted behind the page's back) shows a clear message.
* Results: a run directory written by ``experiments/run.py`` opens with its tables and
  plots.

Screenshots are written as artifacts: ``$EDMARL_CONSOLE_SHOTS`` (e.g. ``docs/images`` to
refresh the README's) or a pytest temporary directory, printed at the end.

Where chromium, chromedriver or selenium is missing the tests skip with the install
command; with ``CI=true`` they fail instead (``.ci/run`` installs the browser).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_fixtures import ROOT, ServerProcess

from agents.ed_evaluation import evaluate_teams, team_context
from agents.roles import make_team
from envs import ed_triage_v0
from envs.clinical.presentation import Drug
from envs.ed.config import AGENTS, DRUGS, N_CATEGORIES, N_DRUGS

TASK = "basic_triage"
PLAY_SEED = 7
WATCH_SEED = 3
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver; pip install selenium"


def _missing() -> list[str]:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return missing


@pytest.fixture(scope="module")
def browser_available() -> None:
    missing = _missing()
    if missing:
        reason = f"the console's browser test needs {', '.join(missing)} ({INSTALL})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$EDMARL_CONSOLE_RESULTS`` (an existing results root), else one real run directory
    written by run.py without training (a few seconds)."""
    given = os.environ.get("EDMARL_CONSOLE_RESULTS")
    if given:
        return Path(given)
    root = tmp_path_factory.mktemp("runs")
    cmd = [sys.executable, "experiments/run.py", "--task", TASK, "--no-train",
           "--compare", "heuristic", "random", "--eval-episodes", "3",
           "--output", str(root / "heuristic-3")]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return root


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = Path(os.environ.get("EDMARL_CONSOLE_SHOTS") or tmp_path_factory.mktemp("console_shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


class ConsoleServer(ServerProcess):
    """``edmarl-server`` (the installed script when on PATH, else the same ``main``)."""

    def __init__(self, results_root: Path) -> None:
        super().__init__()
        self.results_root = results_root

    def start(self) -> ConsoleServer:
        script = shutil.which("edmarl-server")
        head = [script] if script else [sys.executable, "-m", "envs.server.app"]
        cmd = [*head, "--port", str(self.port), "--log-level", "warning"]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "EDMARL_RESULTS_ROOT": str(self.results_root),
        }
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        return self


@pytest.fixture(scope="module")
def server(browser_available: None, results_root: Path):
    s = ConsoleServer(results_root).start()
    try:
        yield s.wait_ready(60)
    finally:
        s.stop()


@pytest.fixture(scope="module")
def driver(browser_available: None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--force-device-scale-factor=1"):  # fmt: skip
        opts.add_argument(arg)
    d = webdriver.Chrome(
        service=Service(executable_path=shutil.which("chromedriver")), options=opts
    )
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


# -- page helpers ---------------------------------------------------------------------


def _settle(d, before: int | None = None, timeout: float = 120.0) -> int:
    """Wait until the page is idle (and has finished one more update than ``before``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = d.find_element("tag name", "body")
        updates = int(body.get_attribute("data-updates") or 0)
        if body.get_attribute("data-busy") == "0" and (before is None or updates > before):
            return updates
        time.sleep(0.05)
    raise AssertionError(f"page still busy after {timeout} s: {_error(d)!r}")


def _updates(d) -> int:
    return int(d.find_element("tag name", "body").get_attribute("data-updates") or 0)


def _error(d) -> str:
    return d.find_element("id", "err").text


def _open(d, server: ConsoleServer, view: str) -> None:
    d.get("about:blank")  # a fresh page load (a new hash alone would not reload it)
    d.get(f"{server.url}/#view={view}")
    deadline = time.monotonic() + 30
    while d.find_element("tag name", "body").get_attribute("data-ready") != "1":
        assert time.monotonic() < deadline, f"console did not load: {_error(d)!r}"
        time.sleep(0.05)
    _settle(d)


def _choose(d, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(d.find_element("id", select_id)).select_by_value(value)


def _option_text(d, select_id: str, value: str) -> str:
    return d.find_element("css selector", f'#{select_id} option[value="{value}"]').text


def _type(d, input_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = d.find_element("id", input_id)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)


def _shot(d, path: Path) -> None:
    """The whole page (not only the viewport) as a 256-colour PNG (a third of the bytes;
    Pillow comes with matplotlib)."""
    import base64
    import io

    from PIL import Image

    shot = d.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def _replay_score(
    seed: int, nurse: list[tuple[str, int] | None], role: str = "triage_nurse"
) -> float:
    """The env's score when the human ``role`` plays ``nurse`` (None = END; else
    (patient id, category) for the nurse, (patient id, drug) for the pharmacist,
    (patient id, 0) for the consultant) at each sub-step where that role can act (as the
    page asks for a decision), with heuristic teammates."""
    env = ed_triage_v0.parallel_env(task=TASK)
    obs, _ = env.reset(seed=seed)
    mates = make_team(None, team_context(env), seed)
    for p in mates.values():
        p.reset(seed)
    slot = {p.patient_id: p.slot for p in env.state.scenario.patients}
    encode = {
        "triage_nurse": lambda pid, c: slot[pid] * N_CATEGORIES + c - 1,
        "pharmacist": lambda pid, d: slot[pid] * N_DRUGS + DRUGS.index(Drug(d)),
        "consultant": lambda pid, _: slot[pid],
    }[role]
    todo = list(nurse)
    infos: dict = {}
    while env.agents:
        mask = obs[role]["action_mask"]
        end = len(mask) - 1
        act = end
        if mask[:end].any():  # the role's turn is not over: the page waited for a decision
            choice = todo.pop(0)
            if choice is not None:
                act = encode(*choice)
        actions = {a: mates[a].act(obs[a]) for a in AGENTS if a != role}
        actions[role] = act
        obs, _, _, _, infos = env.step(actions)
    assert not todo, f"the page asked for fewer decisions than were made: {todo}"
    return float(infos["consultant"]["score"])


# -- the tests ------------------------------------------------------------------------


def test_play_a_whole_episode_as_the_nurse(server, driver, shots):
    from selenium.webdriver.common.keys import Keys

    d = driver
    _open(d, server, "play")
    _choose(d, "play-task", TASK)
    _type(d, "play-seed", str(PLAY_SEED))
    _choose(d, "play-role", "triage_nurse")
    _choose(d, "play-mates", "heuristic")
    # A trained team of this task under the results root (EDMARL_CONSOLE_RESULTS) joins
    # the comparison at the end.
    runs = [o.get_attribute("value") for o in d.find_elements("css selector", "#play-run option")]
    trained = next((r for r in runs if r and f"({TASK})" in _option_text(d, "play-run", r)), "")
    _choose(d, "play-run", trained)
    n = _updates(d)
    d.find_element("id", "play-start").click()
    n = _settle(d, n)
    _shot(d, shots / "console_play.png")  # the first presentation cards
    decisions: list[tuple[str, int] | None] = []
    for turn in range(200):
        assert not _error(d), _error(d)
        if d.find_element("id", "play-result").is_displayed():
            break
        cards = d.find_elements("css selector", "#play-cards .card")
        if turn == 2 or not cards:  # once by choice, and whenever nothing is left to triage
            d.find_element("tag name", "body").send_keys("e")
            decisions.append(None)
        else:
            card = cards[0]
            pid = card.get_attribute("data-patient")
            reported = int(card.get_attribute("data-self-report"))
            category = [reported, max(1, reported - 1), min(5, reported + 1)][turn % 3]
            if turn % 2:  # keyboard: focus the card, press the digit
                d.execute_script("arguments[0].focus()", card)
                card.send_keys(str(category))
            else:
                card.find_element("css selector", f'button[data-category="{category}"]').click()
            decisions.append((pid, category))
        n = _settle(d, n)
    else:
        raise AssertionError("the episode did not end within 200 decisions")
    shown = d.find_element("id", "play-score")
    score = float(shown.get_attribute("data-value"))
    expected = _replay_score(PLAY_SEED, decisions)
    assert score == expected
    assert shown.text == f"{expected:.4f}"
    assert sum(x is not None for x in decisions) >= 3
    rows = d.find_elements("css selector", "#play-summary tbody tr")
    labels = [r.find_element("tag name", "td").text for r in rows]
    teams = ["heuristic team", "trained team"] if trained else ["heuristic team"]
    assert labels == ["your team", *teams, "clairvoyant bound"]
    heuristic = evaluate_teams(TASK, {"h": None}, [PLAY_SEED])[0]
    assert rows[1].find_elements("tag name", "td")[1].text == f"{heuristic['score']:.4f}"
    assert rows[-1].find_elements("tag name", "td")[1].text == f"{heuristic['oracle_score']:.4f}"
    d.find_element("tag name", "body").send_keys(Keys.HOME)
    _shot(d, shots / "console_play_end.png")
    print(f"\nconsole screenshots in {shots}")


def test_watch_a_heuristic_episode_to_the_end(server, driver, shots):
    d = driver
    _open(d, server, "watch")
    _choose(d, "watch-task", TASK)
    _type(d, "watch-seed", str(WATCH_SEED))
    for role in ("triage_nurse", "pharmacist", "consultant"):
        _choose(d, f"watch-player-{role}", "heuristic")
    n = _updates(d)
    d.find_element("id", "watch-start").click()
    n = _settle(d, n)
    body = d.find_element("tag name", "body")
    body.send_keys("n")  # one sub-step, then a whole time step, by key
    n = _settle(d, n)
    body.send_keys("t")
    n = _settle(d, n)
    assert "time step 1 of 10" in d.find_element("id", "watch-board").text
    _choose(d, "watch-delay", "150")
    body.send_keys("a")  # autoplay to the end
    deadline = time.monotonic() + 180
    while not d.find_elements("id", "watch-board-score"):
        assert not _error(d), _error(d)
        assert time.monotonic() < deadline, "autoplay did not finish"
        time.sleep(0.2)
    _settle(d)
    expected = evaluate_teams(TASK, {"h": None}, [WATCH_SEED])[0]["score"]
    shown = d.find_element("id", "watch-board-score")
    assert float(shown.get_attribute("data-value")) == expected
    env = ed_triage_v0.parallel_env(task=TASK)
    env.reset(seed=WATCH_SEED)
    debrief = d.find_elements("css selector", "#watch-board [aria-label='Debrief'] tbody tr")
    assert len(debrief) == len(env.state.scenario.patients)
    assert d.find_element("id", "watch-substep").get_attribute("disabled") is not None
    _shot(d, shots / "console_watch_end.png")

    # A busier ED for the picture, then a refused action: the session is deleted behind
    # the page's back.
    _choose(d, "watch-task", "generated")
    _type(d, "watch-seed", "1")
    n = _updates(d)
    d.find_element("id", "watch-start").click()
    n = _settle(d, n)
    for _ in range(5):
        d.find_element("tag name", "body").send_keys("t")
        n = _settle(d, n)
    assert "time step 5 of" in d.find_element("id", "watch-board").text
    _shot(d, shots / "console_watch.png")
    sid = d.find_element("id", "watch-board").get_attribute("data-session")
    assert httpx.delete(f"{server.url}/sessions/{sid}").status_code == 200
    d.find_element("tag name", "body").send_keys("n")
    _settle(d, n)
    assert "Your session no longer exists" in _error(d)
    assert "Press Start to begin a new episode" in _error(d)


def test_results_view_opens_a_run_directory(server, driver, shots, results_root):
    d = driver
    _open(d, server, "results")
    names = [
        o.get_attribute("value") for o in d.find_elements("css selector", "#results-run option")
    ]
    assert names, f"no run listed under {results_root}"
    n = _updates(d)
    d.find_element("id", "results-open").click()
    _settle(d, n)
    body = d.find_element("id", "results-body")
    assert not _error(d), _error(d)
    assert "heuristic" in body.text and "Paired differences" in body.text
    imgs = body.find_elements("tag name", "img")
    assert imgs and all(i.get_attribute("alt") for i in imgs)
    assert all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)
    _shot(d, shots / "console_results.png")


@pytest.mark.parametrize("role", ["consultant", "pharmacist"])
def test_play_the_other_roles_by_clicks(server, driver, shots, role):
    d = driver
    _open(d, server, "play")
    _choose(d, "play-task", TASK)
    _type(d, "play-seed", str(PLAY_SEED))
    _choose(d, "play-role", role)
    n = _updates(d)
    d.find_element("id", "play-start").click()
    n = _settle(d, n)
    decisions: list[tuple[str, int | str] | None] = []
    for _ in range(200):
        assert not _error(d), _error(d)
        if d.find_element("id", "play-result").is_displayed():
            break
        cards = d.find_elements("css selector", "#play-cards .card")
        if not cards:
            d.find_element("id", "play-endturn").click()
            decisions.append(None)
        else:
            card = cards[-1]  # not always the heuristic's choice
            button = card.find_elements("css selector", ".choices button, button")[0]
            pid = card.get_attribute("data-patient")
            decisions.append((pid, button.get_attribute("data-drug") or 0))
            button.click()
        n = _settle(d, n)
    else:
        raise AssertionError("the episode did not end within 200 decisions")
    shown = float(d.find_element("id", "play-score").get_attribute("data-value"))
    assert shown == _replay_score(PLAY_SEED, decisions, role)
    assert any(x is not None for x in decisions)


def test_a_run_trained_on_v1_starts_its_episodes_in_v1(server, driver, results_root):
    """A trained team plays the ed version its run trained on: choosing such a run starts
    the episode in that version (the server refuses a mismatch, tests/test_console.py)."""
    if os.environ.get("EDMARL_CONSOLE_RESULTS"):
        pytest.skip("writes a run directory into the results root")
    import json

    run = results_root / "trained-v1"
    run.mkdir()
    try:
        (run / "summary.json").write_text('{"summary": [], "paired": []}')
        (run / "config.json").write_text(
            json.dumps({"task": TASK, "ruleset": "ed", "ed_version": "v1"})
        )
        (run / "checkpoint").mkdir()
        d = driver
        _open(d, server, "watch")
        assert "ed v1" in _option_text(d, "watch-run", "trained-v1")
        _choose(d, "watch-task", TASK)
        _choose(d, "watch-run", "trained-v1")
        before = _updates(d)
        d.find_element("id", "watch-start").click()
        _settle(d, before)
        assert not _error(d), _error(d)
        assert f"({TASK}, ed v1)" in d.find_element("id", "watch-board").text
    finally:
        shutil.rmtree(run)
