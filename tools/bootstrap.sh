#!/usr/bin/env bash
# Brings what `make demo` and `make test` need when the machine lacks it (called by the Makefile):
#   odoo             print the Python that runs Odoo 18: $PYTHON when it imports Odoo 18,
#                    otherwise .build/venv, made once with Odoo from $ODOO_SRC in .build/odoo
#   postgresql       print "server" when a PostgreSQL server is reachable as the current user
#                    (unless PG=private), otherwise "SOCKET_DIR PORT" of the private cluster
#                    of .build/pgdata, which it creates and starts with PostgreSQL's server binaries
#   stop-postgresql  stop that private cluster
# Each step prints one line on stderr; a failure says what to install or set, and exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/.build}
# PYTHON is a command, which may carry options (e.g. "python3 -S"): it is used unquoted.
PYTHON=${PYTHON:-python3}
ODOO_SRC=${ODOO_SRC:-https://github.com/odoo/odoo}
ODOO_BRANCH=${ODOO_BRANCH:-18.0}
PG=${PG:-auto}
PG_BIN_DIR=${PG_BIN_DIR:-}
# The Makefile passes libpq's PGHOST and PGPORT, empty when unset: PostgreSQL refuses an empty port.
[ -n "${PGHOST:-}" ] || unset PGHOST
[ -n "${PGPORT:-}" ] || unset PGPORT
VENV=$BUILD/venv
ODOO_TREE=$BUILD/odoo
PGDATA_DIR=$BUILD/pgdata
OVERRIDES=$ROOT/tools/odoo-requirements-overrides.txt
# Odoo's own paths: a company mirror may carry other folders next to them.
ODOO_PATHS=(odoo addons odoo-bin requirements.txt setup.py setup.cfg MANIFEST.in)

say() { echo ">> $*" >&2; }
die() { echo "ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- Odoo

# The major version of the Odoo that the given Python imports with its standard addons
# (crm, ...) next to the odoo package, as in Odoo's tree; nothing when it imports none.
imported_odoo_major() {
  "$@" - 2>/dev/null <<'EOF' || true
import os, odoo.release as release
tree = os.path.dirname(os.path.dirname(os.path.realpath(release.__file__)))
if os.path.isfile(os.path.join(tree, "addons", "crm", "__manifest__.py")):
    print(release.version_info[0])
EOF
}

# Refuse a tree that is not Odoo 18, naming the version it holds.
check_odoo_tree() {
  local release=$1/odoo/release.py found
  [ -f "$release" ] || die "ODOO_SRC=$ODOO_SRC holds no Odoo source tree (no odoo/release.py): set ODOO_SRC to an Odoo 18.0 tree or git repository"
  found=$(sed -n 's/^version_info = (\([^,]*\), *\([^,]*\),.*/\1.\2/p' "$release")
  [ "$found" = 18.0 ] || die "ODOO_SRC=$ODOO_SRC${2:+ (branch $ODOO_BRANCH)} holds Odoo ${found:-of an unknown version}, not Odoo 18.0: set ODOO_SRC (and ODOO_BRANCH) to Odoo 18.0"
}

# .build/odoo: a link to a local tree, Odoo's paths of a branch of a local git repository,
# or a shallow clone of a branch of a git URL (Odoo's paths only).
take_odoo_source() {
  local new=$ODOO_TREE.new
  rm -rf "$new"
  mkdir -p "$BUILD"
  if [ -f "$ODOO_SRC/odoo/release.py" ]; then
    check_odoo_tree "$ODOO_SRC"
    say "Odoo: linking the local Odoo 18 tree $ODOO_SRC as .build/odoo"
    ln -sfn "$(cd "$ODOO_SRC" && pwd)" "$ODOO_TREE"
    return
  fi
  if [ -e "$ODOO_SRC/.git" ] || [ "$(git -C "$ODOO_SRC" rev-parse --is-bare-repository 2>/dev/null)" = true ]; then
    say "Odoo: extracting branch $ODOO_BRANCH of the git repository $ODOO_SRC into .build/odoo"
    mkdir -p "$new"
    git -C "$ODOO_SRC" archive "$ODOO_BRANCH" "${ODOO_PATHS[@]}" | tar -x -C "$new" \
      || die "could not read branch $ODOO_BRANCH of $ODOO_SRC: set ODOO_BRANCH to its Odoo 18.0 branch"
  elif [ -d "$ODOO_SRC" ]; then
    check_odoo_tree "$ODOO_SRC"
  else
    say "Odoo: cloning branch $ODOO_BRANCH of $ODOO_SRC into .build/odoo (shallow, a few minutes)"
    git clone -q --depth 1 --branch "$ODOO_BRANCH" --no-checkout "$ODOO_SRC" "$new" \
      || die "could not clone branch $ODOO_BRANCH of $ODOO_SRC: set ODOO_SRC to a reachable Odoo 18.0 git repository or local tree (and ODOO_BRANCH to its branch)"
    git -C "$new" sparse-checkout set --no-cone "${ODOO_PATHS[@]/#//}"  # each anchored at the root
    git -C "$new" checkout -q
  fi
  (check_odoo_tree "$new" 1) || { rm -rf "$new"; exit 1; }
  mv "$new" "$ODOO_TREE"
}

# Odoo's requirements.txt, less the pins named in the overrides file, plus their replacements.
odoo_requirements() {
  awk 'NR == FNR { sub(/#.*/, ""); if (NF) { drop[tolower($1)] = 1; $1 = ""; sub(/^ +/, "");
                                             if ($0 != "") add[++n] = $0 }; next }
       { name = tolower($0); sub(/[^a-z0-9._-].*/, "", name); if (!(name in drop)) print }
       END { for (i = 1; i <= n; i++) print add[i] }' "$OVERRIDES" "$ODOO_TREE/requirements.txt"
}

# Install them into the venv, unless the venv already has exactly these (its stamp file).
install_odoo_requirements() {
  local wanted=$VENV/odoo-requirements.txt.new stamp=$VENV/odoo-requirements.txt
  odoo_requirements >"$wanted"
  if cmp -s "$wanted" "$stamp"; then rm -f "$wanted"; return; fi
  say "Odoo: installing Odoo's requirements into .build/venv (a few minutes, once; overrides: tools/odoo-requirements-overrides.txt)"
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check -r "$wanted" \
    || die "installing Odoo's requirements into .build/venv failed (above): a package that builds from source needs Debian's build tools (apt-get install -y build-essential python3-dev), or an entry in tools/odoo-requirements-overrides.txt"
  mv "$wanted" "$stamp"
}

cmd_odoo() {
  if [ ! -x "$VENV/bin/python" ]; then
    if [ "$(imported_odoo_major $PYTHON)" = 18 ]; then
      say "Odoo 18: imported by $PYTHON"
      echo "$PYTHON"
      return
    fi
    [ -e "$ODOO_TREE" ] || take_odoo_source
    say "Odoo: $PYTHON does not import Odoo 18: creating .build/venv"
    $PYTHON -m venv "$VENV" || die "$PYTHON cannot create a virtual environment: apt-get install -y python3-venv"
  fi
  [ -e "$ODOO_TREE" ] || take_odoo_source
  # Odoo runs from its tree, as odoo-bin does: a .pth file puts the tree on the venv's path.
  "$VENV/bin/python" -c 'import sys, sysconfig; open(sysconfig.get_path("purelib") + "/odoo.pth", "w").write(sys.argv[1] + "\n")' "$ODOO_TREE"
  install_odoo_requirements
  [ "$(imported_odoo_major "$VENV/bin/python")" = 18 ] \
    || die ".build/venv does not import Odoo 18 from .build/odoo: 'make clean' and retry"
  say "Odoo 18: .build/venv, with Odoo from .build/odoo"
  echo "$VENV/bin/python"
}

# ---------------------------------------------------------------- PostgreSQL

# The folder of initdb and pg_ctl: PG_BIN_DIR, else the PATH's, else Debian's newest version.
server_bin_dir() {
  local dir
  if [ -n "$PG_BIN_DIR" ]; then
    dir=$PG_BIN_DIR
  elif command -v pg_ctl >/dev/null && [ -x "$(dirname "$(command -v pg_ctl)")/initdb" ]; then
    dir=$(dirname "$(command -v pg_ctl)")
  else
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

# PostgreSQL refuses to run as root: root runs the private cluster as the postgres user.
as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "${PG_SERVER_USER:-postgres}" -- "$@"; else "$@"; fi
}

cluster_is_running() { as_server_user "$1/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1; }

start_private_cluster() {
  local bin=$1 port=$2
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    say "PostgreSQL: creating a private cluster in .build/pgdata with $bin/initdb"
    mkdir -p "$PGDATA_DIR"
    if [ "$(id -u)" = 0 ]; then
      chown "${PG_SERVER_USER:-postgres}" "$PGDATA_DIR" && as_server_user test -w "$PGDATA_DIR" \
        || die "the private PostgreSQL runs as user ${PG_SERVER_USER:-postgres} (PostgreSQL refuses root), who cannot write $PGDATA_DIR: use a checkout in a folder that others may enter, or run make as a normal user"
    fi
    as_server_user "$bin/initdb" -D "$PGDATA_DIR" -U "$(id -un)" --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$BUILD/initdb.log" 2>&1 || die "initdb failed: see .build/initdb.log"
  fi
  if cluster_is_running "$bin"; then
    say "PostgreSQL: the private cluster of .build/pgdata is running (socket in .build/pgdata, port $port)"
    return
  fi
  say "PostgreSQL: starting the private cluster of .build/pgdata (socket in .build/pgdata, port $port; 'make stop-db' stops it)"
  as_server_user "$bin/pg_ctl" start -w -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$PGDATA_DIR' -p $port" >/dev/null \
    || die "the private PostgreSQL cluster did not start: see .build/pgdata/server.log"
}

cmd_postgresql() {
  command -v psql >/dev/null && command -v dropdb >/dev/null \
    || die "the PostgreSQL client tools (psql, dropdb) are missing: apt-get install -y postgresql-client"
  case $PG in
    auto)
      if psql -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        say "PostgreSQL: the server at ${PGHOST:-the default socket}, port ${PGPORT:-5432}, as role $(id -un)"
        echo server
        return
      fi ;;
    private) ;;
    *) die "PG=$PG: leave PG unset (a reachable server, else a private cluster) or set PG=private" ;;
  esac
  local bin port=${PGPORT:-5432}
  bin=$(server_bin_dir) || die "no PostgreSQL server is reachable as role $(id -un) at ${PGHOST:-the default socket}, port $port, and PostgreSQL's server binaries (initdb, pg_ctl) are not ${PG_BIN_DIR:+in }${PG_BIN_DIR:-installed} for a private cluster: apt-get install -y postgresql (or start a server and set PGHOST, PGPORT)"
  start_private_cluster "$bin" "$port"
  echo "$PGDATA_DIR $port"
}

cmd_stop_postgresql() {
  local bin
  if [ -f "$PGDATA_DIR/PG_VERSION" ] && bin=$(server_bin_dir) && cluster_is_running "$bin"; then
    say "PostgreSQL: stopping the private cluster of .build/pgdata"
    as_server_user "$bin/pg_ctl" stop -w -m fast -D "$PGDATA_DIR" >/dev/null
  else
    say "PostgreSQL: no private cluster is running in .build/pgdata"
  fi
}

case ${1:-} in
  odoo) cmd_odoo ;;
  postgresql) cmd_postgresql ;;
  stop-postgresql) cmd_stop_postgresql ;;
  *) die "usage: $0 odoo|postgresql|stop-postgresql" ;;
esac
