"""The simulated Kubernetes API server: HTTP on loopback for the real `kubernetes` client.

A TEST AND DEMO DOUBLE. It imitates the parts of kube-apiserver, the Deployment controller and
KServe that the portal uses; it proves nothing about a real cluster. Start it in a test with
`SimCluster(manual_clock=True).start()` and move time with `advance(seconds)`, or run
`manage.py simcluster` for the demo, where time runs by itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from apps.deployments.kube.client import SIMULATED_EXTENSION
from apps.simcluster.bodies import parse_body
from apps.simcluster.controllers import Controllers, Timing
from apps.simcluster.discovery import VERSION, discovery
from apps.simcluster.resources import BY_PATH, TYPES, SimApiError
from apps.simcluster.store import Store

DEFAULT_NAMESPACES = ("default", "kube-system")
CONTEXT = "modelport-simulated"
_FAULT_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
# Verbs a read-only token may use: lets a test or demo show a missing permission.
READ_VERBS = {"get", "list", "watch"}


class SimCluster:
    """The server, its store and its controllers; usable as a context manager in tests."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        manual_clock: bool = False,
        speed: float = 1.0,
        timing: Timing | None = None,
        namespaces: tuple[str, ...] = (),
        state_file: Path | None = None,
        token: str = "modelport-simulated-token",  # noqa: S107  (a published loopback-only token)
        readonly_tokens: frozenset[str] = frozenset(),
        log: Any = None,
    ) -> None:
        self.manual_clock, self.speed = manual_clock, speed
        self.token, self.readonly_tokens = token, readonly_tokens
        self.state_file = state_file
        self.log = log
        self._epoch = datetime.now(UTC).replace(microsecond=0)
        self._elapsed = 0.0
        self._carry = 0.0
        self.store = Store(clock=self.now)
        self.controllers = Controllers(self.store, timing)
        if state_file is not None and state_file.exists():
            self._load(state_file)
        for namespace in (*DEFAULT_NAMESPACES, *namespaces):
            self.ensure_namespace(namespace)
        self._handler = type("Handler", (_Handler,), {"cluster": self})
        self.httpd = self._listen((host, port))
        # Open client connections (keep-alive), so that going offline can drop them too.
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.online = True
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._saved_rv = -1
        # Every request as (method, path), and API faults to answer the next ones with.
        self.requests: list[tuple[str, str]] = []
        self.faults: list[int] = []

    def fail_next(self, code: int, *, times: int = 1) -> None:
        """Answer the next `times` requests with this HTTP error (429, 500, 503, …)."""
        self.faults.extend([code] * times)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        assert isinstance(host, str), "a bound AF_INET socket names its host as text"
        return f"http://{host}:{port}"

    def _listen(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(address, self._handler)
        httpd.daemon_threads = True
        return httpd

    def _serve(self) -> None:
        serve = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="simcluster-http",
            daemon=True,
        )
        serve.start()
        self._threads.append(serve)

    def go_offline(self) -> None:
        """Stop answering, as a cluster gone from the network: the port is closed and every
        open connection dropped, so clients get "connection refused". The store and the clock
        are kept; `go_online()` listens again on the same port."""
        if not self.online:
            return
        self.online = False
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._connections_lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):  # already closed by the other side
                    connection.shutdown(socket.SHUT_RDWR)

    def go_online(self) -> None:
        """Answer again, on the same address, after `go_offline()`."""
        if self.online:
            return
        host, port = self.httpd.server_address[:2]
        assert isinstance(host, str), "a bound AF_INET socket names its host as text"
        self.httpd = self._listen((host, port))
        self.online = True
        self._serve()

    def start(self) -> SimCluster:
        self._serve()
        if not self.manual_clock:
            clock = threading.Thread(target=self._run_clock, name="simcluster-clock", daemon=True)
            clock.start()
            self._threads.append(clock)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.save()

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        """Move simulated time forward, running the controllers once per simulated second."""
        with self.store.lock:
            self._carry += seconds
            while self._carry >= 1.0:
                self._carry -= 1.0
                self._elapsed += 1.0
                self.controllers.step(self.now().timestamp())

    def _run_clock(self) -> None:
        interval = 0.2
        last_save = last_tick = time.monotonic()
        while not self._stop.wait(interval):
            # Advance by the time that really passed: a busy machine must not slow the cluster.
            now = time.monotonic()
            self.advance((now - last_tick) * self.speed)
            last_tick = now
            if self.state_file is not None and time.monotonic() - last_save > 2:
                self.save()
                last_save = time.monotonic()

    # --- state ----------------------------------------------------------------------------------

    def ensure_namespace(self, name: str) -> None:
        namespaces = TYPES[0]
        if self.store.find(namespaces, "", name) is None:
            self.store.create(namespaces, "", {"metadata": {"name": name}}, manager="simcluster")

    def save(self) -> None:
        if self.state_file is None or self.store.rv == self._saved_rv:
            return
        state = self.store.dump()
        state["clock"] = {"epoch": self._epoch.isoformat(), "elapsed": self._elapsed}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        tmp.replace(self.state_file)
        self._saved_rv = state["resourceVersion"]

    def _load(self, path: Path) -> None:
        state = json.loads(path.read_text())
        self.store.load(state)
        clock = state.get("clock") or {}
        if clock:
            # Time went on while the server was down: resume from now, keeping timestamps ordered.
            saved = datetime.fromisoformat(clock["epoch"]) + timedelta(seconds=clock["elapsed"])
            self._epoch = max(self._epoch, saved)
        self._saved_rv = self.store.rv

    # --- kubeconfig -----------------------------------------------------------------------------

    def kubeconfig(self, *, context: str = CONTEXT, token: str | None = None) -> dict[str, Any]:
        """A kubeconfig for this server; its cluster entry is marked as simulated."""
        return kubeconfig_for(self.url, context=context, token=token or self.token)

    def write_kubeconfig(self, path: Path, *, context: str = CONTEXT) -> Path:
        return write_kubeconfig(path, self.kubeconfig(context=context))


def kubeconfig_for(server: str, *, context: str = CONTEXT, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": context,
        "clusters": [
            {
                "name": context,
                "cluster": {
                    "server": server,
                    "extensions": [
                        {
                            "name": SIMULATED_EXTENSION,
                            "extension": {
                                "note": "Modelport's simulated Kubernetes API server; "
                                "a test and demo double, nothing really runs."
                            },
                        }
                    ],
                },
            }
        ],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write a kubeconfig (only the owner may read it: it holds a token); unchanged files stay."""
    text = "# Written by Modelport for its SIMULATED cluster (manage.py simcluster).\n"
    text += yaml.safe_dump(config, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        path.chmod(0o600)
    return path


class _Handler(BaseHTTPRequestHandler):
    cluster: SimCluster
    server_version = "modelport-simcluster"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every keep-alive response back by ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.cluster._connections_lock:
            self.cluster._connections.add(self.connection)

    def finish(self) -> None:
        with self.cluster._connections_lock:
            self.cluster._connections.discard(self.connection)
        with contextlib.suppress(OSError):  # dropped by go_offline()
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.cluster.log is not None:
            self.cluster.log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.cluster.requests.append((method, self.path))
        try:
            if self.cluster.faults:
                code = self.cluster.faults.pop(0)
                raise SimApiError(code, _FAULT_REASONS.get(code, "InternalError"), "injected fault")
            code, body = self._route(method, raw)
        except SimApiError as exc:
            code, body = exc.code, exc.body()
        except Exception as exc:  # the double must answer like a server, never hang up
            code, body = 500, SimApiError(500, "InternalError", f"simulator error: {exc}").body()
        self._send(code, body)

    def _route(self, method: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")
        if method == "GET" and path == "/version":
            return 200, VERSION  # readable without credentials, as on a real cluster
        token = self._token()
        if method == "GET" and (found := discovery(path)) is not None:
            return 200, found
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and method == "POST":
            return 201, self._access_review(parse_body(raw, "application/json"), token)
        route = _parse_resource_path(path)
        if route is None:
            raise SimApiError(404, "NotFound", "the server could not find the requested resource")
        rt, namespace, name, subresource = route
        verb = _verb(method, name)
        if verb not in READ_VERBS and token in self.cluster.readonly_tokens:
            raise SimApiError(
                403,
                "Forbidden",
                f"{rt.qualified} {f'{name!r} ' if name else ''}is forbidden: User "
                f'"system:serviceaccount:simulated:readonly" cannot {verb} resource '
                f'"{rt.plural}" in API group "{rt.group}" in the namespace "{namespace}"',
                details={"name": name, "group": rt.group, "kind": rt.plural},
            )
        store = self.cluster.store
        dry_run = query.get("dryRun") == "All"
        manager = query.get("fieldManager") or self._default_manager()
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0]
        if method == "GET" and not name:
            return 200, store.list(
                rt,
                namespace or None,
                label_selector=query.get("labelSelector", ""),
                field_selector=query.get("fieldSelector", ""),
            )
        if method == "GET":
            return 200, store.get(rt, namespace, name)
        if method == "POST" and not name:
            return 201, store.create(
                rt, namespace, parse_body(raw, content_type), manager=manager, dry_run=dry_run
            )
        if method == "PUT" and name:
            return 200, store.replace(
                rt,
                namespace,
                name,
                parse_body(raw, content_type),
                manager=manager,
                dry_run=dry_run,
                subresource=subresource,
            )
        if method == "PATCH" and name:
            force = query.get("force", "").lower() == "true"
            if content_type == "application/apply-patch+yaml" and not query.get("fieldManager"):
                raise SimApiError(
                    422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                    "Required value: is required for apply patch"
                )  # fmt: skip
            body = parse_body(raw, content_type)
            existed = store.find(rt, namespace, name) is not None
            result = store.patch(
                rt,
                namespace,
                name,
                body,
                content_type=content_type,
                manager=manager,
                force=force,
                dry_run=dry_run,
                subresource=subresource,
            )
            return (200 if existed else 201), result
        if method == "DELETE" and name:
            if dry_run:
                return 200, store.get(rt, namespace, name)
            body = parse_body(raw, "application/json") if raw else {}
            orphan = (query.get("propagationPolicy") or body.get("propagationPolicy")) == "Orphan"
            deleted = store.delete(rt, namespace, name, orphan=orphan)
            if rt.kind in {"Deployment", "ReplicaSet", "Namespace"}:
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "uid": deleted["metadata"]["uid"],
                    },
                }
            return 200, deleted
        raise SimApiError(405, "MethodNotAllowed", f"{method} is not supported on {self.path}")

    def _token(self) -> str:
        header = self.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        if (
            self.cluster.token
            and token != self.cluster.token
            and token not in self.cluster.readonly_tokens
        ):
            raise SimApiError(401, "Unauthorized", "Unauthorized")
        return token

    def _default_manager(self) -> str:
        # The real server names an unnamed manager after the client's User-Agent product.
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/")[0][:128]

    def _access_review(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
        allowed = token not in self.cluster.readonly_tokens or attributes.get("verb") in READ_VERBS
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec") or {},
            "status": {
                "allowed": allowed,
                "reason": "" if allowed else "the simulated read-only token may only read",
            },
        }


def _verb(method: str, name: str) -> str:
    return {
        "GET": "get" if name else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }[method]


def _parse_resource_path(path: str) -> tuple[Any, str, str, str] | None:
    """(resource type, namespace, name, subresource) for a resource URL, else None."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in BY_PATH:
        namespace, rest = rest[1], rest[2:]
    if not rest or (group, version, rest[0]) not in BY_PATH:
        return None
    rt = BY_PATH[(group, version, rest[0])]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 or subresource not in ("", "status"):
        return None
    if rt.namespaced and not namespace and name:
        return None
    return rt, namespace, name, subresource
