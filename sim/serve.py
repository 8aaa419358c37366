"""The what-if service: ``python simulate.py serve`` answers two questions over HTTP.

- ``POST /predict`` ``{"t": HOURS, "scenario": NAME?}`` -> ``{"load": ..., "resources": ...}``,
  the load and allocation formulas at time t exactly as ``simulate.py predict`` prints them.
- ``POST /run`` ``{"scenario": NAME, "set": ["path=value", ...]}`` -> that run's
  ``summary.json``.

The service faces callers it cannot trust, so a request carries data, never code or files
(docs/serve.md): a scenario is a NAME looked up in the catalogue of shipped files built at
start-up, never joined to a path; overrides and the resolved scenario may name no file and
no module (:func:`override_problems`, :func:`file_and_module_problems`); simulated time is
capped; every run happens in its own process, working in an empty folder and killed at the
wall-time limit; at most ``max_runs`` run at once; run folders live in a temporary folder
removed once the summary is read.

Public: ``Limits``, ``Service``, ``ServiceError``, ``PredictRequest``, ``RunRequest``,
``shipped_scenarios``, ``override_problems``, ``file_and_module_problems``, ``run_bounded``,
``MeridianServer``, ``make_server``, ``serve``.
"""
from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
import re
import sys
import tempfile
import threading
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
    """Bounds on one ``/run``: simulated time, wall time, and runs at once."""

    max_duration_s: float = 7 * DAY
    max_wall_s: float = 60.0
    max_runs: int = 2

    def __post_init__(self) -> None:
        for name in ("max_duration_s", "max_wall_s", "max_runs"):
            if not getattr(self, name) > 0:
                option = name.removesuffix("_s").replace("_", "-")
                raise UsageError(f"serve: {option} must be > 0, got {getattr(self, name)}")


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
def _child(text: str, source: str, overrides: Sequence[str], folder: str, conn: Any) -> None:
    """In a fresh process: simulate into ``folder/run``, send ``(status, message)`` on ``conn``.

    The process works in the empty ``folder/sandbox``, so a file field the checks did not
    know about resolves (relative to the scenario's folder) to nothing."""
    os.chdir(Path(folder) / "sandbox")
    try:
        run_scenario(parse_scenario(text, source, overrides), out=Path(folder) / "run",
                     command=["simulate.py", "serve", "/run", source, *overrides])
        conn.send(("ok", ""))
    except MeridianError as exc:
        conn.send(("rejected", str(exc)))
    except Exception as exc:  # reported to the caller, who cannot see this process's stderr
        conn.send(("failed", f"run failed: {type(exc).__name__}: {exc}"))


def run_bounded(loaded: LoadedScenario, max_wall_s: float) -> dict[str, Any]:
    """``summary.json`` of ``loaded`` simulated in a child process killed after ``max_wall_s``."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no server threads or locks
    with tempfile.TemporaryDirectory(prefix="meridian-serve-") as tmp:
        (Path(tmp) / "sandbox").mkdir()
        receive, send = ctx.Pipe(duplex=False)
        with receive:
            child = ctx.Process(target=_child, daemon=True,
                                args=(loaded.text, loaded.source, loaded.overrides, tmp, send))
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
        if not self._slots.acquire(blocking=False):
            raise ServiceError(503, f"busy: {self.limits.max_runs} run(s) in progress (--max-runs); try again later")
        try:
            return run_bounded(loaded, self.limits.max_wall_s)
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
        if length is None or not length.isdigit():
            raise ServiceError(411, "a Content-Length header is required")
        if int(length) > MAX_BODY_BYTES:
            raise ServiceError(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(self.rfile.read(int(length)) or b"null", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
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
    """A threading HTTP server holding one :class:`Service`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: Service):
        self.service = service
        super().__init__(address, _Handler)


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
