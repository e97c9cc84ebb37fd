"""CLI: python -m sparkbot_sandbox --port 8900 [--host H] [--api-key KEY]
                                  [--extra-devices N] [--latency-ms MS]

Prints "SparkBot sandbox on http://HOST:PORT/v1" once listening; stops on SIGTERM/SIGINT.
"""

import argparse
import os
import signal
import sys
import threading

from .seed import MAX_EXTRA_DEVICES
from .server import serve_in_thread
from .state import DEFAULT_API_KEY, SandboxState

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _count(text):
    value = int(text)
    if not 0 <= value <= MAX_EXTRA_DEVICES:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_EXTRA_DEVICES}")
    return value


def _port(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def _non_negative(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sparkbot_sandbox",
                                     description="Fake SparkBot API (for development and tests).")
    parser.add_argument("--port", type=_port, default=8900, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=os.environ.get("SPARKBOT_API_KEY") or DEFAULT_API_KEY,
                        help="default: $SPARKBOT_API_KEY, else the sandbox's fixed key")
    parser.add_argument("--extra-devices", type=_count, default=0,
                        help="append N generated devices (Agent 0001...)")
    parser.add_argument("--latency-ms", type=_non_negative, default=0.0,
                        help="latency added to every /v1 call")
    args = parser.parse_args(argv)
    if not args.api_key.strip():
        parser.error("--api-key must not be empty")
    return args


def _start(args):
    """Start serving; server threads block the stop signals so the main thread gets them."""
    state = SandboxState(api_key=args.api_key, extra_devices=args.extra_devices,
                         latency_ms=args.latency_ms)
    can_mask = hasattr(signal, "pthread_sigmask")
    if can_mask:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return serve_in_thread(args.port, state=state, host=args.host)
    finally:
        if can_mask:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def main(argv=None):
    args = parse_args(argv)
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    try:
        server, base_url = _start(args)
    except OSError as error:
        print(f"sparkbot_sandbox: cannot listen on {args.host}:{args.port}: {error}",
              file=sys.stderr)
        return 1
    print(f"SparkBot sandbox on {base_url}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
