#!/usr/bin/env bash
# Install what the portal needs and is missing: PostgreSQL + PostGIS and GDAL (apt), and .venv.
# 足りないものだけを入れる: PostgreSQL + PostGIS と GDAL (apt)、.venv。何度実行しても安全です。
#
# Environment:
#   PYTHON=python3        interpreter for the new .venv (3.11 or newer)
#   PORTAL_SKIP_APT=1     never call apt-get (use when DATABASE_URL points at a server elsewhere)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.installed"

# Browser for the end-to-end tests (Playwright drives Debian's Chromium); only `make test`
# asks for it, with --with-browser, so `make demo` stays small.
BROWSER_APT_PACKAGES=""
if [[ "${1:-}" == "--with-browser" ]]; then
    BROWSER_APT_PACKAGES="chromium fonts-noto-cjk"
fi

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# The newest PostgreSQL major version with server programs installed, or nothing.
pg_major() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin/initdb; do
        [[ -x "$dir" ]] || continue
        dir="${dir#/usr/lib/postgresql/}"
        dir="${dir%%/*}"
        if [[ -z "$best" || "$dir" -gt "$best" ]]; then best="$dir"; fi
    done
    printf '%s' "$best"
}

APT_UPDATED=""
apt_install() {
    (($# > 0)) || return 0
    if [[ -n "${PORTAL_SKIP_APT:-}" ]]; then
        say "PORTAL_SKIP_APT is set: not installing $* / apt を使いません"
        return 0
    fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [[ -t 0 ]]; }; then
            sudo=(sudo)
        else
            die "need root to install: $*. Run 'sudo apt-get install -y $*' yourself,
  or run this as root, or set PORTAL_SKIP_APT=1 and DATABASE_URL to use a server elsewhere."
        fi
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install $* with your package manager, or set PORTAL_SKIP_APT=1."
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    if [[ -z "$APT_UPDATED" ]]; then
        say "apt-get update"
        "${apt[@]}" update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $* / パッケージを導入中"
    "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}

need_postgresql() {
    if [[ -z "$(pg_major)" ]]; then
        apt_install postgresql
    fi
    local major
    major="$(pg_major)"
    if [[ -n "$major" && ! -f "/usr/share/postgresql/$major/extension/postgis.control" ]]; then
        apt_install "postgresql-$major-postgis-3"
    fi
}

need_gdal() {
    command -v ogr2ogr >/dev/null 2>&1 || apt_install gdal-bin
}

need_browser_packages() {
    local pkg missing=()
    for pkg in $BROWSER_APT_PACKAGES; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    apt_install "${missing[@]}"
}

need_venv() {
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
            die "$PYTHON is missing or older than 3.11; set PYTHON=/path/to/python3.11"
        say "creating $VENV with $("$PYTHON" --version 2>&1) / 仮想環境を作成"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" ]]; then
        say "installing the portal into $VENV (pip install -e '.[dev]') / パッケージを導入中"
        if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[dev]' \
            >"$VENV/.pip.log" 2>&1; then
            tail -n 30 "$VENV/.pip.log" >&2
            die "pip install failed; the whole log is in $VENV/.pip.log"
        fi
        touch "$STAMP"
    fi
}

need_postgresql
need_gdal
need_browser_packages
need_venv
say "setup done / セットアップ完了"
