"""A small Kubernetes API server for tests: real HTTP on 127.0.0.1, an in-memory store.

It implements exactly the REST semantics ComputeLoop relies on, for the kinds it uses
(Namespace, Node, ResourceQuota, LimitRange, PersistentVolumeClaim, ServiceAccount and its
``token`` subresource, NetworkPolicy, Role, RoleBinding, HorizontalPodAutoscaler, PriorityClass, and the
custom kinds of the batch scheduler as their CRDs serve them: Kueue ResourceFlavor, ClusterQueue,
LocalQueue, WorkloadPriorityClass and Volcano Queue). Custom objects are stored as sent, without
schema checks (a CRD's schema is tests/support/scheduler_schemas.py's job); a controller's ``status``
is written with :meth:`FakeKubeApi.update`:

* POST to a collection → 201 with ``metadata.resourceVersion``/``uid``/``creationTimestamp``
  set; 409 ``AlreadyExists`` (a ``Status`` body) when the name is taken; namespaced objects
  need their namespace (404 ``NotFound`` otherwise, as the real server answers).
* GET an object → 200 or 404 ``NotFound``; GET a collection → a ``<Kind>List``
  (``labelSelector`` of ``k=v`` terms, ``fieldSelector`` of ``a.b=v`` / ``a.b!=v`` terms supported);
  a namespaced kind is also listed across every namespace (``/apis/<group>/<version>/<plural>``).
  With ``limit`` the list comes in chunks: ``metadata.continue`` names the next one (pass it back
  as ``continue``) until the last chunk, which has none.
* PUT → 200 with a bumped resourceVersion, 409 ``Conflict`` on a stale resourceVersion;
  PATCH (merge-patch; strategic-merge treated as merge) → 200 with a bumped resourceVersion.
* DELETE → 200 and then 404. Deleting a namespace removes its contents at once (the real
  server does so asynchronously, passing through phase Terminating).

Fault injection: :meth:`FakeKubeApi.inject` makes the next matching request (by method, path
regex, or ordinal number) answer 500, drop the connection before doing anything, or do the
work and then drop the connection (the "did it happen?" case).

Use: ``with FakeKubeApi() as api: cfg = Configuration(); cfg.host = api.url``.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (group, version, plural) → (kind, namespaced)
RESOURCES: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "nodes"): ("Node", False),
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "resourcequotas"): ("ResourceQuota", True),
    ("", "v1", "limitranges"): ("LimitRange", True),
    ("", "v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True),
    ("autoscaling", "v2", "horizontalpodautoscalers"): ("HorizontalPodAutoscaler", True),
    # the batch scheduler's kinds (core/cluster/scheduler_queues.py): Kueue, Volcano, PriorityClass
    ("kueue.x-k8s.io", "v1beta1", "resourceflavors"): ("ResourceFlavor", False),
    ("kueue.x-k8s.io", "v1beta1", "clusterqueues"): ("ClusterQueue", False),
    ("kueue.x-k8s.io", "v1beta1", "localqueues"): ("LocalQueue", True),
    ("kueue.x-k8s.io", "v1beta1", "workloadpriorityclasses"): ("WorkloadPriorityClass", False),
    ("scheduling.volcano.sh", "v1beta1", "queues"): ("Queue", False),
    ("scheduling.k8s.io", "v1", "priorityclasses"): ("PriorityClass", False),
}
PLURAL = {kind: plural for (_, _, plural), (kind, _) in RESOURCES.items()}
GROUP_VERSION = {kind: (g, v) for (g, v, _), (kind, _) in RESOURCES.items()}

_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?/?$")


def collection_path(kind: str, namespace: str | None = None) -> str:
    """The URL path of the collection ``kind`` lives in (where POST creates it)."""
    group, version = GROUP_VERSION[kind]
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace and kind != "Namespace":
        base += f"/namespaces/{namespace}"
    return f"{base}/{PLURAL[kind]}"


def object_path(kind: str, name: str, namespace: str | None = None) -> str:
    """The URL path of one object."""
    return f"{collection_path(kind, namespace)}/{name}"


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    """One injected fault: which requests it matches and what it does."""

    action: str  # "500" | "close" (before doing anything) | "close_after" (do the work, then drop)
    method: str | None = None
    path: str | None = None  # regex searched in the request path
    nth: int | None = None  # the nth request the server sees (1-based), counted from injection
    times: int = 1
    name: str | None = None  # the object's name (last path segment, or metadata.name of a POST body)
    hits: int = 0

    def matches(self, method: str, path: str, ordinal: int, name: str | None = None) -> bool:
        if self.hits >= self.times:
            return False
        if self.name is not None and self.name != name:
            return False
        if self.method and self.method != method:
            return False
        if self.path and not re.search(self.path, path):
            return False
        if self.nth is not None and ordinal != self.nth:
            return False
        return True


class FakeKubeApi:
    """The server, its store and its request log; a context manager that starts and stops it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.store: dict[tuple[str, str | None, str], dict[str, Any]] = {}  # (kind, namespace, name)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) — status 0 = dropped
        self.faults: list[Fault] = []
        self.authorization: list[str | None] = []  # the Authorization header of each request
        self.created: list[tuple[str, str | None, str]] = []  # (kind, namespace, name) of every creation
        self.pages: list[tuple[str, int, int]] = []  # (kind, offset, limit) of every chunked list request
        self._rv = 1000
        self._ordinal_base = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "FakeKubeApi":
        """Listen on 127.0.0.1, a free port, in a daemon thread."""
        owner = self

        class Handler(_Handler):
            api = owner

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeKubeApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for ``Configuration.host``."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test helpers -----------------------------------------------------------------------
    def inject(self, action: str = "500", *, method: str | None = None, path: str | None = None,
               nth: int | None = None, name: str | None = None, times: int = 1) -> Fault:
        """Make matching requests fail; ``nth`` counts requests from now (1 = the next one)."""
        with self.lock:
            fault = Fault(action, method, path, None if nth is None else len(self.requests) + nth, times, name)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self.lock:
            self.faults.clear()

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` directly (seed data such as Nodes), as if created."""
        with self.lock:
            return self._create(obj["kind"], obj["metadata"].get("namespace"), copy.deepcopy(obj))

    def update(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into a stored object and bump its resourceVersion, as a controller
        writing its status would (e.g. an HPA's ``status``)."""
        with self.lock:
            obj = _merge(self.store[(kind, namespace, name)], patch)
            self._bump(obj)
            self.store[(kind, namespace, name)] = obj
            return copy.deepcopy(obj)

    def objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Deep copies of the stored objects (optionally of one kind), in creation order."""
        with self.lock:
            return [copy.deepcopy(o) for (k, _, _), o in self.store.items() if kind in (None, k)]

    def count(self, method: str, status: int | None = None) -> int:
        """How many requests of ``method`` (optionally answered with ``status``) the server saw."""
        return sum(1 for m, _, s in self.requests if m == method and status in (None, s))

    # --- store ------------------------------------------------------------------------------
    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _create(self, kind: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        for server_set in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(server_set, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if namespace is not None:
            meta["namespace"] = namespace
        group, version = GROUP_VERSION[kind]
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        if kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        self._bump(obj)
        self.store[(kind, namespace, meta["name"])] = obj
        self.created.append((kind, namespace, meta["name"]))
        return obj


def _name_of(path: str, raw: bytes) -> str | None:
    """The object a request is about: metadata.name of a POST body, else the path's object name."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("metadata") or {}).get("name"):
        return body["metadata"]["name"]
    m = _PATH.match(path)
    return m["name"] if m else None


def _fields_match(obj: dict[str, Any], selector: str) -> bool:
    """A ``fieldSelector`` of ``a.b=v`` / ``a.b==v`` / ``a.b!=v`` terms, each a dotted path into the object
    (e.g. ``status.phase!=Succeeded``, ``spec.nodeName=n1``); a missing field compares as ""."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, value = term.split("!=" if negate else ("==" if "==" in term else "="), 1)
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if ((current if current is not None else "") == value) == negate:
            return False
    return True


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success" if code < 400 else "Failure", "message": message,
                            "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients closing kept-alive connections (and our own injected drops) are not errors
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeApi
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # one small response = one segment; avoids Nagle + delayed-ACK stalls of ~40 ms per request
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _handle(self, method: str) -> None:
        api = self.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        with api.lock:
            api.requests.append((method, url.path, -1))
            api.authorization.append(self.headers.get("Authorization"))
            index = len(api.requests) - 1
            fault = next((f for f in api.faults if f.matches(method, url.path, index + 1, _name_of(url.path, raw))), None)
            if fault:
                fault.hits += 1
            if fault and fault.action == "close":
                api.requests[index] = (method, url.path, 0)
                self._drop()
                return
            if fault and fault.action == "500":
                api.requests[index] = (method, url.path, 500)
                self._send(500, _status(500, "InternalError", "injected fault"))
                return
            code, body = self._route(method, url.path, parse_qs(url.query), raw)
            if fault and fault.action == "close_after":
                api.requests[index] = (method, url.path, 0)
                self._drop()
                return
            api.requests[index] = (method, url.path, code)
            self._send(code, body)

    def _route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, dict[str, Any]]:
        m = _PATH.match(path)
        if not m:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        group, version = ("", m["cv"]) if m["cv"] else (m["g"], m["v"])
        plural, name, sub, ns = m["plural"], m["name"], m["sub"], m["ns"]
        info = RESOURCES.get((group, version, plural))
        if info is None:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        kind, namespaced = info
        # a namespaced kind is also listed across every namespace (GET /apis/g/v/<plural>)
        if namespaced != (ns is not None) and not (namespaced and method == "GET" and name is None):
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, _status(400, "BadRequest", "request body is not JSON")
        store, api = self.api.store, self.api
        if namespaced and ns is not None and ("Namespace", None, ns) not in store:
            return 404, _status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        key = (kind, ns, name)

        def not_found(what: str = "") -> tuple[int, dict[str, Any]]:
            n = what or name
            return 404, _status(404, "NotFound", f'{plural} "{n}" not found', {"name": n, "kind": plural})

        if sub is not None:
            if not (kind == "ServiceAccount" and sub == "token" and method == "POST"):
                return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
            if key not in store:
                return not_found()
            seconds = int(((body or {}).get("spec") or {}).get("expirationSeconds") or 3600)
            if seconds < 600:
                return 422, _status(422, "Invalid", "spec.expirationSeconds: may not specify a duration less than 10 minutes")
            expiry = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                         "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                         "spec": {**((body or {}).get("spec") or {}), "expirationSeconds": seconds},
                         "status": {"token": f"fake-token-{uuid.uuid4().hex}", "expirationTimestamp": expiry}}

        if name is None:
            if method == "POST":
                if not isinstance(body, dict) or not (body.get("metadata") or {}).get("name"):
                    return 422, _status(422, "Invalid", "metadata.name: Required value")
                obj_name = body["metadata"]["name"]
                if body.get("kind") not in (None, kind):
                    return 400, _status(400, "BadRequest", f"kind {body.get('kind')} does not match {kind}")
                body_ns = body["metadata"].get("namespace")
                if namespaced and body_ns not in (None, ns):
                    return 400, _status(400, "BadRequest", "the namespace of the provided object does not match "
                                                           "the namespace sent on the request")
                if (kind, ns, obj_name) in store:
                    return 409, _status(409, "AlreadyExists", f'{plural} "{obj_name}" already exists',
                                        {"name": obj_name, "kind": plural})
                return 201, copy.deepcopy(api._create(kind, ns, body))
            if method == "GET":
                selector = dict(term.split("=", 1) for term in (query.get("labelSelector") or [""])[0].split(",") if "=" in term)
                items = [copy.deepcopy(o) for (k, n, _), o in store.items() if k == kind and (ns is None or n == ns)
                         and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in selector.items())
                         and _fields_match(o, (query.get("fieldSelector") or [""])[0])]
                meta: dict[str, Any] = {"resourceVersion": str(api._rv)}
                limit = int((query.get("limit") or ["0"])[0] or 0)
                if limit > 0:  # chunked list: ``continue`` is the offset of the next page
                    start = int((query.get("continue") or ["0"])[0] or 0)
                    api.pages.append((kind, start, limit))
                    if start + limit < len(items):
                        meta["continue"] = str(start + limit)
                        meta["remainingItemCount"] = len(items) - start - limit
                    items = items[start:start + limit]
                return 200, {"kind": f"{kind}List", "apiVersion": f"{group}/{version}" if group else version,
                             "metadata": meta, "items": items}
            return 405, _status(405, "MethodNotAllowed", f"{method} is not supported on a collection")

        if key not in store:
            return not_found()
        current = store[key]
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "PUT":
            if not isinstance(body, dict):
                return 400, _status(400, "BadRequest", "body required")
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object '
                                                     "has been modified; please apply your changes to the latest "
                                                     "version and try again", {"name": name, "kind": plural})
            new = copy.deepcopy(body)
            for keep in ("uid", "creationTimestamp", "namespace", "name"):
                if keep in current["metadata"]:
                    new.setdefault("metadata", {})[keep] = current["metadata"][keep]
            new["apiVersion"], new["kind"] = current["apiVersion"], kind
            api._bump(new)
            store[key] = new
            return 200, copy.deepcopy(new)
        if method == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return 415, _status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")
            if not isinstance(body, dict):
                return 400, _status(400, "BadRequest", "patch must be an object")
            new = _merge(current, body)
            for keep in ("uid", "creationTimestamp", "namespace", "name"):
                if keep in current["metadata"]:
                    new["metadata"][keep] = current["metadata"][keep]
            api._bump(new)
            store[key] = new
            return 200, copy.deepcopy(new)
        if method == "DELETE":
            del store[key]
            if kind == "Namespace":
                for k in [k for k in store if k[1] == name]:
                    del store[k]
            return 200, _status(200, "", "", {"name": name, "kind": plural, "uid": current["metadata"]["uid"]})
        return 405, _status(405, "MethodNotAllowed", f"{method} is not supported")
