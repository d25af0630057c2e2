"""CIDv1 values: the one link type of the IPLD data model these tokens use.

CIDs on the hot path are built by hand (CIDv1, dag-cbor, sha2-256, base32); the
multiformats package is the reference they are tested against, and parses the
multibases that are not base32.
"""

from __future__ import annotations

import base64
import hashlib

from ucan.errors import MalformedToken

DAG_CBOR = 0x71
RAW = 0x55
SHA2_256 = 0x12


class CID:
    """A CIDv1 (binary form in `raw`); `str()` is the base32 multibase text form."""

    __slots__ = ("raw", "_text")

    def __init__(self, raw: bytes) -> None:
        # The native decoder calls this for every link it reads: keep it short.
        if len(raw) < 4 or raw[0] != 0x01:
            raise MalformedToken(f"not a CIDv1: {raw[:8].hex()}...")
        # the usual one (a one-byte codec, sha2-256 and its 32 bytes) at a glance
        usual = len(raw) == 36 and raw[1] < 0x80 and raw[2] == SHA2_256 and raw[3] == 0x20
        if not usual and not _well_formed(raw):
            raise MalformedToken(f"not a CID: its multihash does not fill it: {raw[:8].hex()}...")
        self.raw = raw if type(raw) is bytes else bytes(raw)
        self._text: str | None = None

    @classmethod
    def for_bytes(cls, data: bytes, codec: int = DAG_CBOR) -> CID:
        """The CIDv1 (sha2-256) addressing `data` encoded with `codec`."""
        cid = object.__new__(cls)  # well-formed by construction: skip __init__'s checks
        cid.raw = bytes((0x01, codec, SHA2_256, 0x20)) + hashlib.sha256(data).digest()
        cid._text = None
        return cid

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the base32 ('b...') text form; other multibases go through multiformats."""
        if not isinstance(text, str) or not text:
            raise MalformedToken(f"not a CID: {text!r}")
        if text[0] == "b":
            body = text[1:].upper()
            try:
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            except ValueError:
                raise MalformedToken(f"not a base32 CID: {text!r}") from None
            cid = cls(raw)
            if str(cid) != text or not _well_formed(raw):  # no bits dropped, a real multihash
                raise MalformedToken(f"not a CID: {text!r}")
            return cid
        try:
            from multiformats import CID as ReferenceCID

            ref = ReferenceCID.decode(text)
        except Exception as exc:
            raise MalformedToken(f"not a CID: {text!r} ({exc})") from None
        if ref.version != 1:
            raise MalformedToken(f"only CIDv1 is accepted: {text!r}")
        return cls(bytes(ref))

    def __bytes__(self) -> bytes:
        # The native encoder asks a link for its binary form this way.
        return self.raw

    def __str__(self) -> str:
        if self._text is None:
            self._text = "b" + base64.b32encode(self.raw).decode("ascii").rstrip("=").lower()
        return self._text

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)  # bytes keep their hash once computed


def _well_formed(raw: bytes) -> bool:
    """A CIDv1's bytes: version, codec, then a multihash whose digest fills the rest."""
    try:
        from multiformats import CID as ReferenceCID

        ReferenceCID.decode(raw)
    except Exception:
        return False
    return True
