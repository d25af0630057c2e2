"""The actor runtime: actors, their behaviors and roles, admission, routing and the
actor system that joins them to a carrier (the mesh, in a node).

What is not re-exported here is not promised.
"""

from dms.actor._actor import Actor, Main, Role, Runtime
from dms.actor._admission import (
    DEFAULT_POLICY,
    Accept,
    Admission,
    AdmissionPolicy,
    Drop,
    Refuse,
    ReplyIn,
    Verdict,
)
from dms.actor._args import InvalidArgs, structure_args, unstructure_result, wire_converter
from dms.actor._authority import ROOT_AUTHORITY, Authority, child_authority, clamp_expiry
from dms.actor._behavior import Behavior, BehaviorSpec, Message, behavior
from dms.actor._carrier import Carrier
from dms.actor._errors import (
    ActorError,
    ActorStopped,
    BehaviorFailed,
    ExceedsParent,
    InvalidBehavior,
    RemoteError,
    RequestTimeout,
    Undeliverable,
)
from dms.actor._fair import FairQueue, FairShare
from dms.actor._grants import GRANT_LIFETIME, REVOCATION_RETENTION, GrantTerm, revoke_grant
from dms.actor._handle import Handle
from dms.actor._ratelimit import RateLimit, RateLimiter
from dms.actor._replay import ReplayCache, ReplayMemory
from dms.actor._routing import Action, AnswerRefusal, Deliver, Ignore, Router, Settle, sender_of
from dms.actor._system import ActorSystem
from dms.actor._wire import REPLY, Envelope, decode_message, encode_message

__all__ = [
    "DEFAULT_POLICY", "GRANT_LIFETIME", "REPLY", "ROOT_AUTHORITY", "Accept", "Action", "Actor",
    "ActorError", "ActorStopped", "ActorSystem", "Admission", "AdmissionPolicy",
    "AnswerRefusal", "Authority", "Behavior", "BehaviorFailed", "BehaviorSpec", "Carrier",
    "Deliver", "Drop", "Envelope", "ExceedsParent", "FairQueue", "FairShare", "GrantTerm", "Handle", "Ignore", "InvalidArgs",
    "InvalidBehavior", "Main", "Message", "RateLimit", "RateLimiter", "REVOCATION_RETENTION", "Refuse", "RemoteError",
    "ReplayCache", "ReplayMemory", "ReplyIn", "RequestTimeout", "Role", "Router", "Runtime",
    "Settle",
    "Undeliverable", "Verdict", "behavior", "child_authority", "clamp_expiry",
    "decode_message", "encode_message", "revoke_grant", "sender_of", "structure_args", "unstructure_result",
    "wire_converter",
]
