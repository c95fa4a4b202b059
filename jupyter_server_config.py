"""The JupyterLab server settings of this repository: `make lab` starts JupyterLab with
`--config=jupyter_server_config.py` (this file), and so does the browser tier (tests/test_browser.py).

**A run notebook leaves `git status` clean.** JupyterLab saves outputs into the notebook file (autosave too); the
nbstripout clean filter (`make git-filter`, `.gitattributes`) makes git read the file without them, so `git diff`
is empty. But `git status` compares the file's size with the index before it applies any filter, and lists the
notebook as modified until the index is refreshed by re-reading the file (`git add`). After every save of a
notebook, :func:`refresh_git_index` does that refresh, and only when what git reads from the saved file (through
the filter) is exactly what the index already holds: nothing new is ever staged, and a notebook whose code or text
the learner changed stays listed as modified, as it should. Outside a git checkout, or where the filter is not
registered, it does nothing. (Another frontend, e.g. VS Code, has no such hook: `git add -u notebooks` clears the
listing there.)
"""

import os
import subprocess
import warnings


def refresh_git_index(model, os_path, contents_manager=None, **kwargs):
    """A ``FileContentsManager.post_save_hook``: refresh git's index entry of the saved notebook ``os_path`` when
    its filtered content equals the index's (see the module's docstring). Never raises."""
    if (model or {}).get("type") != "notebook":
        return
    folder, name = os.path.split(os.path.abspath(os_path))

    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=120, check=False)

    try:
        if not git("config", "--get", "filter.nbstripout.clean").stdout.strip():
            return  # no clean filter: the outputs are git's business, not to be hidden
        cleaned = git("hash-object", "--", name)  # through the clean filter, as `git add` would read it
        staged = git("rev-parse", "--verify", "--quiet", f":./{name}")  # what the index holds
        if cleaned.returncode == 0 and staged.returncode == 0 and cleaned.stdout.strip() == staged.stdout.strip():
            git("update-index", "-q", "--", name)  # same content: only the index's size and time are updated
    except (OSError, subprocess.SubprocessError):
        pass


c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file
c.FileContentsManager.post_save_hook = refresh_git_index
# the server applies this file twice (server and JupyterLab): the second time, the same hook replaces itself
warnings.filterwarnings("ignore", message=r"Overriding existing post_save_hook \(refresh_git_index\)")
