"""HTTP front of the SparkBot sandbox: the fake `/v1` API and the `/_sandbox` control API.

Order of checks on a `/v1` call: added latency, API key (401), path and method
(404 / 405), then an injected fault if one matches, then chaos (a random failure, when
turned on), then the real handler. Every `/v1` call is recorded (without the key);
control calls are not. Every route carried out also goes into the route ledger.
"""

import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .state import (
    READ_ROUTES, ApiError, SandboxState, auth_status, bad_request, parse_chaos, parse_fault, parse_latency,
)

API_PREFIX = "/v1"
CONTROL_PREFIX = "/_sandbox"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_SECRET_QUERY_NAMES = {"token", "key", "apikey", "api_key", "access_token"}
TRICKLE_GAP_SECONDS = 0.25  # between the pieces of a slow answer: far below any client's read timeout
BAD_GATEWAY_PAGE = (  # what a proxy in front of SparkBot answers when SparkBot is away
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class Request:
    method: str
    path: str  # without query string and trailing slash
    query: dict  # first value of each parameter
    headers: object
    body: object  # parsed JSON; None when empty or not JSON


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = None
    headers: dict = field(default_factory=dict)
    delay_seconds: float = 0  # wait this long before answering (or dropping)
    drop: bool = False  # close the connection without any answer
    trickle_seconds: float = 0  # send the body a few bytes at a time over this long
    chaos: str = None  # the chaos fault this is, if any


def json_response(status, payload):
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, data, "application/json; charset=utf-8")


def error_response(error):
    return json_response(error.status, error.payload())


# --- /v1 handlers --------------------------------------------------------------

def _int_query(query, name, default, minimum, maximum=None):
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        limits = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise bad_request(f"Query parameter {name} must be an integer {limits}",
                          "invalid_parameter")
    return value


def list_devices(state, request):
    page = _int_query(request.query, "page", 0, 0)
    size = _int_query(request.query, "size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    devices = state.list_devices(
        page, size,
        search=request.query.get("search"),
        status=request.query.get("status"),
        session_status=request.query.get("sessionStatus"),
    )
    return json_response(200, devices)


def get_device(state, request, dev_id):
    return json_response(200, state.get_device(dev_id))


def get_queue(state, request, dev_id):
    return json_response(200, state.queue_stats(dev_id))


def set_queue(state, request, dev_id):
    return json_response(200, state.set_queue_status(dev_id, request.body))


def empty_queue(state, request, dev_id):
    return json_response(200, state.empty_queue(dev_id))


def route_queue(state, request, dev_id):
    result = state.route_queue(dev_id, request.body)
    if result is None:  # empty source queue: the real reply is unpublished, so be awkward
        return Response(200, b"", "application/json")
    return json_response(200, result)


API_ROUTES = [
    (re.compile(r"/devices"), {"GET": ("devices_list", list_devices)}),
    (re.compile(r"/devices/([^/]+)"), {"GET": ("device_get", get_device)}),
    (re.compile(r"/devices/([^/]+)/queue"), {
        "GET": ("queue_get", get_queue),
        "POST": ("queue_set", set_queue),
        "PATCH": ("route_queue", route_queue),
        "DELETE": ("queue_empty", empty_queue),
    }),
]


# --- /_sandbox handlers ----------------------------------------------------------

def _ok(**extra):
    return json_response(200, {"ok": True, **extra})


def reset_state(state, request):
    state.reset()
    return _ok()


def get_calls(state, request):
    return json_response(200, state.calls())


def clear_calls(state, request):
    state.clear_calls()
    return _ok()


def set_latency(state, request):
    ms = parse_latency(request.body)
    state.set_latency(ms)
    return _ok(ms=ms)


def list_faults(state, request):
    return json_response(200, state.faults())


def add_fault(state, request):
    fault = parse_fault(request.body)
    state.add_fault(fault)
    return json_response(201, {"ok": True, "fault": fault})


def clear_faults(state, request):
    state.clear_faults()
    return _ok()


def start_chaos(state, request):
    chaos = parse_chaos(request.body)
    state.start_chaos(chaos)
    return json_response(201, {"ok": True, "chaos": chaos})


def get_chaos(state, request):
    return json_response(200, state.chaos_report())


def stop_chaos(state, request):
    state.stop_chaos()
    return json_response(200, state.chaos_report())


def get_routes(state, request):
    return json_response(200, state.routes(request.query.get("source")))


def clear_routes(state, request):
    state.clear_routes()
    return _ok()


def set_queue_counts(state, request, dev_id):
    return json_response(200, state.set_queue_counts(dev_id, request.body))


def get_full_state(state, request):
    return json_response(200, state.snapshot())


def update_device(state, request, dev_id):
    return json_response(200, state.update_device(dev_id, request.body))


def remove_device(state, request, dev_id):
    state.remove_device(dev_id)
    return _ok(removed=dev_id)


CONTROL_ROUTES = [
    (re.compile(r"/reset"), {"POST": reset_state}),
    (re.compile(r"/calls"), {"GET": get_calls, "DELETE": clear_calls}),
    (re.compile(r"/latency"), {"POST": set_latency}),
    (re.compile(r"/faults"), {"GET": list_faults, "POST": add_fault, "DELETE": clear_faults}),
    (re.compile(r"/chaos"), {"GET": get_chaos, "POST": start_chaos, "DELETE": stop_chaos}),
    (re.compile(r"/routes"), {"GET": get_routes, "DELETE": clear_routes}),
    (re.compile(r"/queues/([^/]+)"), {"POST": set_queue_counts}),
    (re.compile(r"/devices"), {"GET": get_full_state}),
    (re.compile(r"/devices/([^/]+)"), {"POST": update_device}),
    (re.compile(r"/devices/([^/]+)/remove"), {"POST": remove_device}),
]


def resolve(routes, method, path):
    """(route entry, path arguments) for a method and path; 404 / 405 otherwise."""
    for pattern, methods in routes:
        match = pattern.fullmatch(path)
        if match:
            if method not in methods:
                raise ApiError(405, f"Method {method} not allowed on this path",
                               "method_not_allowed")
            return methods[method], match.groups()
    raise ApiError(404, "No such endpoint", "not_found")


# --- faults ----------------------------------------------------------------------

def _fault_error_code(status):
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "sandbox_fault"


def _raw_content_type(body):
    if not body:
        return None
    kind = "html" if body.lstrip().startswith("<") else "plain"
    return f"text/{kind}; charset=utf-8"


def fault_response(fault):
    status, body = fault["status"], fault["body"]
    if body is None:
        error = ApiError(status, "Injected sandbox fault", _fault_error_code(status))
        response = error_response(error)
    else:
        response = Response(status, body.encode("utf-8"), _raw_content_type(body))
    if fault["retry_after"] is not None:
        response.headers["Retry-After"] = fault["retry_after"]
    return response


def chaos_response(state, request, route, handler, args, chaos):
    """The failure chaos picked for this call.

    A hang is never carried out: it answers late (reads only) or closes the connection
    after `hang_seconds`. A lost answer is a route call carried out (in the ledger) whose
    connection then closes without an answer, at once or after `hang_seconds`. A slow
    answer is the call carried out, its status and headers sent at once, and its body a
    few bytes every TRICKLE_GAP_SECONDS for `slow_seconds`: no single read waits long,
    the whole call does.
    """
    kind, hang = chaos["kind"], chaos["hang_seconds"]
    if kind == "server_error":
        response = error_response(ApiError(500, "Internal server error (sandbox chaos)", "server_error"))
    elif kind == "bad_gateway":
        response = Response(502, BAD_GATEWAY_PAGE.encode("utf-8"), "text/html")
    elif kind == "rate_limited":
        response = error_response(ApiError(429, "Too many requests (sandbox chaos)", "rate_limited"))
        response.headers["Retry-After"] = str(chaos["retry_after"])
    elif kind == "hang" and route in READ_ROUTES and chaos["late"]:
        response = handler(state, request, *args)
        response.delay_seconds = hang
    elif kind == "hang":
        response = Response(0, delay_seconds=hang, drop=True)
    elif kind == "slow_answer":
        response = handler(state, request, *args)
        pieces = max(2, round(chaos["slow_seconds"] / TRICKLE_GAP_SECONDS))
        response.body += b" " * max(0, pieces - len(response.body))  # JSON allows trailing blanks
        response.trickle_seconds = chaos["slow_seconds"]
    else:  # lost_answer
        try:
            state.route_queue(args[0], request.body, answer_lost=True)
        except ApiError:
            pass  # nothing carried out; the answer is lost all the same
        response = Response(0, delay_seconds=hang if chaos["late"] else 0, drop=True)
    response.chaos = kind
    return response


# --- HTTP plumbing -----------------------------------------------------------------

def _parse_json(raw):
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _safe_query(query):
    return {k: ("[redacted]" if k.lower() in _SECRET_QUERY_NAMES else v) for k, v in query.items()}


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SparkBotSandbox/1.0"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format, *args):  # keep test output quiet
        pass

    @property
    def state(self):
        return self.server.state

    def _handle(self):
        request = self._read_request()
        if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
            response = self._serve_api(request)
        elif request.path.startswith(CONTROL_PREFIX + "/"):
            response = self._serve_control(request)
        else:
            response = error_response(ApiError(404, "No such endpoint", "not_found"))
        self._send(response)

    def _read_request(self):
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        return Request(self.command, path, query, self.headers, _parse_json(raw))

    def _serve_control(self, request):
        try:
            handler, args = resolve(CONTROL_ROUTES, request.method,
                                    request.path[len(CONTROL_PREFIX):])
            return handler(self.state, request, *args)
        except ApiError as error:
            return error_response(error)

    def _serve_api(self, request):
        started_at, started = time.time(), time.monotonic()
        time.sleep(self.state.latency_ms / 1000)
        auth = auth_status(request.headers, self.state.api_key)
        try:
            response = self._api_response(request, auth)
        except ApiError as error:
            response = error_response(error)
        call = {
            "method": request.method, "path": request.path,
            "query": _safe_query(request.query), "status": None if response.drop else response.status,
            "auth": auth, "body": request.body, "at": started_at,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
        }
        if response.chaos:
            call["chaos"] = response.chaos
        self.state.record_call(call)
        return response

    def _api_response(self, request, auth):
        if auth != "ok":
            raise ApiError(401, "Invalid or missing API key", "unauthorized")
        (route, handler), args = resolve(API_ROUTES, request.method,
                                         request.path[len(API_PREFIX):])
        fault = self.state.take_fault(request.method, route, args[0] if args else None)
        if fault:
            time.sleep(fault["hang_seconds"])
            if fault["status"] is not None:
                return fault_response(fault)
        chaos = self.state.take_chaos(route)
        if chaos:
            return chaos_response(self.state, request, route, handler, args, chaos)
        return handler(self.state, request, *args)

    def _send(self, response):
        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        if response.drop:
            self._drop_connection()
            return
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if response.trickle_seconds:
                self._trickle(response)
            else:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. timeout)
            self.close_connection = True

    def _trickle(self, response):
        pieces = max(2, round(response.trickle_seconds / TRICKLE_GAP_SECONDS))
        size = -(-len(response.body) // pieces)
        for start in range(0, len(response.body), size):
            time.sleep(response.trickle_seconds / pieces)
            self.wfile.write(response.body[start:start + size])

    def _drop_connection(self):
        """Close the connection without a byte of answer, as a dying server or proxy would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server holding one `SandboxState`; `shutdown()` also closes it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state):
        self.state = state
        self._open_connections = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SandboxHandler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """A client that gave up (reset or closed its connection) is normal here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    @property
    def base_url(self):
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{API_PREFIX}"

    def shutdown(self):
        """Stop serving and drop kept-alive connections too, as a server that went away would."""
        super().shutdown()
        self.server_close()
        with self._connections_lock:
            connections, self._open_connections = list(self._open_connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_server(host="127.0.0.1", port=8900, state=None):
    """A bound, not yet serving, sandbox server (call `serve_forever()`)."""
    return SandboxServer((host, port), state or SandboxState())


def serve_in_thread(port=0, state=None, host="127.0.0.1"):
    """(server, base_url) of a sandbox serving from a daemon thread; port 0 = a free port."""
    server = make_server(host, port, state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="sparkbot-sandbox", daemon=True)
    thread.start()
    return server, server.base_url
