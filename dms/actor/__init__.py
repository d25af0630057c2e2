"""Actors: handles, behaviors, the admission pipeline and replies."""

from dms.actor.actor import Actor, Message
from dms.actor.admission import Accept, Admission, AdmissionPolicy, Drop, Refuse, ReplyIn
from dms.actor.errors import ActorError, ActorStopped, BehaviorFailed, RemoteError, RequestTimeout
from dms.actor.handle import Handle
from dms.actor.ratelimit import RateLimit

__all__ = [
    "Accept", "Actor", "ActorError", "ActorStopped", "Admission", "AdmissionPolicy",
    "BehaviorFailed", "Drop", "Handle", "Message", "RateLimit", "Refuse", "RemoteError",
    "ReplyIn", "RequestTimeout",
]
