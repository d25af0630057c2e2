"""Named signing keys on disk, private halves encrypted with a passphrase.

One JSON file per key (`<name>.key`, mode 0600) in a keystore directory: the did:key in
clear (so listing keys or printing a DID needs no passphrase), and the 32-byte Ed25519
seed sealed with a SecretBox whose key is derived from the passphrase with argon2id.
The KDF parameters are stored in the file, so stronger defaults later still open old
keys. Opening a key re-derives its DID and compares it with the clear one: a file whose
DID was edited is refused rather than trusted.

Where the directory is: `--keystore` (callers pass it), else `UCAN_KEYSTORE`, else
`~/.config/ucan/keys`. Where the passphrase comes from: `UCAN_PASSPHRASE`, else a
prompt on the terminal, else `PassphraseUnavailable` (never a silent empty passphrase).
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ucan.did import public_key_from_did
from ucan.errors import MalformedToken
from ucan.keys import SigningKey

DEFAULT_KEYSTORE = "~/.config/ucan/keys"
KEYSTORE_ENV = "UCAN_KEYSTORE"
PASSPHRASE_ENV = "UCAN_PASSPHRASE"
_FORMAT = "ucan-key/1"
_SUFFIX = ".key"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class KeystoreError(Exception):
    """Base of keystore failures; `name` is stable for machines (like UcanError's)."""

    name = "KeystoreError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class InvalidKeyName(KeystoreError):
    name = "InvalidKeyName"


class KeyNotFound(KeystoreError):
    name = "KeyNotFound"


class KeyExists(KeystoreError):
    name = "KeyExists"


class WrongPassphrase(KeystoreError):
    name = "WrongPassphrase"


class PassphraseUnavailable(KeystoreError):
    name = "PassphraseUnavailable"


class CorruptKeyFile(KeystoreError):
    name = "CorruptKeyFile"


@attrs.frozen
class KdfLimits:
    """argon2id cost; stored in each key file."""

    opslimit: int
    memlimit: int


INTERACTIVE = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
                        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)
# For tests only: keys protected this way fall to a laptop in seconds.
FAST_INSECURE = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


@attrs.frozen
class KeyEntry:
    """What the keystore knows about a key without its passphrase."""

    name: str
    did: str
    path: Path


@attrs.frozen
class KeyListing:
    """A keystore's readable keys and the failures of its unreadable key files."""

    keys: tuple[KeyEntry, ...]
    unreadable: tuple[KeystoreError, ...]


def keystore_directory(option: str | os.PathLike[str] | None = None,
                       env: Mapping[str, str] | None = None) -> Path:
    """The keystore directory: `option`, else $UCAN_KEYSTORE, else ~/.config/ucan/keys."""
    environ = os.environ if env is None else env
    chosen = option if option is not None else environ.get(KEYSTORE_ENV) or DEFAULT_KEYSTORE
    return Path(chosen).expanduser()


class Keystore:
    """A directory of passphrase-encrypted key files."""

    def __init__(self, directory: str | os.PathLike[str], *,
                 limits: KdfLimits = INTERACTIVE) -> None:
        self.directory = Path(directory).expanduser()
        self.limits = limits

    def path_of(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidKeyName(
                f"key name {name!r} must be 1-64 letters, digits, '_', '.' or '-' "
                "and not start with '.' or '-'"
            )
        return self.directory / (name + _SUFFIX)

    def create(self, name: str, passphrase: str, *, key: SigningKey | None = None) -> KeyEntry:
        """Write a new key (generated unless given) under `name`; KeyExists if taken."""
        path = self.path_of(name)
        if not passphrase:
            raise PassphraseUnavailable(f"refusing to protect key {name!r} with an empty passphrase")
        key = SigningKey.generate() if key is None else key
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(self._derive(passphrase, salt, self.limits))
        record = {
            "format": _FORMAT,
            "name": name,
            "did": key.did,
            "kdf": {"alg": "argon2id", "opslimit": self.limits.opslimit,
                    "memlimit": self.limits.memlimit, "salt": _b64(salt)},
            "sealed_seed": _b64(bytes(box.encrypt(key.seed))),
        }
        data = (json.dumps(record, indent=2) + "\n").encode()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.exists():
                raise KeyExists(f"key {name!r} already exists at {path}") from None
            raise KeystoreError(f"keystore {self.directory} is not a directory") from None
        except OSError as exc:
            raise KeystoreError(
                f"cannot write key {name!r} in keystore {self.directory}: {exc.strerror or exc}"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return KeyEntry(name, key.did, path)

    def entry(self, name: str) -> KeyEntry:
        """A key's name, DID and file, read without the passphrase."""
        path = self.path_of(name)
        record = self._read(name, path)
        return KeyEntry(name, record["did"], path)

    def did(self, name: str) -> str:
        return self.entry(name).did

    def list(self) -> list[KeyEntry]:
        """Every key in the directory, sorted by name (an absent directory has none);
        CorruptKeyFile for the first unreadable key file (`survey` lists around them)."""
        listing = self.survey()
        if listing.unreadable:
            raise listing.unreadable[0]
        return list(listing.keys)

    def survey(self) -> KeyListing:
        """Every readable key, sorted by name, and the failure of each unreadable one:
        one damaged file must not hide the others."""
        if not self.directory.is_dir():
            return KeyListing((), ())
        names = sorted(p.name[: -len(_SUFFIX)] for p in self.directory.glob("*" + _SUFFIX))
        keys: list[KeyEntry] = []
        unreadable: list[KeystoreError] = []
        for name in filter(_NAME.fullmatch, names):
            try:
                keys.append(self.entry(name))
            except KeystoreError as exc:
                unreadable.append(exc)
        return KeyListing(tuple(keys), tuple(unreadable))

    def load(self, name: str, passphrase: str) -> SigningKey:
        """Decrypt key `name`; WrongPassphrase when `passphrase` does not open it."""
        path = self.path_of(name)
        record = self._read(name, path)
        try:
            kdf = record["kdf"]
            limits = KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
            salt = base64.b64decode(kdf["salt"], validate=True)
            sealed = base64.b64decode(record["sealed_seed"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptKeyFile(f"{path}: unreadable kdf or sealed_seed ({exc})") from None
        try:
            seed = nacl.secret.SecretBox(self._derive(passphrase, salt, limits)).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(f"the passphrase does not open key {name!r} ({path})") from None
        key = SigningKey.from_seed(seed)
        if key.did != record["did"]:
            raise CorruptKeyFile(
                f"{path}: the stored did {record['did']} is not the key's own did {key.did}"
            )
        return key

    def _read(self, name: str, path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            if not self.directory.is_dir():  # often a mistyped --keystore
                raise KeyNotFound(
                    f"keystore {self.directory} does not exist: create key {name!r} in it "
                    f"with `ucan --keystore {self.directory} key new {name}`, or give the "
                    f"keystore that holds it (--keystore or ${KEYSTORE_ENV})"
                ) from None
            raise KeyNotFound(
                f"no key named {name!r} in {self.directory}: create it with "
                f"`ucan key new {name}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise CorruptKeyFile(f"{path}: {exc}") from None
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise CorruptKeyFile(f"{path}: not a {_FORMAT} key file")
        try:
            public_key_from_did(record.get("did"))
        except MalformedToken:
            raise CorruptKeyFile(f"{path}: did {record.get('did')!r} is not a did:key") from None
        return record

    @staticmethod
    def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
        try:
            return bytes(nacl.pwhash.argon2id.kdf(
                nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt,
                opslimit=limits.opslimit, memlimit=limits.memlimit,
            ))
        except (nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
            raise CorruptKeyFile(f"invalid kdf parameters: {exc}") from None


def open_key(directory: str | os.PathLike[str], name: str,
             passphrase: str | None = None) -> SigningKey:
    """An existing key, decrypted. Never creates a key or a directory: a missing one is
    `KeyNotFound` (the key, or the keystore directory) saying how to create it, before any
    passphrase is asked. The passphrase is `passphrase`, else `resolve_passphrase`."""
    store = Keystore(directory)
    store.entry(name)
    return store.load(name, resolve_passphrase(name) if passphrase is None else passphrase)


def resolve_passphrase(
    name: str,
    *,
    confirm: bool = False,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> str:
    """The passphrase for key `name`: $UCAN_PASSPHRASE, else a terminal prompt (asked
    twice when `confirm`), else PassphraseUnavailable saying how to provide one."""
    environ = os.environ if env is None else env
    if PASSPHRASE_ENV in environ:
        return environ[PASSPHRASE_ENV]
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise PassphraseUnavailable(
            f"no passphrase for key {name!r}: set {PASSPHRASE_ENV} or run in a terminal"
        )
    ask = getpass.getpass if prompt is None else prompt
    passphrase = ask(f"passphrase for key {name!r}: ")
    if confirm and ask(f"repeat passphrase for key {name!r}: ") != passphrase:
        raise PassphraseUnavailable(f"the two passphrases for key {name!r} differ")
    return passphrase


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
