"""A stand-in SIEM collector: accepts ``POST /audit`` batches of JSON lines and appends each
line to a file, fsynced before answering 200. Run as its own process so a test can kill it
mid-stream (SIGKILL) and start it again on the same port and file.

    python -m bot.devtools.audit_receiver --port 8089 --out received.jsonl [--token T]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aiohttp import web


def build_app(out: Path, *, token: str | None) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        if token and request.headers.get("Authorization") != f"Bearer {token}":
            return web.Response(status=401, text="bad token")
        body = await request.read()
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/audit", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="audit_receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--token")
    args = parser.parse_args()
    print("listening", flush=True)
    web.run_app(
        build_app(Path(args.out), token=args.token),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
