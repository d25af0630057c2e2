"""The ensemble network: private 10/8 addresses, `.internal` DNS, and the data plane.

`plan_addresses` gives an ensemble its subnet and each allocation its address (pure);
`plan_to_wire` / `plan_from_wire` carry the plan in allocate messages. spec/network.md
describes the rules.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.network._dns import TTL, ZONE, DnsRecords, Resolver, records_for
    from dms.network._dns_forward import DnsUpstream, Forward, parse_upstream
    from dms.network._dns_server import Forwarder, QueryBudget, dns_socket, serve_dns
    from dms.network._ensemble_net import RESOLV_CONF, RESOLVER, EnsembleNetwork, ensemble_network
    from dms.network._errors import (
        InvalidFrame,
        InvalidPlan,
        NamespaceError,
        NetworkError,
        NoFreeSubnet,
        TooManyAllocations,
    )
    from dms.network._frame import (
        MAX_BATCH_BYTES,
        MAX_PACKETS,
        Batcher,
        Membership,
        PacketBatch,
        decode_batch,
        encode_batch,
        ensemble_tag,
    )
    from dms.network._held import HeldNetwork, HeldNetworks
    from dms.network._host import missing_capability, reconcile_namespaces
    from dms.network._join import MAX_JOINED, JoinedNetworks, joined_networks, joined_prefix
    from dms.network._netns import (
        NETNS_ETC,
        attach_namespace,
        create_namespace,
        delete_namespace,
        entered,
        entered_path,
        namespace_exists,
        namespace_names,
    )
    from dms.network._plan import (
        DEFAULT_PREFIX,
        LARGEST_PREFIX,
        PRIVATE_SPACE,
        AddressPlan,
        NetworkOrder,
        free_subnet,
        plan_addresses,
        prefix_for,
        room,
    )
    from dms.network._ports import publish_port
    from dms.network._pump import Pump, SendFrame
    from dms.network._route import PacketDrop, PacketRouter, RemotePeer
    from dms.network._tun import TunDevice, open_tun
    from dms.network._wire import order_from_wire, order_to_wire, plan_from_wire, plan_to_wire
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.network._dns": ("TTL", "ZONE", "DnsRecords", "Resolver", "records_for"),
        "dms.network._dns_forward": ("DnsUpstream", "Forward", "parse_upstream"),
        "dms.network._dns_server": ("Forwarder", "QueryBudget", "dns_socket", "serve_dns"),
        "dms.network._ensemble_net": (
            "RESOLV_CONF", "RESOLVER", "EnsembleNetwork", "ensemble_network",
        ),
        "dms.network._errors": (
            "InvalidFrame", "InvalidPlan", "NamespaceError", "NetworkError", "NoFreeSubnet",
            "TooManyAllocations",
        ),
        "dms.network._frame": (
            "MAX_BATCH_BYTES", "MAX_PACKETS", "Batcher", "Membership", "PacketBatch",
            "decode_batch", "encode_batch", "ensemble_tag",
        ),
        "dms.network._held": ("HeldNetwork", "HeldNetworks"),
        "dms.network._host": ("missing_capability", "reconcile_namespaces"),
        "dms.network._join": ("MAX_JOINED", "JoinedNetworks", "joined_networks", "joined_prefix"),
        "dms.network._netns": (
            "NETNS_ETC", "attach_namespace", "create_namespace", "delete_namespace", "entered",
            "entered_path", "namespace_exists", "namespace_names",
        ),
        "dms.network._plan": (
            "DEFAULT_PREFIX", "LARGEST_PREFIX", "PRIVATE_SPACE", "AddressPlan", "NetworkOrder",
            "free_subnet", "plan_addresses", "prefix_for", "room",
        ),
        "dms.network._ports": ("publish_port",),
        "dms.network._pump": ("Pump", "SendFrame"),
        "dms.network._route": ("PacketDrop", "PacketRouter", "RemotePeer"),
        "dms.network._tun": ("TunDevice", "open_tun"),
        "dms.network._wire": (
            "order_from_wire", "order_to_wire", "plan_from_wire", "plan_to_wire",
        ),
    })

__all__ = [
    "DEFAULT_PREFIX",
    "LARGEST_PREFIX",
    "PRIVATE_SPACE",
    "TTL",
    "ZONE",
    "MAX_BATCH_BYTES",
    "MAX_PACKETS",
    "RESOLVER",
    "Batcher",
    "Membership",
    "NetworkOrder",
    "PacketBatch",
    "decode_batch",
    "encode_batch",
    "ensemble_tag",
    "RESOLV_CONF",
    "MAX_JOINED",
    "HeldNetwork",
    "HeldNetworks",
    "JoinedNetworks",
    "joined_networks",
    "joined_prefix",
    "NETNS_ETC",
    "AddressPlan",
    "PacketDrop",
    "EnsembleNetwork",
    "Pump",
    "RemotePeer",
    "SendFrame",
    "PacketRouter",
    "TunDevice",
    "attach_namespace",
    "create_namespace",
    "delete_namespace",
    "ensemble_network",
    "entered",
    "entered_path",
    "missing_capability",
    "reconcile_namespaces",
    "namespace_exists",
    "namespace_names",
    "open_tun",
    "order_from_wire",
    "order_to_wire",
    "DnsRecords",
    "DnsUpstream",
    "Forward",
    "Forwarder",
    "QueryBudget",
    "Resolver",
    "dns_socket",
    "records_for",
    "serve_dns",
    "InvalidFrame",
    "InvalidPlan",
    "NamespaceError",
    "NetworkError",
    "NoFreeSubnet",
    "TooManyAllocations",
    "free_subnet",
    "plan_addresses",
    "parse_upstream",
    "plan_from_wire",
    "plan_to_wire",
    "publish_port",
    "prefix_for",
    "room",
]
