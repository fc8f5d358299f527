"""The app in a real browser: `cocomix-lens app` on a free port, Debian's chromium driven by
Playwright. Steer a concept and see the text change; five sessions steer at once.

The README's screenshots come from here: with COCOMIX_LENS_SCREENSHOTS=DIR the page
screenshots are copied into DIR, and COCOMIX_LENS_BROWSER_RUN=RUN serves that run (e.g. the
`make demo` run) instead of the micro one:

    COCOMIX_LENS_BROWSER_RUN=runs/demo COCOMIX_LENS_SCREENSHOTS=docs/screenshots \
        .venv/bin/python -m pytest tests/app/test_app_browser.py -k changes_the_text

Outside CI this skips only when chromium is absent (`apt-get install -y chromium`); under CI
(`CI` set, as .ci/run does) a missing browser fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers_app import MEASURED_STRENGTH, add_measured_steering, build_root, find_steerable

PAGES = ("concepts", "inspect", "steer", "training")
# The Concepts page's screenshot searches a topic of the synthetic world (`make demo`'s run
# lists that topic's concepts; the micro run's corpus has none of it)
SEARCH = "farming"
SESSIONS = 5


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium); the browser "
                    "test needs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its children (the streamlit server), MiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        status = Path(f"/proc/{p}/status")
        if status.is_file():
            m = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
            total += int(m.group(1)) if m else 0
    return total / 1024


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(x) for x in path.read_text().split()] if path.is_file() else []
    return kids + [g for k in kids for g in _children(k)]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """(base URL, server process, root, log path): `cocomix-lens app` on the micro run."""
    browser_path = chromium()
    pytest.importorskip("playwright", reason="pip install playwright (a dev dependency)")
    tmp = tmp_path_factory.mktemp("browser")
    given = os.environ.get("COCOMIX_LENS_BROWSER_RUN")
    # the session's micro run (tests/conftest.py) only when no run is given: built on demand
    run = Path(given).resolve() if given else \
        build_root(tmp, request.getfixturevalue("micro_run")[1]) / "run"
    root = run.parent
    # the micro run gets a measured steering result for its densest concept (a demo run has
    # its own from `make demo`)
    measured = None if given else add_measured_steering(run)
    port = free_port()
    exe = Path(sys.executable).with_name("cocomix-lens")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "training.cli"]
    log = tmp / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*cmd, "app", "--root", str(root), "--run", str(run),
                                 "--port", str(port)], cwd=tmp, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        yield {"base": base, "proc": proc, "root": root, "run": run, "log": log, "tmp": tmp,
               "chromium": browser_path, "measured": measured}
    finally:  # the server and anything it started, however it answers SIGTERM
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(base: str, proc, log: Path, timeout: float = 180) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"cocomix-lens app exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=server["chromium"],
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


# Counts every change of the app's script state (initial, running, notRunning, ...), so that
# act() can wait for the rerun an interaction starts: on a loaded machine that rerun may begin
# after the page still looked idle, and a check made then reads the page before the change.
WATCH_RUNS = """() => {
  if (window.__cocomixRuns !== undefined) return;
  window.__cocomixRuns = 0;
  const app = document.querySelector('[data-testid=stApp]');
  new MutationObserver(records => { window.__cocomixRuns += records.length; })
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def settle(page, timeout: float = 120_000) -> None:
    """Wait until the script run finished (the app says notRunning) and charts are drawn."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]",
                           timeout=timeout)
    page.wait_for_selector("[data-testid=stStatusWidget]", state="detached", timeout=timeout)
    page.wait_for_function(  # lazily loaded charts: skeletons first, then the plot
        "() => !document.querySelector('[data-testid=stSkeleton]') && "
        "[...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
        ".every(c => c.querySelector('.main-svg'))", timeout=timeout)
    page.evaluate(WATCH_RUNS)


def start(page, action) -> None:
    """Do `action` (a click, a key press that changes a widget) and wait for the script run
    it starts. Only for actions that rerun the script: `pick` and `enter` skip the ones that
    would leave a widget's value as it is."""
    before = page.evaluate("() => window.__cocomixRuns")
    action()
    page.wait_for_function("n => window.__cocomixRuns > n", arg=before, timeout=30_000)


def act(page, action, timeout: float = 120_000) -> None:
    """`start(page, action)`, then wait until that run finished."""
    start(page, action)
    settle(page, timeout)


def chosen(page, label: str) -> str:
    """The option the selectbox labelled `label` shows (its combobox input's value: the
    widget's text is only its label)."""
    return page.get_by_role("combobox", name=label).first.input_value()


def pick(page, label: str, option) -> None:
    """Choose `option` (a name or a pattern) in the selectbox labelled `label`."""
    shown = chosen(page, label)
    if (option.search(shown) if isinstance(option, re.Pattern) else shown == option):
        return  # already chosen: choosing it again starts no run
    page.locator("[data-testid=stSelectbox]").filter(has_text=label).first.click()
    name = option if isinstance(option, re.Pattern) else re.compile(f"^{re.escape(option)}$")
    act(page, lambda: page.get_by_role("option", name=name).first.click())


def enter(page, box, text: str, key: str = "Enter") -> None:
    """Type `text` into the text box `box` and submit it with `key`."""
    if box.input_value() == text:
        return  # the same text again starts no run
    box.fill(text)
    act(page, lambda: box.press(key))


def assert_no_traceback(page) -> None:
    text = page.inner_text("body")
    assert "Traceback" not in text and "bug in cocomix-lens" not in text, text[:2000]
    assert page.locator("[data-testid=stException]").count() == 0


def open_page(browser, base: str, name: str, **query):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    q = "&".join(f"{k}={v}" for k, v in {"page": name, **query}.items())
    page.goto(f"{base}/?{q}")
    settle(page)
    return page


def choose(page, concept: int, strength: float, op: str = "scale") -> None:
    """Pick `concept` through the search box and the picker, `op`, and set the strength."""
    pick(page, "Operation", op)
    enter(page, page.get_by_role("textbox", name="Search concepts"), str(concept))
    pick(page, "Concept", re.compile(rf"^{concept}(:|$)"))
    thumb = page.get_by_role("slider").first  # the strength slider comes first
    end = "End" if strength > 0 else "Home"
    if thumb.get_attribute("aria-valuenow") != thumb.get_attribute(
            "aria-valuemax" if strength > 0 else "aria-valuemin"):
        thumb.focus()
        act(page, lambda: thumb.press(end))


def generate(page) -> None:
    """Start a generation (`samples` waits for it): five sessions can generate at once."""
    start(page, lambda: page.get_by_role("button", name="Generate").click())


def samples(page, timeout: float = 180_000) -> dict[str, str]:
    page.wait_for_selector(".cocomix-sample[data-name=steered]", timeout=timeout)
    settle(page)
    return {name: page.locator(f".cocomix-sample[data-name={name}]").inner_text()
            for name in ("default", "steered")}


def test_steering_in_the_browser_changes_the_text_and_no_page_shows_a_traceback(server,
                                                                                browser):
    concept, strength = find_steerable(server["run"])
    shots = server["tmp"] / "screenshots"
    shots.mkdir()
    page = open_page(browser, server["base"], "steer")
    choose(page, concept, strength)
    generate(page)
    texts = samples(page)
    assert texts["default"].strip() and texts["steered"] != texts["default"]
    assert f"gives concept {concept} when" in page.inner_text("body")  # the one picked
    assert_no_traceback(page)
    page.screenshot(path=str(shots / "steer.png"), full_page=True)
    page.close()
    for name in ("concepts", "inspect", "training"):
        page = open_page(browser, server["base"], name)
        assert_no_traceback(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.close()
    page = open_page(browser, server["base"], "concepts", concept=concept)
    assert_no_traceback(page)
    page.screenshot(path=str(shots / "concept.png"), full_page=True)
    page.close()
    steer_measured_page(browser, server, shots / "steer.png")  # the tour's Steer picture
    search_concepts_page(browser, server, SEARCH, shots / "concepts_search.png")
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted([*PAGES, "concept",
                                                                  "concepts_search"])
    keep = os.environ.get("COCOMIX_LENS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copyfile(png, Path(keep) / png.name)


def steer_measured_page(browser, server, png: Path) -> None:
    """The Steer page after "Use this edit" (the run's measured recommendation, as a new
    user would click it) on the opening it moved most, generated: the edit in the controls
    is the measured one, no traceback; a full-page screenshot at `png`."""
    from cocomix_lens import Run

    doc = Run.open(server["run"]).steering
    arm = doc["final"]["arms"]["cocomix"]
    per = arm["summary"].get("oracle_on_target", {}).get("per_prompt")
    prompt = "The" if not per else max(  # the opening with the largest gain over unsteered
        zip(arm["prompts"], per["steered"], per["unsteered"]), key=lambda r: r[1] - r[2])[0]
    page = open_page(browser, server["base"], "steer")
    page.get_by_text("Measured on this run: concepts that steer").click()  # an expander
    strength = float(doc["chosen"]["cocomix_add"])
    act(page, lambda: page.get_by_role("button", name=f"Use this edit: add {strength:g} std "
                                                      f"to concept {doc['concept']}").click())
    enter(page, page.get_by_role("textbox", name="Prompt"), prompt, "Control+Enter")
    slider = page.get_by_role("slider", name="Strength")  # it holds the measured edit
    assert float(slider.input_value()) == strength
    generate(page)
    texts = samples(page)
    body = page.inner_text("body")
    assert texts["steered"].strip() and f"gives concept {doc['concept']} when" in body
    assert "slider range" not in body  # no strength was clamped to the slider
    assert_no_traceback(page)
    page.screenshot(path=str(png), full_page=True)
    page.close()


def search_concepts_page(browser, server, query: str, png: Path) -> None:
    """The Concepts page after a search by meaning: it lists the library's matches
    (Catalogue.search), no traceback; a full-page screenshot at `png`."""
    from cocomix_lens import Run

    cat = Run.open(server["run"]).catalogue
    n_found = len(cat.search(query, limit=None))
    page = open_page(browser, server["base"], "concepts")
    enter(page, page.get_by_role("textbox", name=re.compile("Search by meaning")), query)
    assert f"{n_found} of {len(cat)} concepts" in page.inner_text("body")
    assert_no_traceback(page)
    page.screenshot(path=str(png), full_page=True)
    page.close()


def test_main_path_concept_row_card_steer_with_measured_setting_generate_and_sweep(server,
                                                                                  browser):
    """Concepts -> click the first row -> its card -> "Steer with this concept" (prefilled
    with the run's measured setting, labelled) -> Generate -> Strength sweep: no exception
    anywhere, and the sweep's figures are the library's `sweep` at the page's settings."""
    import cocomix_lens.world.steering_scorers  # noqa: F401  (as the app and steer-eval do)
    from app.steer_logic import Sampling, default_strengths, sweep_settings
    from cocomix_lens import Run
    from cocomix_lens.steering.best import best_setting
    from cocomix_lens.steering.evaluate import sweep
    from training.steering_screen import densest_concepts

    run = Run.open(server["run"])
    concept = densest_concepts(run, 1)[0][0]  # the table's first row (sorted by density)
    setting = best_setting(run, concept)
    if server["measured"] is not None:
        assert (concept, setting.strength) == (server["measured"], MEASURED_STRENGTH)

    page = open_page(browser, server["base"], "concepts")
    grid = page.locator("[data-testid=stDataFrame]").first
    box = grid.bounding_box()
    act(page, lambda: page.mouse.click(box["x"] + 12, box["y"] + 35 + 17))  # row 1's cell
    assert_no_traceback(page)
    assert page.get_by_text(re.compile(rf"^Concept {concept}:")).count() >= 1
    act(page, lambda: page.get_by_role("button", name="Steer with this concept").click())
    assert_no_traceback(page)
    body = page.inner_text("body")
    assert f"Setting: {setting.op} {setting.strength:g} (std), from {setting.source}" in body
    generate(page)
    texts = samples(page)
    assert texts["steered"].strip() and f"gives concept {concept} when" in page.inner_text(
        "body")
    act(page, lambda: page.get_by_role("button", name="Strength sweep").click(),
        timeout=300_000)
    assert_no_traceback(page)
    shown = page.locator("[data-testid=stCode]").first.inner_text()
    sampling, evaluation = sweep_settings(Sampling())
    lib = sweep(run, concept, setting.op, default_strengths(setting.op), ["The"], sampling,
                evaluation)
    assert " ".join(shown.split()) == " ".join(lib.table().split())
    page.close()


def test_five_sessions_steer_at_once_with_the_model_loaded_once(server, browser):
    concept, strength = find_steerable(server["run"])
    pages = [open_page(browser, server["base"], "steer") for _ in range(SESSIONS)]
    before = rss_mib(server["proc"].pid)
    for page in pages:  # set up every session, then start all five generations together
        choose(page, concept, strength)
    for page in pages:
        generate(page)
    results = [samples(page) for page in pages]
    after = rss_mib(server["proc"].pid)
    for page, texts in zip(pages, results):
        assert texts == results[0]  # same seed, same spec: the same two texts everywhere
        assert texts["steered"] != texts["default"]
        assert_no_traceback(page)
        page.close()
    loads = server["log"].read_text().count("loaded student of run")
    assert loads == 1, server["log"].read_text()[-3000:]
    report = {"sessions": SESSIONS, "server_rss_mib_before": round(before, 1),
              "server_rss_mib_after": round(after, 1), "student_loads": loads}
    (server["tmp"] / "sessions.json").write_text(json.dumps(report))
    print(f"\n5 concurrent sessions: {report}")


def test_concepts_page_shows_explanations_and_finds_a_concept_by_another_word_form(server,
                                                                                    browser):
    from cocomix_lens import Run
    from cocomix_lens.catalogue.words import fold

    cat = Run.open(server["run"]).catalogue
    heads = cat.concepts["explanation"].str.split(" — ").str[0].str.split(";").str[0]
    words = ~cat.concepts["dead"] & heads.str.fullmatch(r"[a-z]{3,}")  # a word, not a piece
    # whose "-ing" form folds back to it ("farm"/"farming"; not "header"/"headering")
    words &= heads.map(lambda h: isinstance(h, str) and fold(h + "ing") == fold(h))
    # the best-detected one that its head word itself finds first (on the demo run 16 concepts
    # are headed "intro" and "there" is every intro concept's keyword: which of those ranks
    # first is the search's choice, not what this test checks, the folding of word forms)
    ranked = cat.concepts.loc[words, "detection"].sort_values(ascending=False).index
    c = next(int(i) for i in ranked if int(cat.search(heads[i], limit=1).index[0]) == int(i))
    head = heads[c]
    query = head + "ing"  # another word form of its head: the search folds it back
    page = open_page(browser, server["base"], "concepts")
    enter(page, page.get_by_role("textbox", name=re.compile("Search by meaning")), query)
    grid = page.locator("[data-testid=stDataFrame]").first
    assert grid.is_visible()
    ids = [int(i) for i in cat.search(query, limit=None).index]
    assert c in ids[:3]  # so among the top matches the page lists as text
    body = page.inner_text("body")
    assert f"{len(ids)} of {len(cat)} concepts" in body
    assert f"concept {c}: {cat.concepts.loc[c, 'explanation']}" in body  # top matches
    assert "detection AUROC" in body
    assert_no_traceback(page)
    shots = server["tmp"] / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "concepts-search.png"), full_page=True)
    page.close()
    page = open_page(browser, server["base"], "concepts", concept=c)
    body = page.inner_text("body")
    assert "Explanation:" in body and "detection AUROC" in body
    assert "Contexts by quantile bin" in body and "Nearest concepts" in body
    assert_no_traceback(page)
    page.screenshot(path=str(shots / "concept-card.png"), full_page=True)
    page.close()


def test_steer_toward_a_name_in_the_browser_loads_the_recommended_edit_and_generates(server,
                                                                                     browser):
    """Steer page -> "Steer toward" -> a concept name -> "Use the recommended edit" -> Generate:
    the controls hold the catalogue's best match with the recommended op (as the library's
    `toward` resolves it), the page says why, and the steered sample is generated from it."""
    from cocomix_lens import Run
    from cocomix_lens.catalogue.search import search
    from cocomix_lens.steering.spec import position_label
    from cocomix_lens.steering.toward import RECOMMENDED

    name = "ship"
    hit = int(search(Run.open(server["run"]).catalogue, name, limit=1).index[0])
    page = open_page(browser, server["base"], "steer")
    page.get_by_text("Steer toward a topic or a concept by name").click()  # an expander
    enter(page, page.get_by_role("textbox", name=re.compile("or a concept name")), name)
    act(page, lambda: page.get_by_role(
        "button", name=f"Use the recommended edit toward {name!r}").click())
    assert_no_traceback(page)
    body = page.inner_text("body")
    assert f"concept {hit}, the catalogue's best match for {name!r}" in body
    assert chosen(page, "Operation") == RECOMMENDED.op
    where = position_label(RECOMMENDED.positions, RECOMMENDED.span)  # e.g. new_tokens:8
    assert page.get_by_role("textbox", name="Positions").input_value() == where
    pick(page, "Operation", RECOMMENDED.op)  # already chosen: starts no run, returns at once
    generate(page)
    texts = samples(page)
    assert texts["steered"].strip() and texts["default"].strip()
    assert f"gives concept {hit} when" in page.inner_text("body")  # the concept it loaded
    assert_no_traceback(page)
    page.close()
