"""What `make demo` and `make test` refuse while they set the machine up (tools/bootstrap.sh):
an ODOO_SRC that is not Odoo 18, and a PostgreSQL that is neither reachable nor installable
as a private cluster. Each is the real Makefile run as a user runs it, in a build folder of
its own; plain pytest functions, as they need no database."""

import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ODOO_17_RELEASE = "version_info = (17, 0, 0, FINAL, 0, '')\n"


def make_check_env(build, **variables):
    """`make check-env` with these variables and a build folder of its own, as its own top-level
    make: the variables of the make that runs these tests must not leak into it."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    command = ["make", "--no-print-directory", "-C", str(ROOT), "check-env", f"BUILD={build}", "PG=auto"]
    command += [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def odoo_17_tree(folder):
    (folder / "odoo").mkdir(parents=True)
    (folder / "odoo" / "release.py").write_text(ODOO_17_RELEASE)
    return folder


def odoo_17_repository(folder):
    """A git repository whose branch 18.0 holds Odoo 17 (a mirror's wrong branch)."""
    odoo_17_tree(folder)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "18.0"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Odoo 17"], check=True)
    return folder


def odoo_17_url(folder):
    """The same repository behind a git URL, which is cloned (shallow) rather than read."""
    return f"file://{odoo_17_repository(folder)}"


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("source", [odoo_17_tree, odoo_17_repository, odoo_17_url], ids=["tree", "git", "url"])
def test_odoo_src_of_another_version_is_refused(tmp_path, source):
    odoo_src = source(tmp_path / "odoo17")
    build = tmp_path / "build"
    # A Python that cannot import Odoo (no site-packages), as on a new machine.
    result = make_check_env(build, PYTHON=f"{sys.executable} -S", ODOO_SRC=odoo_src)

    assert result.returncode == 2, result.stderr
    assert f"ERROR: ODOO_SRC={odoo_src}" in result.stderr
    assert "holds Odoo 17.0, not Odoo 18.0: set ODOO_SRC (and ODOO_BRANCH) to Odoo 18.0" in result.stderr
    assert not (build / "odoo").exists() and not (build / "venv").exists()


def test_unreachable_postgresql_without_server_binaries_names_the_package(tmp_path):
    port = closed_port()
    build = tmp_path / "build"
    result = make_check_env(
        build, PYTHON=sys.executable, PG_BIN_DIR="/nonexistent", PGHOST="127.0.0.1", PGPORT=port
    )

    role = pwd.getpwuid(os.getuid()).pw_name
    assert result.returncode == 2, result.stderr
    assert (
        f"ERROR: no PostgreSQL server is reachable as role {role} at 127.0.0.1, port {port}, "
        "and PostgreSQL's server binaries (initdb, pg_ctl) are not in /nonexistent for a private cluster: "
        "apt-get install -y postgresql"
    ) in result.stderr
    assert not (build / "pgdata").exists()
