"""Launchers for the local Pub/Sub and BigQuery emulators.

Used by the pytest session fixtures and by the demo command, so both start the emulators the same
way and get the same clear errors. Only the standard library is imported here: the BigQuery
emulator lives in its own virtualenv (``.venv-bqemu``) and is run as a subprocess.

Traps handled here (see the project's emulator notes):

* Pub/Sub: the port accepts TCP before the server is ready, and a JVM that cannot bind
  its port logs ``BindException`` but stays alive. Readiness therefore needs the
  ``Server started, listening on PORT`` log line (which proves *our* JVM owns the port) and an
  HTTP answer, and a failed start kills the JVM.
* bqemulator runs ``INSTALL spatial; LOAD spatial`` at start and exits when the extension cannot be
  downloaded (no network here). We give it a private ``HOME`` whose DuckDB extension directory
  already holds the extension shipped by the ``duckdb-extension-spatial`` wheel, and turn off the
  optional format extensions that would also try the network.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Self

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PROJECT",
    "BigQueryEmulator",
    "EmulatorError",
    "PubSubEmulator",
    "cloud_sdk_root",
    "free_port",
    "port_is_free",
    "repo_root",
]

#: Pitt-Google's Google Cloud project: the emulators serve its topics and tables.
DEFAULT_PROJECT = "ardent-cycling-243415"

#: How to create the BigQuery emulator's virtualenv (shown when it is missing).
BQEMU_SETUP_HINT = (
    "python3 -m venv .venv-bqemu && .venv-bqemu/bin/pip install bqemulator==1.4.0 duckdb==1.5.5 "
    "duckdb-extension-spatial==1.5.5 numpy"
)

_LOCALHOST = "127.0.0.1"
_STOP_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.05
_LOG_TAIL_CHARS = 3000

# Requests to the emulators must never go through an HTTP(S) proxy set in the environment.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorError(RuntimeError):
    """An emulator could not be found or started."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    # Keep every socket open until all ports are picked, so the OS cannot hand out one port twice.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((_LOCALHOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int, host: str = _LOCALHOST) -> bool:
    """Whether a server could listen on ``host:port`` now (Django's server sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tcp_accepts(port: int, host: str = _LOCALHOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes] | None:
    """``(status, body)`` of a GET, whatever the status; None when nothing answers over HTTP."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()  # an HTTP error status is still an answer: the server is up
    except (OSError, ValueError):  # URLError, refused, reset, timeout, malformed status line
        return None


def repo_root() -> Path:
    """The project checkout: the parent of the ``tom_pittgoogle`` package directory."""
    return Path(__file__).resolve().parent.parent.parent


@functools.lru_cache(maxsize=1)
def _sdk_root_from_gcloud() -> Path | None:
    # `gcloud info` takes about 1.4 s, so ask it once per process.
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("gcloud info failed: %s", exc)
        return None
    return Path(out) if out else None


def cloud_sdk_root() -> Path:
    """The Google Cloud SDK root folder.

    ``$CLOUDSDK_ROOT`` or ``$GCLOUD_SDK_ROOT`` if set, else what ``gcloud info`` says, else Debian's
    ``/usr/lib/google-cloud-sdk``.
    """
    for var in ("CLOUDSDK_ROOT", "GCLOUD_SDK_ROOT"):
        value = os.environ.get(var)
        if value:
            return Path(value)
    return _sdk_root_from_gcloud() or Path("/usr/lib/google-cloud-sdk")


def _version_key(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path.name)]


def _read_tail(path: Path | None, chars: int = _LOG_TAIL_CHARS) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - chars))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class _EmulatorProcess:
    """Shared lifecycle: spawn in its own process group, wait until ready, stop the whole group."""

    _name = "emulator"

    def __init__(self, port: int | None, log_dir: str | os.PathLike[str] | None, start_timeout: float) -> None:
        self.port: int = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._tmpdir: Path | None = None
        self._log_fh: IO[bytes] | None = None
        self._failed = False

    # -- to be provided by subclasses ------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _ports(self) -> list[int]:
        return [self.port]

    def _check_ready(self, log_text: str) -> bool:
        """True when ready; raise EmulatorError for a failure visible in the log."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Last step before spawning (files the process needs)."""

    # -- public API --------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{_LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the emulator and wait until it serves; raise :class:`EmulatorError` otherwise."""
        if self.running:
            return self
        self._failed = False
        for port in self._ports():
            # A JVM that cannot bind stays alive, and a probe would be answered by whoever holds the port:
            # refuse early with a clear message instead.
            if not port_is_free(port):
                raise EmulatorError(f"{self._name}: port {_LOCALHOST}:{port} is already in use")
        try:
            # Both raise EmulatorError for a missing jar/java/executable: before any log file exists.
            self._prepare()
            cmd = self._command()
        except BaseException:
            self.stop()  # removes the temp dir _prepare() may have made
            raise
        log_dir = self._log_dir or self._workdir()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self._name}-{self.port}.log"
        self._log_fh = open(self.log_path, "wb")  # noqa: SIM115 -- closed in stop()
        logger.info("starting %s on %s: %s (log %s)", self._name, self.host, " ".join(cmd), self.log_path)
        began = time.monotonic()
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_fh,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self._workdir(),
                # Own process group, so stop() also reaches any child the launcher spawns.
                start_new_session=True,
            )
        except OSError as exc:
            self._fail(f"could not run {cmd[0]}: {exc}")
        try:
            self._wait_until_ready(began)
        except BaseException:  # Ctrl-C while it starts: `with` never reaches __exit__, so stop it here
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        logger.info("%s ready on %s after %.2f s", self._name, self.host, self.startup_seconds)
        return self

    def stop(self) -> None:
        """Terminate the process group; kill it if it is still there after 10 s. Idempotent."""
        proc = self.process
        if proc is not None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %s) ignored SIGTERM; killing it", self._name, proc.pid)
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
            # The leader may be gone while a child still holds the port: make sure the group is gone too.
            self._signal_group(proc, signal.SIGKILL)
            self.process = None
            logger.info("%s on %s stopped", self._name, self.host)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        # Keep the temp dir (and its log) after a failed start: the error message points at it.
        if self._tmpdir is not None and not self._failed:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            if self._log_dir is None:
                self.log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host} {state}>"

    # -- helpers -----------------------------------------------------------------------------------

    def _workdir(self) -> Path:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix=f"{self._name}-"))
        return self._tmpdir

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)  # pgid == pid thanks to start_new_session
        except (ProcessLookupError, PermissionError):
            pass

    def _wait_until_ready(self, began: float) -> None:
        assert self.process is not None
        deadline = began + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self._fail(f"exited with code {code} before it was ready")
            log_text = _read_tail(self.log_path, chars=1_000_000)
            try:
                if self._check_ready(log_text):
                    return
            except EmulatorError as exc:
                self._fail(str(exc))
            if time.monotonic() > deadline:
                self._fail(f"not ready after {self.start_timeout:g} s")
            time.sleep(_POLL_SECONDS)

    def _fail(self, reason: str) -> None:
        self._failed = True
        self.stop()
        tail = _read_tail(self.log_path)
        raise EmulatorError(
            f"{self._name} on {self.host} failed to start: {reason}. See the log file {self.log_path}; its end:\n{tail}"
        )


class PubSubEmulator(_EmulatorProcess):
    """The official Google Cloud Pub/Sub emulator (the Cloud SDK's jar), run by ``java`` directly.

    Running the jar with the serial GC and C1 only starts it in about 1 s, against several for
    ``gcloud beta emulators pubsub start`` (which also leaves its java child behind when killed).

    ``with PubSubEmulator() as ps: os.environ["PUBSUB_EMULATOR_HOST"] = ps.host``
    """

    _name = "pubsub-emulator"

    def __init__(
        self,
        port: int | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
        sdk_root: str | os.PathLike[str] | None = None,
        java: str | None = None,
    ) -> None:
        super().__init__(port, log_dir, start_timeout)
        self._sdk_root = Path(sdk_root) if sdk_root is not None else None
        self._java = java

    @property
    def jar(self) -> Path:
        """The emulator jar inside the Cloud SDK (highest version if several)."""
        root = self._sdk_root or cloud_sdk_root()
        lib = root / "platform" / "pubsub-emulator" / "lib"
        jars = sorted(lib.glob("cloud-pubsub-emulator-*-all.jar"), key=_version_key)
        if not jars:
            raise EmulatorError(
                f"no cloud-pubsub-emulator-*-all.jar in {lib}: install the Cloud SDK component "
                "(apt-get install google-cloud-cli-pubsub-emulator, or gcloud components install "
                "pubsub-emulator), or set CLOUDSDK_ROOT to the SDK root"
            )
        return jars[-1]

    def _java_executable(self) -> str:
        if self._java:
            return self._java
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise EmulatorError(
                "java not found on PATH (the Pub/Sub emulator needs a JRE 11+); install one or set JAVA_HOME"
            )
        return java

    def _command(self) -> list[str]:
        return [
            self._java_executable(),
            # Serial GC and C1-only JIT: the emulator is small and short-lived, and this halves its start.
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-jar",
            str(self.jar),
            f"--host={_LOCALHOST}",
            f"--port={self.port}",
        ]

    def _check_ready(self, log_text: str) -> bool:
        if "BindException" in log_text:
            raise EmulatorError(f"port {self.port} is taken (BindException in the log)")
        # The log line proves our JVM owns the port; the HTTP probe proves it already serves requests.
        if f"Server started, listening on {self.port}" not in log_text:
            return False
        return _http_get(f"http://{self.host}/v1/projects/x/topics") is not None


class BigQueryEmulator(_EmulatorProcess):
    """``bqemulator`` (DuckDB-backed BigQuery emulator) from its own virtualenv, started offline.

    Speaks the BigQuery REST API on ``endpoint`` (use it as the client's ``api_endpoint``) and the
    Storage API over gRPC on ``grpc_port``. Data lives in memory and is gone after ``stop()``.
    """

    _name = "bqemulator"

    def __init__(
        self,
        port: int | None = None,
        *,
        grpc_port: int | None = None,
        project: str = DEFAULT_PROJECT,
        executable: str | os.PathLike[str] | None = None,
        home_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        log_level: str = "info",
        start_timeout: float = 60.0,
    ) -> None:
        if port is None or grpc_port is None:
            picked = _free_ports(2)
            port = port if port is not None else picked[0]
            grpc_port = grpc_port if grpc_port is not None else next(p for p in picked if p != port)
        super().__init__(port, log_dir, start_timeout)
        self.grpc_port: int = grpc_port
        self.project = project
        self.log_level = log_level
        self._executable = Path(executable) if executable is not None else None
        self._home_dir = Path(home_dir) if home_dir is not None else None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the BigQuery client's ``api_endpoint``."""
        return f"http://{self.host}"

    @property
    def executable(self) -> Path:
        """``$BQEMULATOR_BIN``, else ``.venv-bqemu/bin/bqemulator`` in the checkout or the current folder.

        The checkout is the parent of the package folder; for an installed package (a wheel in site-packages)
        that is no checkout, so the current folder is tried too.
        """
        if self._executable is not None:
            candidates = [self._executable]
        elif os.environ.get("BQEMULATOR_BIN"):
            candidates = [Path(os.environ["BQEMULATOR_BIN"])]
        else:
            relative = Path(".venv-bqemu") / "bin" / "bqemulator"
            candidates = list(dict.fromkeys([repo_root() / relative, Path.cwd() / relative]))
        for exe in candidates:
            if exe.is_file():
                return exe
        raise EmulatorError(
            f"bqemulator not found at {' or '.join(map(str, candidates))}. It runs from a virtualenv of its own (it "
            f"pins protobuf and duckdb): in this project's checkout run `make demo`, or create it in the current "
            f"folder with `{BQEMU_SETUP_HINT}`, or point BQEMULATOR_BIN at a bqemulator executable"
        )

    @property
    def home(self) -> Path:
        """The private ``HOME`` the emulator runs with (holds ``.duckdb/extensions``)."""
        return self._home_dir or (self._workdir() / "home")

    def _ports(self) -> list[int]:
        return [self.port, self.grpc_port]

    def _command(self) -> list[str]:
        return [
            str(self.executable),
            "start",
            "--rest-host",
            _LOCALHOST,
            "--rest-port",
            str(self.port),
            "--grpc-host",
            _LOCALHOST,
            "--grpc-port",
            str(self.grpc_port),
            "--project",
            self.project,
            "--log-level",
            self.log_level,
        ]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The emulator's venv pins its own protobuf/duckdb: nothing from the caller's venv may leak in.
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(var, None)
        env["HOME"] = str(self.home)  # DuckDB looks for extensions under $HOME/.duckdb
        # Its optional avro extension would be fetched from the network: skip it (no Avro loads needed).
        env["BQEMU_ENABLE_FORMAT_EXTENSIONS"] = "false"
        env["PYTHONUNBUFFERED"] = "1"  # errors reach the log file at once
        return env

    def _prepare(self) -> None:
        _install_spatial_extension(self.executable, self.home)

    def _check_ready(self, log_text: str) -> bool:
        if "address already in use" in log_text.lower():
            raise EmulatorError("a port is taken (address already in use)")
        # Ask for a real BigQuery answer: any HTTP answer could come from another server on the port.
        answer = _http_get(f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets")
        if answer is None or answer[0] != 200 or b"bigquery#datasetList" not in answer[1]:
            return False
        # gRPC binds just after REST; the Storage API (to_arrow/to_dataframe) needs it.
        return _tcp_accepts(self.grpc_port)


# -- DuckDB spatial extension for offline starts ----------------------------------------------------


_SPATIAL_WHEEL_GLOB = "duckdb_extension_spatial/extensions/*/spatial.duckdb_extension"


def _venv_dirs(executable: Path) -> list[Path]:
    dirs = [executable.absolute().parent.parent, executable.resolve().parent.parent]
    return list(dict.fromkeys(dirs))


def _duckdb_version_and_platform(python: Path) -> tuple[str | None, str | None]:
    """Ask the emulator venv's duckdb which extension dir it reads (e.g. ``v1.5.5``, ``linux_amd64``)."""
    code = (
        "import duckdb; c = duckdb.connect(); "
        "print(c.execute('PRAGMA version').fetchone()[0]); "
        "print(c.execute('PRAGMA platform').fetchone()[0])"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("could not query duckdb in %s: %s", python, exc)
        return None, None
    if len(out) != 2:
        return None, None
    return out[0], out[1]


def _platform_guess() -> str:
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("aarch64", "arm64") else "amd64"
    system = "osx" if sys.platform == "darwin" else "linux"
    return f"{system}_{arch}"


def _install_spatial_extension(executable: Path, home: Path) -> None:
    """Put the wheel-shipped spatial extension where DuckDB's ``INSTALL spatial`` finds it offline."""
    home.mkdir(parents=True, exist_ok=True)  # DuckDB refuses to start at all with a missing HOME
    found: list[Path] = []
    python: Path | None = None
    for venv in _venv_dirs(executable):
        found += venv.glob(f"lib/python*/site-packages/{_SPATIAL_WHEEL_GLOB}")
        if python is None and (venv / "bin" / "python").exists():
            python = venv / "bin" / "python"
    found = list(dict.fromkeys(found))
    if not found:
        logger.warning(
            "no duckdb-extension-spatial package next to %s: bqemulator will try to download the spatial "
            "extension and fail without network (%s)",
            executable,
            BQEMU_SETUP_HINT,
        )
        return
    version, plat = _duckdb_version_and_platform(python) if python else (None, None)
    plat = plat or _platform_guess()
    if version and not any(ext.parent.name == version for ext in found):
        logger.warning(
            "duckdb %s in the emulator venv but the spatial extension is for %s: install duckdb-extension-spatial==%s",
            version,
            ", ".join(ext.parent.name for ext in found),
            version.lstrip("v"),
        )
    # The directory names are DuckDB versions, so linking each one found is right whatever duckdb is there.
    for ext in found:
        target_dir = home / ".duckdb" / "extensions" / ext.parent.name / plat
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / ext.name
        if target.is_symlink() or target.exists():
            if target.resolve() == ext.resolve():
                continue
            target.unlink()
        try:
            target.symlink_to(ext)
        except OSError:
            shutil.copy2(ext, target)
        logger.debug("linked %s -> %s", target, ext)
