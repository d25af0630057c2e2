"""A client for firecracker's REST API on its Unix socket (HTTP/1.1 with h11).

One connection per request keeps the client stateless; firecracker answers 204 on
success and a JSON `{"fault_message": ...}` on failure, raised as FirecrackerApiError.
"""

from __future__ import annotations

import json
from typing import Any

import h11
import trio

from dms._http11 import exchange
from dms.executor._errors import FirecrackerApiError


class FirecrackerApi:
    def __init__(self, socket_path: str, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; returns the decoded JSON body (None when empty)."""
        payload = json.dumps(body).encode() if body is not None else b""
        headers = [("Host", "localhost"), ("Accept", "application/json")]
        if body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        request = h11.Request(method=method, target=path, headers=headers)
        with trio.fail_after(self.timeout):
            stream = await trio.open_unix_socket(self.socket_path)
            async with stream:
                status, answer = await exchange(stream, request, payload)
        decoded = json.loads(answer) if answer.strip() else None
        if status >= 300:
            fault = decoded.get("fault_message", "") if isinstance(decoded, dict) else answer
            raise FirecrackerApiError(method, path, status, str(fault))
        return decoded

    async def put_machine_config(self, vcpus: int, mem_mib: int) -> None:
        await self.request("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem_mib})

    async def put_boot_source(self, kernel: str, boot_args: str) -> None:
        body = {"kernel_image_path": kernel, "boot_args": boot_args}
        await self.request("PUT", "/boot-source", body)

    async def put_root_drive(self, path: str, read_only: bool = False) -> None:
        body = {
            "drive_id": "rootfs",
            "path_on_host": path,
            "is_root_device": True,
            "is_read_only": read_only,
        }
        await self.request("PUT", "/drives/rootfs", body)

    async def put_network_interface(self, iface: str, tap: str, mac: str | None) -> None:
        body: dict[str, Any] = {"iface_id": iface, "host_dev_name": tap}
        if mac:
            body["guest_mac"] = mac
        await self.request("PUT", f"/network-interfaces/{iface}", body)

    async def start_instance(self) -> None:
        await self.request("PUT", "/actions", {"action_type": "InstanceStart"})

    async def send_ctrl_alt_del(self) -> None:
        await self.request("PUT", "/actions", {"action_type": "SendCtrlAltDel"})

    async def instance_info(self) -> Any:
        return await self.request("GET", "/")
