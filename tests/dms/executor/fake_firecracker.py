"""A stand-in for the firecracker binary: serves the API subset dms uses on
`--api-sock`, records each request as a JSON line in $FAKE_FC_RECORD, refuses a
kernel path containing "missing" like firecracker does, and exits on SendCtrlAltDel.
Run as a script so the executor drives it exactly like the real binary."""

import json
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200, {"id": "fake", "state": "Running", "vmm_version": "fake"})

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"null")
        with open(os.environ["FAKE_FC_RECORD"], "a") as record:
            record.write(json.dumps({"path": self.path, "body": body}) + "\n")
        if self.path == "/boot-source" and "missing" in body.get("kernel_image_path", ""):
            self._answer(400, {"fault_message": "Kernel file cannot be opened"})
            return
        if body == {"action_type": "SendCtrlAltDel"}:
            print("guest shutting down", flush=True)
            threading.Thread(target=self.server.shutdown).start()
        self._answer(204)


def main() -> None:
    socket_path = sys.argv[sys.argv.index("--api-sock") + 1]
    print("fake firecracker up", flush=True)
    with socketserver.ThreadingUnixStreamServer(socket_path, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
