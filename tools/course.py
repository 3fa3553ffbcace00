#!/usr/bin/env python3
"""Set up and run the course, with or without ``make``: the Makefile's setup, lab and test call this file.

    python tools/course.py lab       create .venv, install requirements.lock, open JupyterLab on chapters/
    python tools/course.py test      the same install, then lint and every test in quick mode
    python tools/course.py setup     only create .venv and install requirements.lock (skipped when up to date)
    python tools/course.py pytest    the same install, then pytest alone, in quick mode (no lint)
    python tools/course.py check-python

On Windows PowerShell: ``py tools\\course.py lab`` (``py -3.12 tools\\course.py lab`` picks another Python).
In an activated conda environment made from environment.yml, ``--here`` uses that interpreter and its
packages instead of ``.venv``. Arguments after ``--`` go to JupyterLab or pytest.

The first thing every command does is check the interpreter against the one statement of the supported
Pythons, ``requires-python`` in pyproject.toml, and stop at once if it is outside it. The file is written
in old syntax, so even an old interpreter gets to print that message instead of a syntax error.
"""

from __future__ import print_function

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_PATHS = ["utils", "tests", "tools", "chapters", "solutions"]
WINDOWS = os.name == "nt"


def supported_range():
    """``((3, 10), (3, 15))``: the lowest supported Python and the first unsupported one, from pyproject.toml."""
    with open(os.path.join(ROOT, "pyproject.toml")) as handle:
        text = handle.read()
    match = re.search(r'^requires-python\s*=\s*"\s*>=\s*3\.(\d+)\s*,\s*<\s*3\.(\d+)\s*"', text, re.M)
    if not match:
        raise SystemExit("pyproject.toml must state requires-python as \">=3.A,<3.B\"")
    return (3, int(match.group(1))), (3, int(match.group(2)))


def supported_versions():
    """``["3.10", "3.11", ...]``: every supported minor version, in order."""
    low, high = supported_range()
    return ["3.%d" % minor for minor in range(low[1], high[1])]


def describe_range():
    """``"Python 3.10 to 3.14"``."""
    versions = supported_versions()
    return "Python %s to %s" % (versions[0], versions[-1])


def python_problem(version_info=None, executable=None):
    """``None`` when the interpreter is supported; otherwise the one message that says what to do."""
    version_info = version_info or sys.version_info
    executable = executable or sys.executable
    low, high = supported_range()
    found = tuple(version_info[:2])
    if low <= found < high:
        return None
    example = supported_versions()[-2] if len(supported_versions()) > 1 else supported_versions()[0]
    return ("Python %d.%d.%d (%s) is not supported: the course needs %s.\n"
            "Pick another interpreter, for example:\n"
            "  make lab PYTHON=python%s          (or make test PYTHON=python%s)\n"
            "  python%s tools/course.py lab      (any shell without make)\n"
            "  py -%s tools\\course.py lab        (Windows PowerShell)\n"
            "No Python %s on this machine? Install one from python.org, your package manager, or use conda\n"
            "(conda env create -f environment.yml)."
            % (found[0], found[1], version_info[2], executable, describe_range(), example, example, example,
               example, example))


def check_python():
    problem = python_problem()
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)


def venv_python(venv):
    return os.path.join(venv, "Scripts", "python.exe") if WINDOWS else os.path.join(venv, "bin", "python")


def run(command, env=None):
    """Run ``command`` in the project root; stop with its exit status if it fails."""
    print("+ " + " ".join(command))
    sys.stdout.flush()
    status = subprocess.call(command, cwd=ROOT, env=env)
    if status != 0:
        sys.exit(status)


def venv_version(python):
    try:
        out = subprocess.check_output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode().strip()


def setup(venv, here=False):
    """Create ``venv`` from this interpreter and install the lock and ``utils`` into it; return its Python.

    Skipped when the stamp is newer than requirements.lock and pyproject.toml. A venv made by another
    Python version is made anew. With ``here``, install nothing and return this interpreter.
    """
    check_python()
    if here:
        return sys.executable
    venv = os.path.join(ROOT, venv)
    python = venv_python(venv)
    stamp = os.path.join(venv, ".installed")
    inputs = [os.path.join(ROOT, name) for name in ("requirements.lock", "pyproject.toml")]
    current = "%d.%d" % sys.version_info[:2]
    if os.path.isfile(stamp) and venv_version(python) == current \
            and all(os.path.getmtime(stamp) >= os.path.getmtime(path) for path in inputs):
        return python
    if os.path.isdir(venv) and venv_version(python) not in (None, current):
        print("%s was made with Python %s; making it anew with Python %s" % (venv, venv_version(python), current))
        run([sys.executable, "-m", "venv", "--clear", venv])
    else:
        run([sys.executable, "-m", "venv", venv])
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "--quiet", "-r", "requirements.lock", "-e", "."])
    with open(stamp, "w") as handle:
        handle.write(current + "\n")
    return python


def lab(python, extra):
    command = [python, "-m", "jupyter", "lab", "--ServerApp.root_dir=" + ROOT,
               "--LabApp.default_url=/lab/tree/chapters"]
    if not WINDOWS and os.geteuid() == 0:  # containers run as root
        command.append("--allow-root")
    run(command + extra)


def lint(python):
    run([python, "-m", "ruff", "check"] + LINT_PATHS)


def test_environment(base=None):
    """The tests' environment: quick mode unless ADL_QUICK is set, and text progress bars."""
    env = dict(os.environ if base is None else base)
    if not env.get("ADL_QUICK", "").strip():
        env["ADL_QUICK"] = "1"
    env["ADL_PLAIN_PROGRESS"] = "1"
    return env


def parallel(extra):
    """pytest-xdist's options: two workers (each notebook kernel then gets one thread, see tests/kernel_env.py),
    unless the arguments choose (``-n 0`` runs in one process)."""
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses", "--dist")) or arg == "no:xdist" for arg in extra):
        return []
    return ["-n", "2"]


def pytest(python, extra):
    run([python, "-m", "pytest"] + parallel(extra) + extra, env=test_environment())


def test(python, extra):
    lint(python)
    pytest(python, extra)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    usage = "usage: python tools/course.py {setup,lab,test,pytest,lint,check-python} [--venv DIR] [--here] [-- ARGS]"
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\n" + usage)
        return 0
    command, options = argv[0], argv[1:]
    venv, here = ".venv", False
    while options:
        option = options.pop(0)
        if option == "--venv" and options:
            venv = options.pop(0)
        elif option == "--here":
            here = True
        else:
            print("unknown option %r\n%s" % (option, usage), file=sys.stderr)
            return 2
    if command == "check-python":
        check_python()
        print("Python %d.%d.%d is supported (%s)." % (sys.version_info[:3] + (describe_range(),)))
        return 0
    if command not in ("setup", "lab", "test", "pytest", "lint"):
        print("unknown command %r\n%s" % (command, usage), file=sys.stderr)
        return 2
    python = setup(venv, here)
    if command == "lab":
        lab(python, extra)
    elif command == "test":
        test(python, extra)
    elif command == "pytest":
        pytest(python, extra)
    elif command == "lint":
        lint(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
