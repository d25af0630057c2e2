"""A planned allocation runs: the plan drives a real process executor and supervisor."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import trio

from dms.ensemble import load_ensemble
from dms.executor import ProcessExecutor
from dms.supervise import AllocationSupervisor, EventKind, open_event_channel
from dms.workload.plan import plan_workload


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_planned_http_service_turns_healthy_on_its_published_port(tmp_path: Path) -> None:
    port = free_port()
    ensemble = load_ensemble(f"""
version: V1
allocations:
  web:
    executor: process
    resources: {{cpu: 0.5, ram: 256Mi}}
    execution:
      command: sh
      args: ["-c", "echo '  up  ' > health && exec {sys.executable} -m http.server -b 127.0.0.1 {port}"]
    healthcheck:
      type: http
      endpoint: /health
      interval: 100ms
      timeout: 1s
      response: {{value: up, type: string}}
nodes:
  n1:
    allocations: [web]
    ports: [{{private: {port}, public: {port}, allocation: web}}]
""")
    plan = plan_workload(ensemble, "web")
    sink, receive = open_event_channel()
    async with ProcessExecutor(tmp_path) as executor, trio.open_nursery() as nursery:
        supervisor = AllocationSupervisor(
            executor, plan.execution, sink, health=plan.health, policy=plan.restart, stop_grace=1
        )
        with trio.fail_after(20):
            await nursery.start(supervisor.run)
            async for event in receive:
                if event.kind is EventKind.HEALTHY:
                    break
        nursery.cancel_scope.cancel()
    assert event.detail == "HTTP 200"


async def test_planned_script_check_failing_leaves_a_stay_down_allocation_down(tmp_path: Path) -> None:
    ensemble = load_ensemble("""
version: V1
scripts:
  probe: "test -f ready\\ncat ready\\n"
allocations:
  worker:
    executor: process
    resources: {cpu: 0.5, ram: 256Mi}
    execution: {command: sleep, args: ["30"]}
    failure_recovery: stay_down
    healthcheck: {type: command, script: probe, interval: 50ms, retries: 2, response: {value: ok}}
nodes:
  n1:
    allocations: [worker]
""")
    plan = plan_workload(ensemble, "worker")
    sink, receive = open_event_channel()
    async with ProcessExecutor(tmp_path) as executor:
        supervisor = AllocationSupervisor(
            executor, plan.execution, sink, health=plan.health, policy=plan.restart, stop_grace=1
        )
        with trio.fail_after(20):
            await supervisor.run()
    kinds = []
    while True:
        try:
            kinds.append(receive.receive_nowait().kind)
        except trio.WouldBlock:
            break
    assert kinds[-2:] == [EventKind.UNHEALTHY, EventKind.STAYED_DOWN]
    assert supervisor.status().restarts == 0
