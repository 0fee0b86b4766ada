"""A private PostgreSQL cluster under `PORTAL_PG_CLUSTER_DIR`, for machines without a server."""

import hashlib
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portal.core.errors import DatabaseUnavailable
from portal.core.settings import Settings

PG_LIB_DIR = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
START_TIMEOUT_SECONDS = 60
CONF_MARKER = "# --- portal private cluster ---"

StatusCallback = Callable[[str], None]


@dataclass(frozen=True)
class ClusterStatus:
    """What is known about the private cluster without connecting to it."""

    data_dir: Path
    real_dir: Path
    port: int
    initialized: bool
    running: bool
    pid: int | None

    @property
    def log_file(self) -> Path:
        """Return the server log written by `pg_ctl -l`."""
        return self.real_dir / "server.log"


def cluster_dir(settings: Settings) -> Path:
    """Return the configured cluster directory as an absolute path (symlinks kept)."""
    return Path(os.path.abspath(settings.pg_cluster_dir.expanduser()))


def find_pg_bin(name: str, major: str | None = None) -> Path | None:
    """Find a PostgreSQL server program, preferring the given major version."""
    if major and (PG_LIB_DIR / major / "bin" / name).is_file():
        return PG_LIB_DIR / major / "bin" / name
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path).resolve()
    majors = sorted(
        (p for p in PG_LIB_DIR.glob("*") if p.name.isdigit() and (p / "bin" / name).is_file()),
        key=lambda p: int(p.name),
    )
    return majors[-1] / "bin" / name if majors else None


def private_cluster_status(settings: Settings) -> ClusterStatus:
    """Describe the private cluster: initialised, running, pid, port."""
    data_dir = cluster_dir(settings)
    real_dir = data_dir.resolve()
    port, pid, running = settings.pg_port, None, False
    initialized = _readable_file(real_dir / "PG_VERSION")
    try:
        lines = (real_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        lines = []
    if len(lines) >= 4 and lines[0].strip().isdigit():
        pid = int(lines[0])
        port = int(lines[3]) if lines[3].strip().isdigit() else port
        running = _pid_alive(pid)
    return ClusterStatus(data_dir, real_dir, port, initialized, running, pid if running else None)


def start_private_cluster(
    settings: Settings, on_status: StatusCallback | None = None
) -> ClusterStatus:
    """Create the cluster if needed and start it on 127.0.0.1:`pg_port`."""
    say = on_status or (lambda _msg: None)
    status = private_cluster_status(settings)
    if status.running:
        return status
    real_dir = _prepare_dir(status.data_dir, say)
    if not (real_dir / "PG_VERSION").is_file():
        _initdb(real_dir, say)
    major = (real_dir / "PG_VERSION").read_text().strip()
    pg_ctl = _require_bin("pg_ctl", major)
    say(f"starting the private cluster in {real_dir} on 127.0.0.1:{settings.pg_port}")
    log = real_dir / "server.log"
    _run_as_owner(
        [str(pg_ctl), "-D", str(real_dir), "-l", str(log), "-w", "-t", str(START_TIMEOUT_SECONDS)]
        + ["-o", f"-p {settings.pg_port}", "start"],
        what=f"start the private cluster in {real_dir} (log: {log})",
    )
    return private_cluster_status(settings)


def stop_private_cluster(settings: Settings) -> bool:
    """Stop the private cluster; return False if it was not running."""
    status = private_cluster_status(settings)
    if not status.running:
        return False
    major = (status.real_dir / "PG_VERSION").read_text().strip()
    pg_ctl = _require_bin("pg_ctl", major)
    _run_as_owner(
        [str(pg_ctl), "-D", str(status.real_dir), "-m", "fast", "-w", "-t", "60", "stop"],
        what=f"stop the private cluster in {status.real_dir}",
    )
    return True


def remove_private_cluster(settings: Settings) -> bool:
    """Stop the private cluster and delete its data; return False if there was none."""
    stop_private_cluster(settings)
    data_dir = cluster_dir(settings)
    real_dir = data_dir.resolve()
    existed = data_dir.exists() or data_dir.is_symlink()
    if real_dir.exists():
        shutil.rmtree(real_dir)
    if data_dir.is_symlink():
        data_dir.unlink()
    return existed


def _readable_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """Tell whether `pid` is a live postgres process (a stale postmaster.pid is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in {"postgres", "postmaster"}
    except OSError:
        return True


def _as_root() -> bool:
    return os.geteuid() == 0


def _owner_cmd(cmd: list[str]) -> list[str]:
    """Wrap a command so it runs as the `postgres` user when we are root."""
    if not _as_root():
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SYSTEM_USER, "--", *cmd]
    return ["su", SYSTEM_USER, "-s", "/bin/sh", "-c", " ".join(map(_shell_quote, cmd))]


def _shell_quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _run_as_owner(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(
            _owner_cmd(cmd),
            cwd="/",
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            timeout=START_TIMEOUT_SECONDS + 30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatabaseUnavailable(f"Could not {what}: {exc}") from exc
    if done.returncode != 0:
        output = " ".join((done.stderr or done.stdout).split())[-600:]
        raise DatabaseUnavailable(f"Could not {what}: {output or f'exit code {done.returncode}'}")
    return done.stdout


def _require_bin(name: str, major: str | None = None) -> Path:
    found = find_pg_bin(name, major)
    if found is None:
        raise DatabaseUnavailable(
            f"The PostgreSQL server program `{name}` was not found, so no private cluster can be "
            "started. Run `make setup` (it installs postgresql and postgresql-15-postgis-3 with "
            "apt), or set DATABASE_URL to an existing PostgreSQL server with PostGIS."
        )
    return found


def _postgres_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError as exc:
        raise DatabaseUnavailable(
            "PostgreSQL refuses to run as root and there is no `postgres` system user to run the "
            "private cluster as. Install PostgreSQL (it creates that user), run as a normal user, "
            "or set DATABASE_URL to an existing server."
        ) from exc


def _owner_can_reach(directory: Path) -> bool:
    done = subprocess.run(_owner_cmd(["test", "-x", str(directory)]), cwd="/", check=False)
    return done.returncode == 0


def _prepare_dir(data_dir: Path, say: StatusCallback) -> Path:
    """Create the data directory, owned by whoever will run the server; return its real path."""
    if not _as_root():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return data_dir.resolve()
    account = _postgres_account()
    if not data_dir.is_symlink() and not data_dir.exists():
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not _owner_can_reach(data_dir.parent):
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:10]
            slug = re.sub(r"[^\w]+", "-", "-".join(data_dir.parts[-3:])).strip("-")
            target = Path(account.pw_dir) / "portal-clusters" / f"{slug}-{digest}"
            say(
                f"the postgres user cannot enter {data_dir.parent}; keeping the cluster data in "
                f"{target} (linked from {data_dir})"
            )
            target.mkdir(parents=True, exist_ok=True)
            os.chown(target.parent, account.pw_uid, account.pw_gid)
            data_dir.symlink_to(target, target_is_directory=True)
    real_dir = data_dir.resolve()
    real_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chown(real_dir, account.pw_uid, account.pw_gid)
    real_dir.chmod(0o700)
    if not _owner_can_reach(real_dir):
        raise DatabaseUnavailable(
            f"The postgres user cannot enter {real_dir}, so the private cluster cannot run there. "
            "Set PORTAL_PG_CLUSTER_DIR to a directory it can reach, such as /var/tmp/portal-pg."
        )
    return real_dir


def _initdb(real_dir: Path, say: StatusCallback) -> None:
    if any(real_dir.iterdir()):
        raise DatabaseUnavailable(
            f"{real_dir} is not empty and holds no PostgreSQL cluster. Move it away, or set "
            "PORTAL_PG_CLUSTER_DIR to another directory."
        )
    initdb = _require_bin("initdb")
    say(f"creating a private PostgreSQL cluster in {real_dir} with {initdb}")
    _run_as_owner(
        [str(initdb), "-D", str(real_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        + [f"--locale={_best_locale()}", "--no-instructions"],
        what=f"initialise a PostgreSQL cluster in {real_dir}",
    )
    with (real_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            f"\n{CONF_MARKER}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
        )


def _best_locale() -> str:
    try:
        available = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, check=False
        ).stdout.split()
    except OSError:
        return "C"
    normalized = {name.lower().replace("-", "") for name in available}
    return "C.UTF-8" if "c.utf8" in normalized else "C"
