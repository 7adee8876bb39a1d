"""Finding (or starting) a pcscd with the vsmartcard ``vpcd`` readers for HIL tests.

Two modes:

* ``system`` — the machine's pcscd, which must have loaded the vpcd driver (Debian package
  ``vsmartcard-vpcd``; ``.ci/pcscd`` starts one). Readers "Virtual PCD 00 00" / "… 00 01"
  take a card on TCP ports 35963 / 35964 (from ``/etc/reader.conf.d``).
* ``isolated`` — a private pcscd started for the test run. pcsc-lite 1.9.9 reads
  ``PCSCLITE_CSOCK_NAME`` only in the *client* library; the daemon always binds
  ``<ipcdir>/pcscd.comm`` (``/run/pcscd``) and refuses to start while another pcscd owns it.
  So the private daemon runs in its own mount namespace (``unshare --mount``; as a non-root
  user ``unshare --user --map-root-user --mount`` where user namespaces are allowed) with a
  temporary directory bind-mounted over the ipcdir, and an empty one over the USB driver
  directory (it must not take real readers from the system pcscd). ``pcscd -c DIR`` reads a
  generated ``reader.conf.d`` with one vpcd entry on a free port pair (35963/35964 when they
  are free). Clients reach it with ``PCSCLITE_CSOCK_NAME=<tmp>/run/pcscd.comm``.

One vpcd slot holds one card, so two processes serving into the same port would swap each
other's cards. ``slot_lock(port)`` is a cross-process lock (``flock`` on a file in
``$TMPDIR/sbcard-vpcd-locks``) that ``PcscdCard`` holds while its card is in the reader; a
second test run, or another pytest-xdist worker on the machine's pcscd, waits for the slot
instead of colliding. Under pytest-xdist the plugin gives each worker its own private pcscd
where it can (``xdist_worker``), so the workers run side by side; the lock covers the
fallback.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, at its first PC/SC call; after
that the process keeps talking to the daemon it found first. ``in_process`` says whether this
Python process reaches the service (checked with a probe card); subprocesses always do when
started with ``service.env()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sbcard.errors import TransportError
from sbcard.sim.vpcd import DEFAULT_PORT, VpcdServer
from sbcard.transport.pcsc import list_readers

SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
VPCD_PORT = DEFAULT_PORT
READER_PREFIX = "Virtual PCD 00"
CARD_SLOT = 1                       # tests use "Virtual PCD 00 01": slot 0 stays the user's


class PcscdUnavailable(Exception):
    """No usable pcscd with vpcd readers; ``str()`` says why (for skip/fail messages)."""


def reader_name(slot: int) -> str:
    return f"{READER_PREFIX} {slot:02d}"


def slot_lock_path(port: int) -> Path:
    """The lock file of a vpcd port (empty; kept, since removing one races its next user)."""
    folder = Path(tempfile.gettempdir()) / "sbcard-vpcd-locks"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o777)
        os.chmod(folder, 0o1777)         # shared by every user's test runs, like /tmp
    return folder / f"{port}.lock"


#: Environment variable: seconds ``slot_lock`` waits for a busy slot (default 600).
SLOT_WAIT_ENV = "SBCARD_SLOT_WAIT"


def slot_wait_default(environ: dict[str, str] | None = None) -> float:
    """How long ``slot_lock`` waits when not told: ``$SBCARD_SLOT_WAIT`` or 600 s."""
    value = (os.environ if environ is None else environ).get(SLOT_WAIT_ENV, "")
    try:
        return float(value) if value.strip() else 600.0
    except ValueError:
        raise ValueError(f"{SLOT_WAIT_ENV}={value!r} is not a number of seconds") from None


def slot_holders(port: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes holding vpcd ``port``'s lock (from /proc/locks;
    empty where that is not readable)."""
    try:
        st = os.stat(slot_lock_path(port))
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders: list[tuple[int, str]] = []
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and where in fields and "->" not in fields:
            pid = int(fields[fields.index(where) - 1])
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                command = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
            except OSError:
                command = "?"
            holders.append((pid, command[:160]))
    return holders


@contextlib.contextmanager
def slot_lock(port: int, timeout: float | None = None,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold vpcd ``port`` for this process until the block ends (other holders: wait).

    Waits at most ``timeout`` seconds (default ``slot_wait_default()``), then raises
    ``TimeoutError`` naming the lock file and the processes holding it. ``on_wait`` hears
    once that the slot is busy, and who holds it. The lock goes with the process, so a
    killed test run never leaves the slot locked.
    """
    timeout = slot_wait_default() if timeout is None else timeout
    path = slot_lock_path(port)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with contextlib.suppress(OSError):  # another user's file: theirs to keep open
            os.fchmod(fd, 0o666)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(f"vpcd port {port} is in use by another test process "
                            f"({_holders_text(port)}); waiting up to {timeout:g} s")
                    told = True
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"vpcd port {port} stayed busy for {timeout:g} s "
                                       f"(held through {path} by {_holders_text(port)})"
                                       ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holders_text(port: int) -> str:
    holders = slot_holders(port)
    return ", ".join(f"pid {pid}: {cmd}" for pid, cmd in holders) or "holder unknown"


def xdist_worker(environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(index, count) of this pytest-xdist worker when several run; None otherwise."""
    env = os.environ if environ is None else environ
    name, count = env.get("PYTEST_XDIST_WORKER", ""), env.get("PYTEST_XDIST_WORKER_COUNT", "")
    match = re.fullmatch(r"gw(\d+)", name)
    if match is None or not (count.isascii() and count.isdigit()) or int(count) < 2:
        return None
    return int(match.group(1)), int(count)


def worker_port(index: int) -> int:
    """The vpcd base port a worker's private pcscd tries first: clear of the system's pair."""
    return VPCD_PORT + 2 * (index + 1)


@dataclass
class PcscdService:
    """A pcscd with vpcd readers that tests can serve cards into."""

    mode: str                        # "system" or "isolated"
    base_port: int                   # vpcd port of slot 0
    socket: str | None = None        # PCSCLITE_CSOCK_NAME for clients (None: the default)
    in_process: bool = True          # this process's PC/SC client reaches this daemon
    note: str = ""
    daemon: IsolatedPcscd | None = field(default=None, repr=False)
    required: bool = False           # a missing piece fails the test instead of skipping it

    def port(self, slot: int = CARD_SLOT) -> int:
        return self.base_port + slot

    def reader(self, slot: int = CARD_SLOT) -> str:
        return reader_name(slot)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess (``sbcard``, ``pcsc_scan``, …) to reach this pcscd."""
        out = dict(os.environ if base is None else base)
        if self.socket is not None:
            out[SOCKET_ENV] = self.socket
        return out

    def readers(self) -> list[tuple[str, bool, bytes]]:
        """(name, card present, ATR) of every reader, asked in-process when possible."""
        if self.in_process:
            return [(r.name, r.card_present, r.atr) for r in list_readers()]
        return probe_readers(self.env())

    def wait_card(self, slot: int, present: bool, timeout: float = 30.0,
                  atr: bytes | None = None) -> None:
        """Wait until the reader of ``slot`` holds a card (with this ``atr``) or none."""
        name = self.reader(slot)
        deadline = time.monotonic() + timeout
        seen: tuple[bool, bytes] | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                seen = next(((p, a) for n, p, a in self.readers() if n == name), None)
                if seen is not None and seen[0] == present and (
                        not present or atr is None or seen[1] == atr):
                    return
            time.sleep(0.05 if self.in_process else 0.2)
        if present and seen is not None and seen[0] and atr is not None:
            raise AssertionError(
                f"{name}: another card (ATR {seen[1].hex().upper()}) is in the reader: is "
                f"another test run or `sbcard sim serve --port {self.port(slot)}` using it?")
        raise AssertionError(f"{name}: card {'never appeared' if present else 'never left'} "
                             f"(pcscd {self.mode}, {self.note}; reader state {seen})")

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


# -- the machine's pcscd --------------------------------------------------------------------

_PROBE = """
import json
try:
    from sbcard.transport.pcsc import list_readers
    print(json.dumps({"readers": [[r.name, r.card_present, r.atr.hex()]
                                  for r in list_readers()]}))
except Exception as exc:
    print(json.dumps({"error": str(exc) or type(exc).__name__}))
"""


def probe_readers(env: dict[str, str], timeout: float = 30.0) -> list[tuple[str, bool, bytes]]:
    """The readers a fresh process sees with ``env`` (does not touch this process's client)."""
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                             text=True, timeout=timeout)
        answer = json.loads(run.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        raise PcscdUnavailable(f"probing pcscd failed: {exc}") from None
    if "error" in answer:
        raise PcscdUnavailable(f"pcscd not usable: {answer['error']}")
    return [(n, bool(p), bytes.fromhex(a)) for n, p, a in answer["readers"]]


def system_vpcd_port(confdir: str = "/etc/reader.conf.d") -> int:
    """vpcd's base port from the system reader configuration (35963 when not stated)."""
    with contextlib.suppress(OSError):
        for path in sorted(Path(confdir).iterdir()):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = path.read_text("utf-8")
                if "vpcd" not in text.lower():
                    continue
                m = re.search(r"^\s*DEVICENAME\s+\S*:(0x[0-9A-Fa-f]+|\d+)", text, re.M)
                m = m or re.search(r"^\s*CHANNELID\s+(0x[0-9A-Fa-f]+|\d+)", text, re.M)
                if m:
                    return int(m.group(1), 0)
    return VPCD_PORT


def system_service(*, in_process_probe: bool) -> PcscdService:
    """The machine's pcscd, if it has the vpcd readers; else ``PcscdUnavailable``.

    ``in_process_probe=False`` asks from a subprocess, so this process's PC/SC client stays
    unbound (an isolated pcscd can still be chosen afterwards).
    """
    socket_name = os.environ.get(SOCKET_ENV)
    if in_process_probe:
        try:
            names = [r.name for r in list_readers()]
        except Exception as exc:
            raise PcscdUnavailable(f"pcscd not usable: {exc}") from None
    else:
        names = [n for n, _, _ in probe_readers(dict(os.environ))]
    want = reader_name(CARD_SLOT)
    if want not in names:
        raise PcscdUnavailable(f"pcscd has no {want!r} reader (is vsmartcard-vpcd installed, "
                               f"and pcscd restarted since?); readers: {names or 'none'}")
    # This process's client uses the same environment as the probe did: it reaches it too.
    return PcscdService("system", system_vpcd_port(), socket_name, in_process=True,
                        note="the machine's pcscd")


# -- a private pcscd ------------------------------------------------------------------------


def _pcscd_binary() -> str | None:
    return shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/usr/local/sbin/pcscd") if os.access(p, os.X_OK)),
        None)


def _pcscd_features(binary: str) -> dict[str, str]:
    """``usbdropdir``, ``ipcdir``, ``configdir`` from ``pcscd --version``."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    found = dict(re.findall(r"(usbdropdir|ipcdir|configdir)=(\S+)", out))
    m = re.search(r"pcsc-lite version (\S+?)\.?$", out, re.M)
    found.setdefault("usbdropdir", "/usr/lib/pcsc/drivers")
    found.setdefault("ipcdir", "/run/pcscd")
    found.setdefault("configdir", "/etc/reader.conf.d")
    found["version"] = m.group(1) if m else "unknown"
    return found


def _vpcd_library(configdir: str) -> str | None:
    with contextlib.suppress(OSError):
        for path in sorted(Path(configdir).iterdir()):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                m = re.search(r"^\s*LIBPATH\s+(\S*vpcd\S*)", path.read_text("utf-8"), re.M)
                if m and Path(m.group(1)).exists():
                    return m.group(1)
    for candidate in ("/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
                      "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
                      "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so"):
        if Path(candidate).exists():
            return candidate
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def free_port_pair(preferred: int = VPCD_PORT) -> int:
    """A base port p with p and p+1 free (``preferred`` when it is)."""
    if _port_free(preferred) and _port_free(preferred + 1):
        return preferred
    for _ in range(200):
        p = 36100 + 2 * secrets.randbelow(1900)
        if _port_free(p) and _port_free(p + 1):
            return p
    raise PcscdUnavailable("no free TCP port pair for a private vpcd")


def isolation_problem() -> str | None:
    """Why a private pcscd cannot be started here (None: it can be tried)."""
    if not sys.platform.startswith("linux"):
        return "a private pcscd needs Linux mount namespaces"
    binary = _pcscd_binary()
    if binary is None:
        return "pcscd is not installed (Debian: apt-get install pcscd)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if _vpcd_library(_pcscd_features(binary)["configdir"]) is None:
        return "the vpcd driver is not installed (Debian: apt-get install vsmartcard-vpcd)"
    if os.geteuid() != 0 and not _userns_allowed():
        return ("not root, and unprivileged user namespaces are disabled "
                "(kernel.unprivileged_userns_clone=0)")
    return None


def _userns_allowed() -> bool:
    try:
        text = Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip()
    except OSError:
        return True
    return text != "0"


class IsolatedPcscd:
    """A private pcscd (own socket, own vpcd ports); ``start()`` then ``stop()``."""

    def __init__(self, base_port: int | None = None, *, debug: bool = False) -> None:
        self.binary = _pcscd_binary() or "pcscd"
        self.features = _pcscd_features(self.binary)
        self.workdir = Path(tempfile.mkdtemp(prefix="sbcard-pcscd-", dir="/tmp"))
        self.base_port = base_port if base_port is not None else free_port_pair()
        self.socket = str(self.workdir / "run" / "pcscd.comm")
        self.debug = debug
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "pcscd.log"

    def command(self) -> list[str]:
        w = self.workdir
        for sub in ("run", "conf", "empty"):
            (w / sub).mkdir(exist_ok=True)
        library = _vpcd_library(self.features["configdir"])
        if library is None:
            raise PcscdUnavailable("the vpcd driver is not installed")
        copy = w / "libifdvpcd.so"          # out of the usbdropdir we hide below
        shutil.copyfile(os.path.realpath(library), copy)
        port = f"0x{self.base_port:04X}"
        (w / "conf" / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{port}\n'
            f"LIBPATH {copy}\nCHANNELID {port}\n", "utf-8")
        ipcdir, usbdir = self.features["ipcdir"], self.features["usbdropdir"]
        script = (
            "set -e\n"
            f"mkdir -p '{ipcdir}'\n"
            f"mount --bind '{w / 'run'}' '{ipcdir}'\n"
            f"if [ -d '{usbdir}' ]; then mount --bind '{w / 'empty'}' '{usbdir}'; fi\n"
            f"exec '{self.binary}' --foreground {'--debug ' if self.debug else ''}"
            f"--config '{w / 'conf'}'\n"
        )
        userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        return ["unshare", *userns, "--mount", "--propagation", "private", "sh", "-c", script]

    def start(self, timeout: float = 15.0) -> None:
        problem = isolation_problem()
        if problem is not None:
            raise PcscdUnavailable(f"cannot start a private pcscd: {problem}")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not Path(self.socket).exists():
            if self.process.poll() is not None:
                raise PcscdUnavailable(f"the private pcscd exited ({self.process.returncode}): "
                                       f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PcscdUnavailable(f"the private pcscd did not open its socket in "
                                       f"{timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the daemon (its whole process group: unshare may fork) and clean up."""
        proc, self.process = self.process, None
        if proc is not None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(5)
                deadline = time.monotonic() + 5
                while self._group_alive(proc) and time.monotonic() < deadline:
                    time.sleep(0.02)
            except subprocess.TimeoutExpired:
                pass
            if proc.poll() is None or self._group_alive(proc):
                self._signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        # start_new_session: the group id is the first process's pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    @staticmethod
    def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
        """A live (not zombie) process is left in the group."""
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == proc.pid and fields[0] != "Z":
                    return True
        return False


def isolated_service(*, set_env: bool, verify_in_process: bool = True,
                     debug: bool = False, preferred_port: int = VPCD_PORT) -> PcscdService:
    """Start a private pcscd; with ``set_env`` this process's environment points at it.

    Its vpcd listens on ``preferred_port`` (and the next) when both are free, else on a
    free pair.
    """
    daemon = IsolatedPcscd(free_port_pair(preferred_port), debug=debug)
    try:
        daemon.start()
    except BaseException:
        daemon.stop()
        raise
    service = PcscdService("isolated", daemon.base_port, daemon.socket, in_process=False,
                           note=f"private pcscd {daemon.features['version']} "
                                f"(socket {daemon.socket})", daemon=daemon)
    names = [n for n, _, _ in probe_readers(service.env())]
    if reader_name(CARD_SLOT) not in names:
        daemon.stop()
        raise PcscdUnavailable(f"the private pcscd has no {reader_name(CARD_SLOT)!r} reader "
                               f"(readers {names}): {daemon.log_tail()}")
    previous = os.environ.get(SOCKET_ENV)
    if set_env:
        os.environ[SOCKET_ENV] = daemon.socket
    if verify_in_process:
        service.in_process = reaches_in_process(service)
        if not service.in_process and set_env:
            if previous is None:
                os.environ.pop(SOCKET_ENV, None)
            else:
                os.environ[SOCKET_ENV] = previous
    return service


def serve_quietly(server, max_wait: float | None = 10.0) -> None:
    """``server.serve_forever`` for a thread: a vpcd that never listens ends it quietly."""
    with contextlib.suppress(TransportError):
        server.serve_forever(max_wait=max_wait)


class _ProbeCard:
    """A card with a random ATR: seeing it proves which pcscd a client talks to."""

    def __init__(self) -> None:
        self.atr = bytes((0x3B, 0x08)) + secrets.token_bytes(8)

    def power_on(self) -> bytes:
        return self.atr

    def power_off(self) -> None:
        pass

    def process(self, command: bytes) -> bytes:
        return b"\x6d\x00"


def reaches_in_process(service: PcscdService, timeout: float = 5.0) -> bool:
    """Does this process's PC/SC client see ``service``? (serves a probe card to find out)."""
    try:
        if service.reader(CARD_SLOT) not in {r.name for r in list_readers()}:
            return False
    except Exception:
        return False
    card = _ProbeCard()
    server = VpcdServer(card, port=service.port(CARD_SLOT))
    thread = threading.Thread(target=serve_quietly, args=(server, timeout), daemon=True)
    thread.start()
    seen = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not seen:
            try:
                seen = any(r.name == service.reader(CARD_SLOT) and r.atr == card.atr
                           for r in list_readers())
            except Exception:
                break
            time.sleep(0.05)
    finally:
        server.stop()
        thread.join(5)
    if seen:
        with contextlib.suppress(AssertionError):
            service.wait_card(CARD_SLOT, False, timeout=5)
    return seen
