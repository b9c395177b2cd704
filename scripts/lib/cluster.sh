# shellcheck shell=bash
# scripts/lib/cluster.sh: throwaway PostgreSQL clusters for ModelMine's tests and demo.
#
# Source it (`. scripts/lib/cluster.sh`); every function is prefixed mm_. Nothing here installs into the
# system or needs root:
#
#   mm_pg_tree DIR          build a private, relocated PostgreSQL tree in DIR with modelmine installed
#   mm_tmpdir NAME          make a temp dir under /tmp that the server user can traverse (prints it)
#   mm_free_port            print a free TCP port on 127.0.0.1
#   mm_cluster_start DIR PORT   initdb + start a cluster in DIR (data in DIR/data, socket in DIR)
#   mm_cluster_stop DIR     stop it (fast, then immediate)
#   mm_cluster_restart DIR  crash-restart it (pg_ctl restart -m immediate), for crash tests
#   mm_cluster_env DIR      export PGHOST/PGPORT/PGUSER/PGDATABASE for a cluster started earlier
#   mm_psql ARGS...         psql -X with ON_ERROR_STOP, against the exported cluster
#
# Why a private tree: PostgreSQL finds its share/ and lib/ directories relative to the real path of its
# own executable (find_my_exec resolves symlinks, then make_relative_path swaps the bin/ suffix). So a
# real copy of the server binaries in DIR/usr/lib/postgresql/15/bin looks for extensions in
# DIR/usr/share/postgresql/15/extension and for libraries in DIR/usr/lib/postgresql/15/lib.
# `make install DESTDIR=DIR` puts modelmine exactly there; everything else (pgcrypto, ...) is a symlink
# to the system's files. The system installation is never written to, and no root is needed.
#
# Root: PostgreSQL refuses to run as root, so when EUID is 0 every server-side command (initdb, pg_ctl)
# runs as the `postgres` system user via runuser, and the cluster directory is chowned to that user.
# Clients (psql, pg_regress) keep running as the caller and connect over TCP on 127.0.0.1.
#
# Environment:
#   PG_CONFIG    pg_config to use (default: pg_config on PATH, else /usr/lib/postgresql/15/bin/pg_config)
#   MM_PGTREE    private tree made by mm_pg_tree; mm_cluster_start uses its binaries when set
#   MM_PG_OPTS   extra server options for mm_cluster_start, e.g. "-c fsync=off -c log_statement=all"
#   MM_SERVER_USER  system user that runs the server when we are root (default: postgres)

mm_log() { printf '[%s] %s\n' "${MM_LOG_TAG:-cluster}" "$*" >&2; }
mm_die() { mm_log "error: $*"; return 1; }

# The pg_config we build and install against.
mm_pg_config() {
    if [[ -n "${PG_CONFIG:-}" ]]; then
        printf '%s\n' "$PG_CONFIG"
    elif command -v pg_config >/dev/null 2>&1; then
        command -v pg_config
    elif [[ -x /usr/lib/postgresql/15/bin/pg_config ]]; then
        printf '%s\n' /usr/lib/postgresql/15/bin/pg_config
    else
        mm_die "pg_config not found: install postgresql-server-dev-15 (scripts/install-deps.sh does) or set PG_CONFIG"
    fi
}

# Run a server-side command as the server user when we are root, else as ourselves.
mm_as_server() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "${MM_SERVER_USER:-postgres}" -- "$@"
    else
        "$@"
    fi
}

# mm_tmpdir NAME: a fresh directory under /tmp, mode 755 so the server user can reach files inside it.
mm_tmpdir() {
    local d
    d=$(mktemp -d "/tmp/mm-${1:-tmp}.XXXXXX") || return 1
    chmod 755 "$d"
    printf '%s\n' "$d"
}

# mm_pg_tree DIR: private PostgreSQL tree with modelmine installed (see the top of this file).
# Must run from anywhere inside the repository checkout; builds with `make install DESTDIR=DIR`.
mm_pg_tree() {
    local tree=${1:?usage: mm_pg_tree DIR} pgc bindir sharedir pkglibdir repo b e
    pgc=$(mm_pg_config) || return 1
    bindir=$("$pgc" --bindir) && sharedir=$("$pgc" --sharedir) && pkglibdir=$("$pgc" --pkglibdir) || return 1
    repo=${MM_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
    mkdir -p "$tree$bindir" "$tree$sharedir" "$tree$pkglibdir" || return 1

    # Real copies, not symlinks: the server locates share/ and lib/ from its resolved executable path.
    for b in postgres initdb pg_ctl pg_controldata; do
        [[ -x "$bindir/$b" ]] || { mm_die "$bindir/$b missing: is postgresql-15 installed?"; return 1; }
        cp -p "$bindir/$b" "$tree$bindir/$b" || return 1
    done

    # share/ and lib/: real directories whose entries link to the system's. `extension` (share) and
    # `bitcode` (lib) are real directories too, because make install writes into them and must not
    # write through a symlink into the system installation.
    mm__mirror "$sharedir" "$tree$sharedir" extension || return 1
    mm__mirror "$pkglibdir" "$tree$pkglibdir" bitcode || return 1
    for e in "$sharedir/extension" "$pkglibdir/bitcode"; do
        [[ -d "$e" ]] && { mm__mirror "$e" "$tree$e" || return 1; }
    done

    mm_log "installing modelmine into the private tree $tree (make install DESTDIR=...)"
    make -C "$repo" --no-print-directory -s install PG_CONFIG="$pgc" DESTDIR="$tree" >&2 || {
        mm_die "make install DESTDIR=$tree failed"; return 1; }
    chmod -R go+rX "$tree"
}

# mm_bench_tree: the private tree a benchmark runs on, in the caller's variables `tree` and `own_tree`.
# MM_PGTREE when it names one (scripts/bench.sh builds it once for all benchmarks; modelmine as it was
# built into it): own_tree=0.  Otherwise make, then a new tree exported as MM_PGTREE: own_tree=1, and
# the caller's clean-up removes it (tree is set before the build, so a half-built one goes too).
mm_bench_tree() {
    if [[ -n "${MM_PGTREE:-}" && -d "$MM_PGTREE" ]]; then
        tree=$MM_PGTREE own_tree=0
        echo "using the private PostgreSQL tree $tree (MM_PGTREE): modelmine as it was built into that tree"
        return 0
    fi
    make --no-print-directory -s PG_CONFIG="$(mm_pg_config)" || return 1
    tree=$(mm_tmpdir pgtree) || return 1
    own_tree=1
    mm_pg_tree "$tree" || return 1
    export MM_PGTREE=$tree
}

# mm__mirror SRC DST [SKIP...]: DST becomes a real dir with a symlink per entry of SRC, except SKIP
# entries (left for the caller), entries that already exist in DST, and modelmine's own files. The
# latter matters: a modelmine installed into the system (e.g. by someone's plain `make install`) must
# neither shadow the private install nor be written through: bitcode/modelmine is a directory, and a
# symlink to it would make `make install DESTDIR=...` overwrite the system's copy.
mm__mirror() {
    local src=$1 dst=$2 entry name skip
    shift 2
    mkdir -p "$dst" || return 1
    for entry in "$src"/* "$src"/.[!.]*; do
        [[ -e "$entry" || -L "$entry" ]] || continue
        name=${entry##*/}
        [[ "$name" == modelmine* ]] && continue
        for skip in "$@"; do [[ "$name" == "$skip" ]] && continue 2; done
        [[ -e "$dst/$name" || -L "$dst/$name" ]] && continue
        ln -s "$entry" "$dst/$name" || return 1
    done
}

# mm_free_port: first port from a per-process start point in a 1000-port window just below the kernel's
# ephemeral range (ip_local_port_range; 31768..32767 by default) with no socket on it. Below that range
# because an outgoing connection's local port comes from it: a client socket holding 55618 makes a
# later bind(55618) fail although nothing listens there (seen in CI). The start point spreads
# concurrent runs on one machine apart; a remaining race shows up as a clear "could not bind".
mm_free_port() {
    local i port low=32768 base start
    read -r low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
    (( low > 2024 )) || low=32768
    base=$(( low - 1000 ))
    start=$(( $$ % 1000 ))
    for (( i = 0; i < 1000; i++ )); do
        port=$(( base + (start + i) % 1000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]]; then
            continue
        fi
        printf '%s\n' "$port"
        return 0
    done
    mm_die "no free TCP port on 127.0.0.1 in $base..$(( base + 999 ))"
}

# Binaries of the cluster in DIR (recorded at start, so restart/stop work from any later shell).
mm__bindir() {
    local dir=$1
    if [[ -f "$dir/bindir" ]]; then
        cat "$dir/bindir"
    elif [[ -n "${MM_PGTREE:-}" ]]; then
        printf '%s\n' "$MM_PGTREE$("$(mm_pg_config)" --bindir)"
    else
        "$(mm_pg_config)" --bindir
    fi
}

# mm_cluster_env DIR: export the libpq variables for the cluster in DIR.
mm_cluster_env() {
    local dir=${1:?usage: mm_cluster_env DIR}
    [[ -f "$dir/port" ]] || { mm_die "$dir holds no cluster (no $dir/port)"; return 1; }
    export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=postgres MM_CLUSTER_DIR=$dir
    PGPORT=$(cat "$dir/port")
}

# mm_cluster_start DIR PORT: initdb (trust auth, superuser postgres) and start, waiting until ready.
# DIR should come from mm_tmpdir. Data lives in DIR/data, the log in DIR/postgres.log, the socket in DIR.
mm_cluster_start() {
    local dir=${1:?usage: mm_cluster_start DIR PORT} port=${2:?usage: mm_cluster_start DIR PORT} bindir
    if [[ -n "${MM_PGTREE:-}" ]]; then
        bindir=$MM_PGTREE$("$(mm_pg_config)" --bindir) || return 1
    else
        bindir=$("$(mm_pg_config)" --bindir) || return 1
    fi
    [[ -x "$bindir/postgres" ]] || { mm_die "no postgres binary in $bindir"; return 1; }
    mkdir -p "$dir" && chmod 755 "$dir" || return 1
    printf '%s\n' "$bindir" >"$dir/bindir"
    printf '%s\n' "$port" >"$dir/port"
    if [[ $EUID -eq 0 ]]; then
        id -u "${MM_SERVER_USER:-postgres}" >/dev/null 2>&1 || {
            mm_die "running as root, but there is no '${MM_SERVER_USER:-postgres}' user to run the server as"
            return 1; }
        chown -R "${MM_SERVER_USER:-postgres}:" "$dir" || return 1
    fi

    mm_log "initdb $dir/data ($bindir)"
    # cd: the server user may not be able to read the caller's working directory (e.g. /root).
    if ! (cd "$dir" && mm_as_server "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
            -E UTF8 --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1); then
        mm_die "initdb failed; its output:"; cat "$dir/initdb.log" >&2; return 1
    fi
    mm_as_server tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# Added by scripts/lib/cluster.sh: loopback only, socket in the cluster dir, nothing preloaded.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_preload_libraries = ''
log_line_prefix = '%m [%p] %q%u@%d '
CONF

    mm_log "starting PostgreSQL on 127.0.0.1:$port${MM_PG_OPTS:+ with options: $MM_PG_OPTS}"
    if ! (cd "$dir" && mm_as_server "$bindir/pg_ctl" start -w -t 60 -D "$dir/data" \
            -l "$dir/postgres.log" ${MM_PG_OPTS:+-o "$MM_PG_OPTS"} >/dev/null); then
        mm_die "server did not start; last lines of $dir/postgres.log:"
        tail -n 30 "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
    mm_cluster_env "$dir"
}

# mm_cluster_stop DIR: fast shutdown, immediate if that does not finish. Quiet no-op if not running.
mm_cluster_stop() {
    local dir=${1:?usage: mm_cluster_stop DIR} bindir
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    bindir=$(mm__bindir "$dir")
    (cd "$dir" && mm_as_server "$bindir/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1) && return 0
    mm_log "fast shutdown of $dir did not finish in 30 s; stopping immediately"
    (cd "$dir" && mm_as_server "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w -t 30 >/dev/null 2>&1)
}

# mm_cluster_restart DIR: crash-restart (immediate stop, so the server does crash recovery), wait until ready.
mm_cluster_restart() {
    local dir=${1:?usage: mm_cluster_restart DIR} bindir
    bindir=$(mm__bindir "$dir")
    if ! (cd "$dir" && mm_as_server "$bindir/pg_ctl" restart -D "$dir/data" -m immediate -w -t 60 \
            -l "$dir/postgres.log" >/dev/null); then
        mm_die "restart of $dir failed; last lines of $dir/postgres.log:"
        tail -n 30 "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
}

# mm_psql ARGS...: psql without ~/.psqlrc, stopping at the first error.
mm_psql() {
    psql -X -v ON_ERROR_STOP=1 "$@"
}
