"""Deploy an ensemble across two providers, watch it, shut it down: the flow in one page.

An organisation (a key every node anchors) runs a small market over loopback
TCP links: an orchestrator node, two provider nodes and the user's own node. The
organisation grants the orchestrator and the providers `/dms/deployment` (to ask for
bids, and to bid) and the user `/dms/node/deployment` (to deploy on a node). The user
deploys two process allocations on two nodes of the ensemble, `db` (a service) and
`report` (a task that `depends_on` db, so it starts only once db runs, on whichever
provider it lands), prints the deployment's events as they come (the events
long-poll), shuts it down once the task has reported, and prints the final state.

Run: python examples/deploy.py     (a few seconds; exits 0 when all of that happened)
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from dms.deployment import EVENTS, NEW, SHUTDOWN, STATUS, DeploymentSettings
from dms.node import Node, open_node
from dms.provider import Capacity, ProviderConfig, millicores
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

# 0.3 cores each on providers of 0.5: the two nodes cannot share a provider.
ENSEMBLE = """
version: V1
allocations:
  db:
    type: service
    executor: process
    resources: {cpu: 0.3, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["60"]}
  report:
    type: task
    executor: process
    resources: {cpu: 0.3, ram: 32Mi, disk: 16Mi}
    execution: {command: sh, args: [-c, "echo db is up, reporting; echo report done"]}
    depends_on: [db]
nodes:
  data: {allocations: [db]}
  jobs: {allocations: [report]}
"""
PROVIDER = Capacity(millicores=millicores(0.5, round_up=False), ram=2**30, disk=2**30)
# A bid round closes as soon as every node has this many candidates. With one, the
# first provider's bid (it could host either node, not both) would close it, the solver
# would find no placement, and the orchestrator would sleep out the round (2 s) before
# asking again; with two it waits for both bids.
SETTINGS = DeploymentSettings(minimum_candidates=2)


class Watcher:
    """Prints a deployment's events as the events long-poll returns them."""

    def __init__(self, user: Node, orchestrator: Node, deployment: str,
                 names: dict[str, str], started: float) -> None:
        self.user, self.orchestrator = user, orchestrator
        self.deployment, self.names, self.started = deployment, names, started
        self.events: list[dict[str, Any]] = []
        self.changed = trio.Event()

    async def watch(self) -> None:
        """Until the deployment says nothing more will come."""
        after = 0
        while True:
            reply = await self.user.root.invoke(
                self.orchestrator.root.handle, EVENTS,
                {"id": self.deployment, "after": after, "wait": 5}, timeout=15)
            for event in reply["events"]:
                print(self.line(event))
                self.events.append(event)
                after = event["seq"]
            self.changed.set()
            self.changed = trio.Event()
            if reply["final"]:
                return

    def line(self, event: dict[str, Any]) -> str:
        payload, kind = event["payload"], event["kind"]
        at = f"#{event['seq']:<3} +{event['at'] - self.started:5.2f}s"
        if kind == "phase":
            detail = f"  ({payload['detail']})" if payload["detail"] else ""
            return f"{at}  phase       {payload['phase']}{detail}"
        if kind == "allocation":
            where = self.names.get(payload["provider"], payload["provider"])
            text = f"{at}  allocation  {payload['allocation']} on {where}: {payload['event']}"
            if payload.get("exit_code") is not None:
                text += f" (exit code {payload['exit_code']})"
            if payload.get("logs_tail"):
                text += "".join(f"\n{'':14}| {line}" for line in
                                payload["logs_tail"].strip().splitlines())
            return text
        if kind == "unplaceable":  # this round's bids cannot host it: ask again
            return f"{at}  unplaceable {payload['explanation'].splitlines()[0]}"
        if kind == "committed":
            where = self.names.get(payload["provider"], payload["provider"])
            return f"{at}  committed   {', '.join(payload['nodes'])} on {where}"
        return f"{at}  {kind:<11} {payload.get('step', '')} {payload.get('detail', '')}"[:200]

    def saw(self, allocation: str, what: str) -> bool:
        return any(e["kind"] == "allocation" and e["payload"]["allocation"] == allocation
                   and e["payload"]["event"] == what for e in self.events)

    def order(self, what: str) -> list[str]:
        return [e["payload"]["allocation"] for e in self.events
                if e["kind"] == "allocation" and e["payload"]["event"] == what]

    async def wait_until(self, condition: Any) -> None:
        while not condition():
            await self.changed.wait()


async def deploy() -> int:
    org = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="dms-deploy-example-") as work:
        async with contextlib.AsyncExitStack() as stack:
            orchestrator = await stack.enter_async_context(open_node(
                listen="tcp://127.0.0.1:0", anchors=[org.did], deployments=SETTINGS))
            assert orchestrator.address is not None
            providers = []
            for n in range(2):
                config = ProviderConfig(Path(work) / f"provider{n}", (ExecutorKind.PROCESS,),
                                        capacity=PROVIDER)
                providers.append(await stack.enter_async_context(open_node(
                    listen="tcp://127.0.0.1:0", bootstrap=[orchestrator.address],
                    anchors=[org.did], provider=config)))
            user = await stack.enter_async_context(open_node(
                bootstrap=[orchestrator.address], anchors=[org.did]))

            # The organisation's grants: who may do what in this market.
            for node in (orchestrator, *providers):
                node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
            user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
            names = {orchestrator.did: "orchestrator", user.did: "user"}
            names.update({p.did: f"provider {'AB'[n]}" for n, p in enumerate(providers)})
            for did, name in names.items():
                print(f"{name:<12} {did}")
            print(f"{'org':<12} {org.did}\n")

            await orchestrator.mesh.wait_connected(3)
            for node in (*providers, user):
                await node.mesh.wait_connected(1)
            await trio.sleep(0.3)  # the providers' topic subscriptions reach the orchestrator

            started = time.time()
            reply = await user.root.invoke(orchestrator.root.handle, NEW, {"ensemble": ENSEMBLE})
            deployment = reply["id"]
            print(f"deployment {deployment}\n")
            watcher = Watcher(user, orchestrator, deployment, names, started)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.watch)
                await watcher.wait_until(lambda: watcher.saw("report", "completed")
                                         or any(e["kind"] == "phase" and e["payload"]["phase"]
                                                == "failed" for e in watcher.events))
                await user.root.invoke(orchestrator.root.handle, SHUTDOWN, {"id": deployment})
            status = await user.root.invoke(orchestrator.root.handle, STATUS, {"id": deployment})

            print(f"\nfinal: {status['phase']}{'  ' + status['failure'] if status['failure'] else ''}")
            for node, name in sorted(status["assignment"].items()):
                print(f"  node {node} ran on {names.get(name, name)}")
            for allocation in status["allocations"]:
                print(f"  allocation {allocation['name']}: {allocation['state']}")
            clean = True
            for n, node in enumerate(providers):
                assert node.provider is not None
                book = node.provider.book
                left = book.reservations()
                clean &= not left and book.free(time.time()) == book.offered
                print(f"  provider {'AB'[n]}: {len(left)} reservations held, "
                      f"free {'==' if book.free(time.time()) == book.offered else '!='} offered")
            running = watcher.order("running")
            ok = (status["phase"] == "completed" and clean
                  and running[:1] == ["db"] and "report" in running
                  and watcher.saw("report", "completed")
                  and len(set(status["assignment"].values())) == 2)
            print("\nas described" if ok else "\nNOT as described")
            return 0 if ok else 1


async def main() -> int:
    with trio.fail_after(60):  # a hang is a failure, not a wait for ever
        return await deploy()


if __name__ == "__main__":
    raise SystemExit(trio.run(main))
