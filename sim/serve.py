"""The what-if service: ``python simulate.py serve`` answers two questions over HTTP.

- ``POST /predict`` ``{"t": HOURS, "scenario": NAME?}`` -> ``{"load": ..., "resources": ...}``,
  the load and allocation formulas at time t exactly as ``simulate.py predict`` prints them.
- ``POST /run`` ``{"scenario": NAME, "set": ["path=value", ...]}`` -> that run's
  ``summary.json``.

The service faces callers it cannot trust, so a request carries data, never code or files
(docs/serve.md): a scenario is a NAME looked up in the catalogue of shipped files built at
start-up, never joined to a path; overrides and the resolved scenario may name no file and
no module (:func:`override_problems`, :func:`file_and_module_problems`); simulated time is
capped; the run's cost is estimated before it starts (:mod:`sim.workload.cost`) and refused
above the service's requests, memory or wall-time limits; every run happens in its own
process, with its address space capped at the memory limit, working in an empty folder and
killed at the wall-time limit; at most ``max_runs`` run at once; run folders live in a
temporary folder removed once the summary is read.

The HTTP side is bounded too: a listen backlog of 128 so a burst of clients queues rather
than being reset, at most ``max_connections`` connections served at once (more are answered
503 by one refusing thread, which reads each request first so the answer is not lost to a
reset), a body that does not arrive within 30 s is answered 408.

Public: ``Limits``, ``Service``, ``ServiceError``, ``PredictRequest``, ``RunRequest``,
``shipped_scenarios``, ``override_problems``, ``file_and_module_problems``, ``run_bounded``,
``MeridianServer``, ``make_server``, ``serve``.
"""
from __future__ import annotations

import ipaddress
import json
import math
import multiprocessing
import os
import queue
import re
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import MeridianError, Problem, ScenarioError, UsageError
from sim.models.predict import predict
from sim.runner import preflight, run_scenario
from sim.scenario import LoadedScenario, parse_scenario, resolved_dict
from sim.scenario.kinds import POLICY_KINDS
from sim.scenario.overrides import parse_assignment
from sim.scenario.yaml_io import format_path
from sim.units import DAY, format_duration
from sim.workload.cost import Budget, budget_problems, estimate_cost, format_bytes

__all__ = ["Limits", "Service", "ServiceError", "PredictRequest", "RunRequest", "shipped_scenarios",
           "override_problems", "file_and_module_problems", "run_bounded", "MeridianServer",
           "make_server", "serve"]

MAX_BODY_BYTES = 64 * 1024
# A file path or a `package.module:Class` needs one of these; no scenario value does, but
# a `region/pool` reference (allowed: two names, no dot, so not a file with an extension).
_PATH_MARKS = ("/", "\\", ":")
_POOL_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9_-]*$")
# Scenario keys whose value names a file read at run time (trace replays, failure trace).
_FILE_KEYS = ("path", "trace")
NO_FILES = "the service accepts no file paths or module names"


class ServiceError(Exception):
    """A request the service answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """Bounds on one ``/run`` (simulated time, wall time, estimated requests and memory),
    on runs at once and on connections at once."""

    max_duration_s: float = 7 * DAY
    max_wall_s: float = 60.0
    max_runs: int = 2
    max_requests: float = 2_000_000
    max_memory_bytes: float = 2e9
    max_connections: int = 64

    def __post_init__(self) -> None:
        for name in ("max_duration_s", "max_wall_s", "max_runs", "max_requests", "max_memory_bytes",
                     "max_connections"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                option = name.removesuffix("_s").removesuffix("_bytes").replace("_", "-")
                raise UsageError(f"serve: {option} must be > 0 and finite, got {value}")

    @property
    def budget(self) -> Budget:
        """What the cost estimate of a ``/run`` must stay under."""
        return Budget(self.max_requests, self.max_memory_bytes, self.max_wall_s,
                      ("the service's --max-requests", "the service's --max-memory", "the service's --max-wall"))


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PredictRequest(_Request):
    t: float = Field(allow_inf_nan=False, description="Hours since the start.")
    scenario: str | None = Field(None, description="Shipped scenario name (default: the seed's parameters).")


class RunRequest(_Request):
    scenario: str = Field("default", description="Shipped scenario name, e.g. default or validation/mmc.")
    sets: list[str] = Field(default_factory=list, alias="set", max_length=100,
                            description="Overrides in --set syntax, dotted.path=value.")


# -- the two questions ---------------------------------------------------------------------
def shipped_scenarios(root: Path) -> dict[str, Path]:
    """Scenario name -> file for every ``*.yaml`` under ``root`` (``default``, ``validation/mmc``)."""
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.yaml"))}


def _strings(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string leaf of plain data, with its key path (mapping keys are not leaves)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, path + (i,))


def _looks_like_path(text: str) -> bool:
    return any(mark in text for mark in _PATH_MARKS) or ".." in text


def override_problems(sets: Sequence[str]) -> list[Problem]:
    """An override whose value holds a path or module separator, one problem each."""
    problems = []
    for text in sets:
        try:
            _, value = parse_assignment(text)
        except (ValueError, ScenarioError):
            continue  # malformed: the scenario loader reports it with its usual message
        bad = [s for _, s in _strings(value) if _looks_like_path(s) and not _POOL_REF.match(s)]
        if bad:
            problems.append(Problem("--set", None, text, NO_FILES, bad[0]))
    return problems


def file_and_module_problems(loaded: LoadedScenario) -> list[Problem]:
    """Fields of the resolved scenario that would read a file or import a module.

    A key in ``_FILE_KEYS`` or ending in ``_path`` names a file; any string under
    ``scheduler.routing``, ``scheduler.placement`` or ``scheduler.allocation.policy`` with a
    separator is a module policy."""
    problems = []
    for path, value in _strings(resolved_dict(loaded.scenario)):
        key = str(path[-1]) if path else ""
        if key in _FILE_KEYS or key.endswith("_path"):
            problems.append(loaded.problem(path, "names a file; the service accepts no file paths", value))
        elif _is_policy_path(path) and _looks_like_path(value):
            problems.append(loaded.problem(path, "names a module; the service runs registered policies only", value))
    return problems


def _is_policy_path(path: tuple) -> bool:
    return any(path[:len(kind.path)] == kind.path for kind in POLICY_KINDS.values())


# -- bounded runs ----------------------------------------------------------------------------
def _child(text: str, source: str, overrides: Sequence[str], folder: str, conn: Any,
           max_memory_bytes: float | None = None) -> None:
    """In a fresh process: simulate into ``folder/run``, send ``(status, message)`` on ``conn``.

    The process works in the empty ``folder/sandbox``, so a file field the checks did not
    know about resolves (relative to the scenario's folder) to nothing; its address space
    may grow by ``max_memory_bytes`` at most (a MemoryError beyond)."""
    os.chdir(Path(folder) / "sandbox")
    if max_memory_bytes is not None:
        _cap_memory(max_memory_bytes)
    try:
        run_scenario(parse_scenario(text, source, overrides), out=Path(folder) / "run",
                     command=["simulate.py", "serve", "/run", source, *overrides])
        conn.send(("ok", ""))
    except MeridianError as exc:
        conn.send(("rejected", str(exc)))
    except MemoryError:
        limit = format_bytes(max_memory_bytes or 0)
        conn.send(("rejected", f"run needed more than the service's memory limit of {limit} (--max-memory); "
                               "shorten duration or lighten the workload"))
    except Exception as exc:  # reported to the caller, who cannot see this process's stderr
        conn.send(("failed", f"run failed: {type(exc).__name__}: {exc}"))


def _cap_memory(extra_bytes: float) -> None:
    """Limit this process's address space to what it holds now plus ``extra_bytes``."""
    status = Path("/proc/self/status")
    now = 0
    if status.is_file():
        sizes = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmSize:")]
        now = int(sizes[0]) * 1024 if sizes else 0
    limit = int(now + extra_bytes)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def run_bounded(loaded: LoadedScenario, max_wall_s: float, max_memory_bytes: float | None = None) -> dict[str, Any]:
    """``summary.json`` of ``loaded`` simulated in a child process killed after ``max_wall_s``
    (and whose memory may grow by ``max_memory_bytes`` at most)."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no server threads or locks
    with tempfile.TemporaryDirectory(prefix="meridian-serve-") as tmp:
        (Path(tmp) / "sandbox").mkdir()
        receive, send = ctx.Pipe(duplex=False)
        with receive:
            child = ctx.Process(target=_child, daemon=True,
                                args=(loaded.text, loaded.source, loaded.overrides, tmp, send, max_memory_bytes))
            child.start()
            send.close()
            child.join(max_wall_s)
            if child.is_alive():
                child.kill()
                child.join()
                raise ServiceError(504, f"run stopped at the wall-time limit of {max_wall_s:g} s (--max-wall); "
                                        "shorten duration or lighten the workload")
            status, message = _outcome(receive, child.exitcode)
        if status != "ok":
            raise ServiceError(422 if status == "rejected" else 500, message)
        return json.loads((Path(tmp) / "run" / "summary.json").read_text())


def _outcome(receive: Any, exitcode: int | None) -> tuple[str, str]:
    """What the finished child sent; every sending end is closed, so this never blocks."""
    try:
        return receive.recv()
    except EOFError:  # the child died before it could say why (killed, out of memory)
        return "failed", f"run process died (exit code {exitcode})"


# -- the service, free of HTTP ------------------------------------------------------------------
class Service:
    """Answers ``/predict`` and ``/run`` requests given as parsed JSON."""

    def __init__(self, scenarios_dir: Path, limits: Limits = Limits()):
        self.scenarios_dir = Path(scenarios_dir)
        self.catalogue = shipped_scenarios(self.scenarios_dir)
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_runs)
        self.routes: dict[str, Callable[[Any], dict[str, Any]]] = {"/predict": self.predict, "/run": self.run}

    def handle(self, method: str, route: str, read_body: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, JSON answer)``; the body is read only for a known route and method."""
        try:
            if route not in self.routes:
                raise ServiceError(404, f"no route {route!r}; routes: POST /predict, POST /run")
            if method != "POST":
                raise ServiceError(405, f"{route} answers POST only, got {method}")
            return 200, self.routes[route](read_body())
        except ServiceError as exc:
            return exc.status, {"error": exc.message}
        except MeridianError as exc:
            return 400, {"error": str(exc)}

    def predict(self, body: Any) -> dict[str, Any]:
        request = _parse(PredictRequest, body)
        if request.scenario is None:
            return predict(request.t)
        loaded = self._load(request.scenario)
        return predict(request.t, loaded.scenario.scheduler, loaded.source)

    def run(self, body: Any) -> dict[str, Any]:
        request = _parse(RunRequest, body)
        _raise_if(override_problems(request.sets))
        loaded = self._load(request.scenario, request.sets)
        _raise_if(file_and_module_problems(loaded) + self._duration_problems(loaded))
        preflight(loaded)  # only now: it would import a module policy
        _raise_if(budget_problems(loaded, estimate_cost(loaded), self.limits.budget))
        if not self._slots.acquire(blocking=False):
            raise ServiceError(503, f"busy: {self.limits.max_runs} run(s) in progress (--max-runs); try again later")
        try:
            return run_bounded(loaded, self.limits.max_wall_s, self.limits.max_memory_bytes)
        finally:
            self._slots.release()

    def _load(self, name: str, sets: Sequence[str] = ()) -> LoadedScenario:
        path = self._scenario_file(name)
        source = path.relative_to(self.scenarios_dir.parent).as_posix()
        return parse_scenario(path.read_text(), source, sets)

    def _scenario_file(self, name: str) -> Path:
        if name.startswith(("/", "~")) or "\\" in name or ".." in name or ":" in name:
            raise ServiceError(400, f"scenario: must be the name of a shipped scenario, not a path (got {name!r})")
        if name not in self.catalogue:
            raise ServiceError(400, f"scenario: unknown scenario {name!r} (valid: {', '.join(self.catalogue)})")
        return self.catalogue[name]

    def _duration_problems(self, loaded: LoadedScenario) -> list[Problem]:
        duration, cap = loaded.scenario.duration, self.limits.max_duration_s
        if duration <= cap:
            return []
        return [loaded.problem(("duration",), f"must be <= {format_duration(cap)} in the service (--max-duration)",
                               format_duration(duration))]


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ScenarioError(problems)


def _parse(model: type[_Request], body: Any) -> Any:
    if not isinstance(body, dict):
        raise ServiceError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ServiceError(400, "; ".join(_describe(err, model) for err in exc.errors())) from None


def _describe(err: Mapping[str, Any], model: type[_Request]) -> str:
    where = format_path(err["loc"]) or "<body>"
    if err["type"] == "extra_forbidden":
        valid = ", ".join(field.alias or name for name, field in model.model_fields.items())
        return f"{where}: unknown field (valid: {valid})"
    return f"{where}: {err['msg']} (got {json.dumps(err.get('input'))})"


# -- HTTP --------------------------------------------------------------------------------------
def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _Handler(BaseHTTPRequestHandler):
    server: MeridianServer
    server_version = "Meridian"
    timeout = 30  # s: a client that stops sending (short body, idle socket) frees its thread

    def _dispatch(self) -> None:
        try:
            status, answer = self.server.service.handle(self.command, urlsplit(self.path).path, self._read_json)
        except Exception as exc:  # a bug must still answer JSON; the traceback goes to the log
            self.log_error("internal error: %r", exc)
            status, answer = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        self._reply(status, answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isascii() or not length.isdigit():
            raise ServiceError(411, "a Content-Length header is required")
        if len(length) > 12 or int(length) > MAX_BODY_BYTES:
            raise ServiceError(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            raise ServiceError(408, f"the request body did not arrive within {self.timeout} s") from None
        if len(body) < int(length):  # the client closed early
            self.close_connection = True
            raise ServiceError(400, f"the request body ended after {len(body)} of {length} bytes")
        try:
            return json.loads(body or b"null", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ServiceError(400, f"bad JSON: {exc}") from None

    def _reply(self, status: int, answer: dict[str, Any]) -> None:
        data = (json.dumps(answer, allow_nan=False) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 405:
            self.send_header("Allow", "POST")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class MeridianServer(ThreadingHTTPServer):
    """A threading HTTP server holding one :class:`Service`: a backlog for bursts and at
    most ``service.limits.max_connections`` connections served at once; the others are
    answered 503 by one :class:`_Refuser` thread."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: a burst of clients waits instead of being reset

    def __init__(self, address: tuple[str, int], service: Service):
        self.service = service
        self._connections = threading.BoundedSemaphore(service.limits.max_connections)
        super().__init__(address, _Handler)
        self._refuser = _Refuser(service.limits.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a new thread, or pass the connection on to be answered 503."""
        if not self._connections.acquire(blocking=False):
            self._refuser.refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


class _Refuser:
    """Answers 503 to connections over the limit, all at once in one thread.

    Each refused request is read first (closing over unread data would reset the
    connection, and the client would never see the answer), for at most ``READ_S``; a
    client that sends nothing in that time is answered anyway. At most ``MAX`` wait at
    once; beyond that a connection is closed outright (a flood)."""

    MAX = 256
    READ_S = 0.5

    def __init__(self, limit: int):
        message = json.dumps({"error": f"busy: {limit} connections open (--max-connections); try again later"})
        self.answer = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(message)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                       f"{message}").encode()
        self.incoming: queue.Queue[socket.socket] = queue.Queue()
        self.selector = selectors.DefaultSelector()
        self.waiting: dict[socket.socket, tuple[float, bytearray]] = {}
        threading.Thread(target=self._serve, name="refuse-busy", daemon=True).start()

    def refuse(self, sock: socket.socket) -> None:
        if self.incoming.qsize() + len(self.waiting) >= self.MAX:
            _close(sock)
        else:
            self.incoming.put(sock)

    def _serve(self) -> None:
        while True:
            self._take(block=not self.waiting)
            for key, _ in self.selector.select(timeout=0.05):
                self._read(key.fileobj)  # type: ignore[arg-type]
            now = time.monotonic()
            for sock in [s for s, (deadline, _) in self.waiting.items() if deadline <= now]:
                self._answer(sock)

    def _take(self, block: bool) -> None:
        try:
            while True:
                sock = self.incoming.get(block=block)
                block = False
                sock.setblocking(False)
                self.waiting[sock] = (time.monotonic() + self.READ_S, bytearray())
                self.selector.register(sock, selectors.EVENT_READ)
        except queue.Empty:
            pass

    def _read(self, sock: socket.socket) -> None:
        data = self.waiting[sock][1]
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        data += chunk
        if not chunk or _request_complete(data) or len(data) > MAX_BODY_BYTES + 65536:
            self._answer(sock)

    def _answer(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        del self.waiting[sock]
        try:
            sock.setblocking(True)
            sock.settimeout(1.0)
            sock.sendall(self.answer)
        except OSError:
            pass
        _close(sock)


def _request_complete(data: bytes | bytearray) -> bool:
    """True once a request's head and its announced body have arrived."""
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d{1,12})\s*$", head)
    return len(rest) >= (int(match.group(1)) if match else 0)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8000) -> MeridianServer:
    """A bound, not yet serving, server (port 0: an ephemeral port, see ``server_address``).

    A host or port it cannot bind is a :class:`~sim.errors.UsageError` (exit 2)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port: must be 0..65535 (got {port})")
    try:
        return MeridianServer((host, port), service)
    except (OSError, OverflowError) as exc:
        raise UsageError(f"--host/--port: cannot listen on {host}:{port} ({exc})") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(service: Service, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve until interrupted (Ctrl-C raises ``KeyboardInterrupt`` to the caller)."""
    server = make_server(service, host, port)
    if not _is_loopback(host):
        print(f"warning: serving on {host}, reachable beyond this machine; the service has no "
              "authentication", file=sys.stderr)
    print(f"serving on http://{host}:{server.server_address[1]} (POST /predict, POST /run)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
