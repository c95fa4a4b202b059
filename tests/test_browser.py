"""The learner's path in a real browser: JupyterLab + headless Chromium, every notebook, "Run All".

papermill cannot see what a learner sees (widgets, figures after training, red boxes, a notebook marked modified
on open). This tier starts JupyterLab on 127.0.0.1 (a free port, a token, no browser) with the smoke profile set
the way a workshop host sets it (``CRAFTLIB_PROFILE=smoke`` in the server's environment, the notebooks keep
``PROFILE = None``), and drives it with Playwright for Python and Debian's ``chromium``. For each notebook, in
order: open it (it must not be marked modified), run all cells, wait for the kernel to be idle, then check the
promises of ``tests/notebook_expectations.py`` (no error and no red output, figures rendered as images, entity
HTML views) and, in notebook 05, that the error browser widget renders and answers a filter change. A screenshot
per notebook is saved under the test's temporary folder (the path is printed).

Notebook 04 is also stopped once, the way a learner presses the stop button: during two-step's step 2, after a
checkpoint (its kernel checkpoints every few seconds, ``CRAFTLIB_CHECKPOINT_MINUTES``), the kernel is
interrupted; the training cell must end in one line ("Stopped during two-step-minilm-smoke-case-viterbi step 2 (3 of 3) at
epoch ...; rerun the cell to resume"), no traceback, and Run All again must reuse the finished runs and resume the
stopped training from its checkpoint. Its plan line (with the estimate), its named bars ("k of 3", collapsed to
one line when done) and the absence of widget outputs (a saved notebook reopened would show "Error displaying
widget: model not found" for each) are checked on the way.

The notebooks run from a temporary copy and write data, models and results to a temporary folder: the
repository is not touched. That copy is a git checkout of its own with the repository's ``.gitattributes``,
``.gitignore``, ``make git-filter`` and JupyterLab started as ``make lab`` starts it (``--config`` with the
repository's ``jupyter_server_config.py``): after each notebook has run, it is saved (as JupyterLab's autosave
would), must hold its outputs on disk, and ``git status`` must be clean (``git diff`` empty, nothing to stage:
outputs never land in tracked files, and the server's post-save hook refreshes the index that git alone would
leave listing the notebook until ``git add``). Run with ``make test-browser`` (``pytest -m browser``); it needs
``pip install -e .[browser]`` and ``apt-get install chromium``. Without them the tier is skipped, unless
``CRAFTLIB_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_local_craft
from tests.notebook_expectations import EXPECTED, problems

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CRAFTLIB_CHROMIUM", "/usr/bin/chromium")
#: Longest wait for one notebook's "Run All": smoke notebooks take seconds to a minute on an idle 2-core CPU, but
#: many times that on a shared, loaded machine (CRAFTLIB_BROWSER_TIMEOUT, seconds).
RUN_TIMEOUT_S = int(os.environ.get("CRAFTLIB_BROWSER_TIMEOUT", "1800"))
pytestmark = pytest.mark.browser


def _require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[browser]')")
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium, or set CRAFTLIB_CHROMIUM)")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("JupyterLab (make setup)")
    missing += [f"{tool} (the clean-checkout check)" for tool in ("git", "make") if shutil.which(tool) is None]
    if missing:
        msg = "browser tier needs " + " and ".join(missing)
        if os.environ.get("CRAFTLIB_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (CRAFTLIB_REQUIRE_BROWSER=1)")
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """JupyterLab user settings of the test profile: every cell kept in the page (no windowing, so that every
    output can be counted) and no news/update pop-up."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
    }
    for rel, value in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a temporary copy of notebooks/ (smoke profile from the environment); stopped at
    the end whatever happens."""
    _require_browser()
    require_local_craft()
    root = tmp_path_factory.mktemp("browser")
    repo = root / "repo"  # a checkout of its own: the notebooks, and what keeps their outputs out of git
    nbdir = repo / "notebooks"
    nbdir.mkdir(parents=True)
    for name in EXPECTED:
        shutil.copy(ROOT / "notebooks" / name, nbdir / name)
    _init_checkout(repo)
    for sub in ("data", "models", "results", "settings", "workspaces", "config", "runtime", "ipython",
                "screenshots"):
        (root / sub).mkdir()
    _write_settings(root / "settings")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the learner's kernel: matplotlib's inline backend, as in JupyterLab
    env.update({
        "CRAFTLIB_PROFILE": "smoke",  # how a workshop host sets the profile for the room
        "CRAFTLIB_DATA_DIR": str(root / "data"),
        "CRAFTLIB_MODELS_DIR": str(root / "models"),
        "CRAFTLIB_RESULTS_DIR": str(root / "results"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "IPYTHONDIR": str(root / "ipython"),
    })
    port, token = _free_port(), secrets.token_hex(16)
    log = (root / "jupyterlab.log").open("w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={nbdir}", "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
           f"--config={ROOT / 'jupyter_server_config.py'}"]  # as `make lab` starts it
    proc = subprocess.Popen(cmd, cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}; see {root / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {base} within 120 s; see {root / 'jupyterlab.log'}")
            time.sleep(1)
        print(f"\nJupyterLab {base} (root {nbdir}); log {root / 'jupyterlab.log'}; screenshots {root / 'screenshots'}")
        yield {"base": base, "token": token, "root": root, "nbdir": nbdir, "repo": repo}
    finally:
        _stop(proc)
        log.close()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@craftlib.invalid", *args],
                          cwd=repo, capture_output=True, text=True, check=True).stdout


def _init_checkout(repo: Path) -> None:
    """``repo`` as a fresh clone would be after ``make setup``: committed notebooks, the filter registered."""
    for name in ("Makefile", ".gitattributes", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    _git(repo, "init", "-q")
    subprocess.run(["make", "--no-print-directory", "git-filter", f"PYTHON={sys.executable}"], cwd=repo,
                   check=True, capture_output=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "the notebooks as committed")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (its own process group), politely first."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


# JavaScript run in the page; window.jupyterapp exists because of --LabApp.expose_app_in_browser.
_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_READY = f"""(name) => {{
  const p = {_PANEL};
  return !!(p && p.context && p.context.path.endsWith(name) && p.context.isReady && p.sessionContext
            && p.sessionContext.session && p.sessionContext.session.kernel
            && p.sessionContext.session.kernel.status === 'idle');
}}"""
_DONE = f"""() => {{
  const p = {_PANEL};
  const kernel = p.sessionContext.session && p.sessionContext.session.kernel;
  const prompts = [...p.node.querySelectorAll('.jp-InputPrompt')].map(e => e.textContent);
  return !!kernel && kernel.status === 'idle' && prompts.some(t => /\\d/.test(t)) && !prompts.some(t => t.includes('*'));
}}"""
_CELLS = f"""() => {{
  const cells = {_PANEL}.content.model.cells, out = [];
  for (let i = 0; i < cells.length; i++) {{
    const c = cells.get(i);
    if (c.type === 'code') out.push({{cell_type: 'code', id: c.id, execution_count: c.executionCount,
                                      outputs: c.outputs.toJSON()}});
  }}
  return out;
}}"""


def _open(page, lab, name: str) -> None:
    page.goto(f"{lab['base']}/lab/tree/{name}?reset&token={lab['token']}")
    page.wait_for_function(_READY, arg=name, timeout=180_000, polling=500)


def _run_all(page) -> list[dict]:
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(_DONE, timeout=RUN_TIMEOUT_S * 1000, polling=1000)
    page.wait_for_timeout(1500)  # let the last outputs (widgets, images) render
    page.wait_for_function(_DONE, timeout=60_000, polling=500)
    return page.evaluate(_CELLS)


#: Seconds of training between two checkpoints in notebook 04's kernel here (CRAFTLIB_CHECKPOINT_MINUTES; the
#: default is 10 minutes): 0 = after every optimizer step, so that even a smoke step of a few seconds on an idle
#: machine has a checkpoint to resume from before it ends (3 s let an idle machine finish step 2 first).
CHECKPOINT_SECONDS = 0


def _kernel_env(page, name: str, value: str) -> None:
    """Set an environment variable in the open notebook's kernel (before Run All; the notebook is not changed)."""
    page.evaluate(f"""async () => {{
      const k = {_PANEL}.sessionContext.session.kernel;
      await k.requestExecute({{code: "import os; os.environ[{name!r}] = {value!r}", silent: true}}).done;
    }}""")


def _cell_of(lab, name: str, text: str) -> str:
    nb = json.loads((lab["nbdir"] / name).read_text())
    return next(c["id"] for c in nb["cells"] if c["cell_type"] == "code" and text in "".join(c["source"]))


def _outputs_text(cell: dict) -> str:
    out = []
    for o in cell["outputs"]:
        data = o.get("data", {})
        out += [*([data["text/plain"]] if "text/plain" in data else []), o.get("text", ""), *o.get("traceback", [])]
    return "\n".join("".join(x) if isinstance(x, list) else str(x) for x in out)


def _widget_outputs(cells) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in cells for o in c["outputs"])


def _wait_for_checkpoint(models: Path, folder_pattern: str) -> None:
    """Until a complete checkpoint (its time recorded: craftlib.session.ELAPSED_FILE) is in the resumable folder of
    the run whose name matches ``folder_pattern``."""
    from craftlib.session import ELAPSED_FILE

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        try:  # another run's resumable folder may vanish mid-glob (its run finished and was renamed): look again
            if any(re.fullmatch(folder_pattern, p.parent.parent.parent.name)
                   for p in models.glob(f".resume-*/checkpoints/checkpoint-*/{ELAPSED_FILE}")):
                return
        except FileNotFoundError:
            pass
        if (models / "two-step-minilm-smoke-case-viterbi" / "metrics.json").is_file():  # finished: nothing left to stop
            pytest.fail(f"the two-step run finished before a checkpoint of {folder_pattern} appeared in {models}")
        time.sleep(0.05)
    pytest.fail(f"no checkpoint in {models}/{folder_pattern} within {RUN_TIMEOUT_S} s")


def _stop_and_resume(page, lab, name: str, want: dict) -> tuple[list[dict], list[str]]:
    """Notebook 04: Run All, press stop during two-step's step 2 once it has a checkpoint, check the one line, Run
    All again (finished runs reused, the stopped training resumed). Returns the final cells and what went wrong."""
    stop = want["stop"]
    found = []
    _kernel_env(page, "CRAFTLIB_CHECKPOINT_MINUTES", str(CHECKPOINT_SECONDS / 60))
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    _wait_for_checkpoint(lab["root"] / "models", stop["resume_folder"])  # on disk: no race with the page's drawing
    page.evaluate(f"() => {_PANEL}.sessionContext.session.kernel.interrupt()")
    page.wait_for_function(_DONE, timeout=300_000, polling=500)
    page.wait_for_timeout(1000)
    cells = {c["id"]: c for c in page.evaluate(_CELLS)}
    training = cells[_cell_of(lab, name, stop["cell"])]
    errors = [o for o in training["outputs"] if o["output_type"] == "error"]
    text = _outputs_text(training)
    print(f"{name}: stopped; the training cell says:\n{text}")
    if len(errors) != 1 or len(errors[0].get("traceback", [])) != 1:
        found.append(f"the stop did not end in one line: {errors}")
    elif not re.fullmatch(stop["line"], errors[0]["traceback"][0]):
        found.append(f"the stop's line {errors[0]['traceback'][0]!r} does not match {stop['line']!r}")
    found += [f"before the stop: no output matches {p!r}" for p in stop["named"] if not re.search(p, text)]
    other = [c for c in cells.values() if c is not training for o in c["outputs"] if o["output_type"] == "error"]
    if other:
        found.append(f"errors outside the training cell after the stop: {other}")
    found += [f"before the stop: {p}" for p in problems(name, list(cells.values()))  # the plan line, no red
              if p.startswith(("error output", "red", "no printed line")) and not p.startswith("error output: Stopped")]
    start = time.monotonic()
    final = _run_all(page)
    again = _outputs_text({c["id"]: c for c in final}[training["id"]])
    print(f"{name}: Run All again ({time.monotonic() - start:.0f} s); the training cell says:\n{again}")
    found += [f"after the rerun: no output matches {p!r}" for p in stop["resumed"] if not re.search(p, again)]
    return final, found


def _widget_count(page) -> int | None:
    text = page.locator(".jp-OutputArea-output .widget-label", has_text=re.compile(r"errors, page")).first.inner_text()
    m = re.match(r"\s*(\d+) errors", text)
    return int(m.group(1)) if m else None


def _check_error_browser(page) -> list[str]:
    """The error browser of notebook 05 renders and answers: another category, or another type, → another error
    count (a smoke model read with Viterbi may predict nothing, so that every error is 'missed': then the type
    filter must answer)."""
    selects = page.locator(".jp-OutputArea-output .widget-dropdown select")
    if selects.count() < 2:
        return [f"error browser: {selects.count()} dropdown(s) rendered, expected the category and type filters"]
    before = _widget_count(page)
    if before is None:
        return ["error browser: no 'N errors, page i/n' label rendered"]
    tried = []
    for which, select in (("category", selects.nth(0)), ("type", selects.nth(1))):
        options = [o for o in select.locator("option").all_inner_texts() if o != "all"]
        for option in options:  # an option that holds every error leaves the count unchanged: try the next one
            select.select_option(label=option)
            if _count_changes(page, before):
                after = _widget_count(page)
                print(f"error browser: {before} errors for 'all', {after} for {which} {option!r}")
                return []
        select.select_option(label="all")
        tried.append(f"{which} {options}")
    return [f"error browser: changing the {' or the '.join(tried)} never changed the count {before}"]


def _count_changes(page, before: int) -> bool:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            """(before) => [...document.querySelectorAll('.jp-OutputArea-output .widget-label')]
                 .some(e => /^\\s*\\d+ errors/.test(e.textContent) && !e.textContent.startsWith(before + ' errors'))""",
            arg=before, timeout=20_000, polling=250)
    except PlaywrightTimeout:
        return False
    return True


def _check_tag_box(page) -> list[str]:
    """The text box of notebook 07 renders and tags what is typed: a new text gives a new mention count and view."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(".jp-OutputArea-output .widget-textarea textarea")
    if box.count() < 1:
        return ["tag box: no text box rendered"]
    typed = "This sentence was typed by the browser test. Glucose and insulin in mouse T cells express Pax6."
    box.last.fill(typed)
    page.locator(".jp-OutputArea-output .widget-button", has_text="Tag").last.click()
    try:  # the output shows the new text (its last words are drawn) and a mention count
        page.wait_for_function(
            """() => [...document.querySelectorAll('.jp-OutputArea-output')].some(e => {
                 if (e.querySelector('textarea')) return false;
                 const c = e.cloneNode(true);  // the type labels drawn under marked words are not the text
                 c.querySelectorAll('sub').forEach(x => x.remove());
                 const text = c.textContent.replace(/\\s+/g, ' ');
                 return text.includes('was typed by the browser') && /\\d+ mention/.test(text); })""",
            timeout=60_000, polling=250)
    except PlaywrightTimeout:
        return ["tag box: typing a text and pressing Tag did not show it tagged within 60 s"]
    print("tag box: the typed text was tagged")
    return []


@pytest.mark.parametrize("name", list(EXPECTED))
def test_notebook_in_jupyterlab(page, lab, name):
    want = EXPECTED[name]
    shot = lab["root"] / "screenshots" / f"{Path(name).stem}.png"
    _open(page, lab, name)
    try:
        found = _check_notebook(page, lab, name, want)
    finally:  # whatever happened: a screenshot, and the kernel shut down before the next notebook
        show = (".jp-OutputArea-output .widget-dropdown" if want.get("widget") else
                ".jp-OutputArea-output .widget-textarea" if want.get("tag_box") else ".jp-OutputArea-output img")
        if page.locator(show).count():  # the screenshot shows the widget or the last figure
            page.locator(show).last.scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
        print(f"{name}: screenshot {shot}")
        page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
    assert found == [], f"{name} in JupyterLab (screenshot {shot}):\n  " + "\n  ".join(found)


def _check_notebook(page, lab, name: str, want: dict) -> list[str]:
    # opening a notebook must not mark it modified (kernelspec stored as JupyterLab writes it)
    dirty = page.evaluate(f"() => {_PANEL}.context.model.dirty")
    if dirty:  # say what JupyterLab changed in the notebook's metadata
        stored = json.loads((lab["nbdir"] / name).read_text())["metadata"]
        live = page.evaluate(f"() => {_PANEL}.context.model.toJSON().metadata")
        dirty = {k: (stored.get(k), live.get(k)) for k in set(stored) | set(live) if stored.get(k) != live.get(k)} or True
        # the learner's own Python version in language_info is the one difference that cannot be avoided
        if isinstance(dirty, dict) and set(dirty) == {"language_info"}:
            a, b = (dict(x or {}) for x in dirty["language_info"])
            a.pop("version", None), b.pop("version", None)
            dirty = dirty if a != b else False
    start = time.monotonic()
    if want.get("stop"):  # notebook 04: stopped once during training, then run again
        cells, found = _stop_and_resume(page, lab, name, want)
        found += [p for p in problems(name, cells) if not p.startswith("no printed line matches")]  # plan: 1st run
    else:
        cells = _run_all(page)
        found = problems(name, cells)
    seconds = time.monotonic() - start
    widgets = _widget_outputs(cells)  # counted in every notebook (printed below), required to be 0 where promised
    if widgets and want.get("no_widgets"):
        found.append(f"{widgets} widget output(s): a saved notebook reopened would show 'Error displaying widget'")
    images = page.locator(".jp-OutputArea-output img").count()
    views = page.locator(".jp-OutputArea-output:has(mark)").count()
    if images < want["figures"]:
        found.append(f"{images} image(s) rendered in the page, expected at least {want['figures']}")
    if views < want["entity_views"]:
        found.append(f"{views} entity view(s) rendered in the page, expected at least {want['entity_views']}")
    if want.get("widget"):
        found += _check_error_browser(page)
    if want.get("tag_box"):
        found += _check_tag_box(page)
    if dirty:
        found.append(f"JupyterLab marked the notebook modified as soon as it was opened (metadata: {dirty})")
    found += _saved_and_clean(page, lab, name)
    print(f"{name}: ran in {seconds:.0f} s, {images} images, {views} entity views, {widgets} widget outputs")
    return found


def _saved_and_clean(page, lab, name: str) -> list[str]:
    """Save the run notebook (what autosave does); its file keeps the outputs, and git still sees no change."""
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); return true; }")
    # wait for the file on disk, not for the model's dirty flag (a live output can set it again right after the save)
    deadline, saved = time.monotonic() + 60, {"cells": []}
    while time.monotonic() < deadline:
        try:
            saved = json.loads((lab["nbdir"] / name).read_text())
        except ValueError:  # caught half-written
            saved = {"cells": []}
        if any(c.get("outputs") for c in saved["cells"] if c["cell_type"] == "code"):
            break
        time.sleep(0.5)
    if not any(c.get("outputs") for c in saved["cells"] if c["cell_type"] == "code"):
        return [f"saved {name} holds no outputs: the clean-checkout check would prove nothing"]
    # git alone would list the notebook (its size changed) until `git add`; the server's post-save hook
    # (jupyter_server_config.py) refreshes the index after the save, so `git status` itself must be clean
    problems_found = []
    diff = _git(lab["repo"], "diff", "--stat")
    if diff.strip():
        problems_found.append(f"after running and saving {name}, git diff shows outputs in tracked files: {diff!r}")
    status = _git(lab["repo"], "status", "--porcelain", "--untracked-files=all")
    if status.strip():
        problems_found.append(f"git status after running and saving {name} (no git add): {status!r}")
    _git(lab["repo"], "add", "-u")  # and nothing to stage
    staged = _git(lab["repo"], "diff", "--cached", "--name-only")
    if staged.strip():
        problems_found.append(f"after running and saving {name}, `git add -u` staged {staged!r}")
    return problems_found
