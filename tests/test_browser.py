"""The slides in a real browser: headless Chromium renders a static deck and a live RISE slideshow.

Chromium comes from the system's packages (Debian ``chromium``; ``.ci/run`` installs it when it
is missing). Each page is loaded with ``--dump-dom`` after a virtual-time budget, and the rendered
DOM must show reveal.js initialised, exactly one slide on screen (not one long page), the
notebook's title on that first slide, and more than one slide in all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "chapters" / "ch04_cnn" / "exercise08_conv_output_size.ipynb"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slides, tidy_notebooks = _load("slides"), _load("tidy_notebooks")


@pytest.fixture(scope="module")
def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Chromium installed (Debian: `apt-get install chromium`; .ci/run installs it where apt works)")


def render(chromium: str, url: str, profile: Path, budget_ms: int) -> BeautifulSoup:
    """The page's DOM after ``budget_ms`` of virtual time, in a 1280x720 headless window."""
    profile.mkdir(parents=True, exist_ok=True)
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1280,720", f"--virtual-time-budget={budget_ms}",
               "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"Chromium failed on {url}:\n{done.stderr[-2000:]}"
    return BeautifulSoup(done.stdout, "html.parser")


def slideshow_problems(dom: BeautifulSoup, title: str) -> list[str]:
    """What is wrong with a rendered reveal.js slideshow (empty when it is right)."""
    reveal = dom.select_one(".reveal")
    if reveal is None:
        return ["no .reveal element: the page is not a reveal.js slideshow"]
    problems = [] if "ready" in reveal.get("class", []) else ["reveal.js is not initialised (no 'ready' class)"]
    slides_box = reveal.select_one(".slides")
    top = slides_box.find_all("section", recursive=False) if slides_box else []
    if len(top) < 2:
        problems.append(f"{len(top)} slide(s): expected more than one")
    visible = [s for s in top if not s.has_attr("hidden") and "display: none" not in s.get("style", "")]
    if len(visible) != 1 or "present" not in visible[0].get("class", []):
        problems.append(f"{len(visible)} slides on screen, expected one (the present one): a long page?")
    elif title not in " ".join(visible[0].get_text(" ").split()):
        problems.append(f"the first slide does not show the title {title!r}")
    return problems


def wait_for(chromium: str, url: str, profile: Path, title: str) -> list[str]:
    """Render ``url`` with growing virtual-time budgets until it is a correct slideshow; the last problems."""
    problems: list[str] = []
    for budget in (5_000, 20_000, 60_000):
        problems = slideshow_problems(render(chromium, url, profile, budget), title)
        if not problems:
            break
    return problems


def notebook_title(path: Path) -> str:
    first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
    return first.lstrip("# ").strip()


def test_static_deck_offline_starts_in_slide_mode(chromium: str, tmp_path: Path):
    deck = slides.build_deck(NOTEBOOK, tmp_path / "deck", slides.fetch_assets())
    html = deck.read_text()
    assert "unpkg.com/reveal.js" not in html and "require.min.js" not in html, "the deck needs no CDN"
    problems = wait_for(chromium, deck.as_uri(), tmp_path / "profile", notebook_title(NOTEBOOK))
    assert not problems, f"{deck.name} in Chromium: " + "; ".join(problems)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab_server(tmp_path: Path):
    """A JupyterLab server on a free local port, serving a tidied copy of the notebook; stopped after."""
    pytest.importorskip("jupyterlab")
    assert importlib.util.find_spec("jupyterlab_rise"), \
        "jupyterlab-rise is not installed: `make setup` installs it from the requirements"
    root = tmp_path / "root"
    target = root / NOTEBOOK.relative_to(ROOT)
    target.parent.mkdir(parents=True)
    nbformat.write(tidy_notebooks.tidy(nbformat.read(NOTEBOOK, as_version=4), target), target)
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
               f"--ServerApp.root_dir={root}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), OMP_NUM_THREADS="1",
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, \
                "JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:]
            time.sleep(0.5)
        yield base, target.relative_to(root).as_posix()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_rise_slideshow_in_jupyterlab(chromium: str, lab_server, tmp_path: Path):
    base, notebook = lab_server
    with urllib.request.urlopen(f"{base}/rise/{notebook}", timeout=30) as response:
        assert response.status == 200
    problems = wait_for(chromium, f"{base}/rise/{notebook}", tmp_path / "profile", notebook_title(NOTEBOOK))
    assert not problems, f"/rise/{notebook} in Chromium: " + "; ".join(problems)
