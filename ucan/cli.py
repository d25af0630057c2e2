"""The `ucan` command: keys, grants, invocations, inspection, verification, revocation.

A thin shell over the library. Token files are raw DAG-CBOR envelopes (`.ucan`);
`--base64` writes the container text form instead, and every reader accepts either
(a raw envelope starts with 0x82, anything else is read as a container). `-` is
stdin/stdout. Every subcommand takes `--json`. Failures go to stderr as
`<FailureName>: <detail>` (or `{"error": ..., "detail": ...}` with `--json`) and exit 1;
usage errors exit 2.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ucan.attenuation import (
    OutlivesProof,
    check_grant,
    first_to_expire,
    order_chain,
    validate_delegation_chain,
)
from ucan.codec import CID
from ucan.container import BASE64, encode_container, read_tokens
from ucan.delegation import Delegation, delegate
from ucan.did import verify_signature
from ucan.envelope import DELEGATION_TAG, unseal
from ucan.errors import InvalidClaim, InvalidSubject, MalformedToken, UcanError
from ucan.invocation import Invocation, invoke
from ucan.keys import SigningKey
from ucan.keystore import (
    Keystore,
    KeystoreError,
    keystore_directory,
    open_key,
    resolve_passphrase,
)
from ucan.policy import parse_policy
from ucan.revocation import RevocationSet, revoke
from ucan.store import DEFAULT_STORE, STORE_ENV, TokenNotFound, TokenStore
from ucan.validate import validate_invocation

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(-?\d+)([smhdw])")
# Times in tokens are Unix seconds up to 2^53-1 (spec/capabilities.md, section 2).
_LATEST_TIME = 2**53 - 1
DEFAULT_GRANT_EXPIRY = "24h"
_F = TypeVar("_F", bound=Callable[..., Any])


class CommandFailed(Exception):
    """A failure of the command itself (bad input file, unusable option value)."""

    name = "CommandFailed"
    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreadable(CommandFailed):
    """An input file that cannot be read at all (missing, a directory, no permission):
    a usage mistake, exit status 2, unlike a token that is read and found invalid."""

    name = "Unreadable"
    exit_status = 2


def exit_status(exc: BaseException) -> int:
    return int(getattr(exc, "exit_status", 1))


# -- parsing ----------------------------------------------------------------------------


def parse_duration(text: str) -> int | None:
    """Seconds in `30s`, `5m`, `24h`, `7d`, `2w` (None for `never`); ValueError otherwise,
    including for zero, negative and larger than any token time can carry."""
    if text == "never":
        return None
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"duration {text!r} must look like 30s, 5m, 24h, 7d, 2w or never")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return _bounded(seconds, "duration", text)


def parse_time(text: str, now: int) -> int:
    """A Unix time: digits as given, or a duration counted from `now`."""
    if text.isdigit():
        return _bounded(int(text), "time", text)
    ends = parse_expiry(text, now)
    if ends is None:
        raise ValueError(f"time {text!r} must be a Unix time or a duration from now")
    return ends


def parse_expiry(text: str, now: int) -> int | None:
    """`never` (None), or the time a duration from `now` ends."""
    seconds = parse_duration(text)
    return None if seconds is None else _bounded(now + seconds, "duration", text)


def _bounded(value: int, kind: str, text: str) -> int:
    if value > _LATEST_TIME:
        raise ValueError(f"{kind} too large: {text!r} is past the latest time a token can "
                         f"carry ({_LATEST_TIME})")
    return value


def _when(time_: int) -> str:
    return datetime.fromtimestamp(time_, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _as_duration(seconds: int) -> str:
    """The largest whole unit not exceeding `seconds` (rounded down: never later)."""
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def from_dag_json(value: Any) -> Any:
    """JSON to IPLD: `{"/": "<cid>"}` is a CID, `{"/": {"bytes": "<b64>"}}` is bytes."""
    if isinstance(value, dict):
        if list(value) == ["/"]:
            link = value["/"]
            if isinstance(link, str):
                return CID.parse(link)
            if isinstance(link, dict) and list(link) == ["bytes"]:
                text = link["bytes"]
                return base64.b64decode(text + "=" * (-len(text) % 4))
        return {key: from_dag_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_dag_json(item) for item in value]
    return value


def to_dag_json(value: Any) -> Any:
    """IPLD to JSON-able values (the inverse of `from_dag_json`)."""
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode("ascii").rstrip("=")}}
    if isinstance(value, dict):
        return {key: to_dag_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dag_json(item) for item in value]
    return value


def _json_option(text: str | None, option: str, default: Any) -> Any:
    if text is None:
        return default
    try:
        return from_dag_json(json.loads(text))
    except (ValueError, MalformedToken) as exc:
        raise CommandFailed(f"{option}: not valid JSON: {exc}") from None


# -- token files --------------------------------------------------------------------------


def read_token_file(path: str) -> list[Delegation | Invocation]:
    """The tokens in a file (`-`: stdin), decoded (see `ucan.read_tokens` for what a
    token file may hold). Every MalformedToken names the file."""
    try:
        with click.open_file(path, "rb") as source:
            data = source.read()
    except OSError as exc:
        raise Unreadable(f"{path}: {exc.strerror or exc}") from None
    try:
        return [_decode(envelope) for envelope in read_tokens(data)]
    except MalformedToken as exc:
        raise MalformedToken(f"{path}: {exc.message}") from None


def _decode(envelope: bytes) -> Delegation | Invocation:
    unsealed = unseal(envelope)
    if unsealed.kind == DELEGATION_TAG:
        return Delegation.from_unsealed(unsealed)
    return Invocation.from_unsealed(unsealed)


def read_delegations(paths: Iterable[str]) -> list[Delegation]:
    found: list[Delegation] = []
    for path in paths:
        for token in read_token_file(path):
            if not isinstance(token, Delegation):
                raise MalformedToken(f"{path}: holds invocation {token.cid}, not a delegation")
            found.append(token)
    return found


def check_output(output: str, as_json: bool) -> None:
    """Refuse, before any key is opened, an output that cannot be written as asked."""
    if output == "-" and as_json:
        raise click.UsageError("--json and -o - both write to stdout: give -o FILE with --json, "
                               "or drop --json")
    if Path(output).is_dir():
        raise CommandFailed(f"-o {output}: is a directory; give a file path for the token")


def write_tokens(path: str, tokens: Sequence[bytes], as_base64: bool) -> None:
    """Write the first token raw, or all of them as a base64 container (text + newline)."""
    data = encode_container(tokens, BASE64) + b"\n" if as_base64 else tokens[0]
    try:
        with click.open_file(path, "wb", atomic=path != "-") as out:
            out.write(data)
    except OSError as exc:
        raise CommandFailed(f"{path}: {exc.strerror or exc}") from None


# -- output and failures --------------------------------------------------------------------


def _report(exc: Exception, as_json: bool) -> None:
    name = getattr(exc, "name", type(exc).__name__)
    detail = getattr(exc, "message", None) or str(exc)
    if as_json:
        click.echo(json.dumps({"error": name, "detail": detail}), err=True)
    else:
        click.echo(f"{name}: {detail}", err=True)


def _fail(exc: Exception, as_json: bool) -> NoReturn:
    _report(exc, as_json)
    sys.exit(exit_status(exc))


def _reporting(command: _F) -> _F:
    """Turn this package's named failures into stderr output and exit status 1 (2 for
    an input that cannot be read)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UcanError, KeystoreError, CommandFailed, TokenNotFound, OSError) as exc:
            _fail(exc, bool(kwargs.get("as_json")))

    return run  # type: ignore[return-value]


def _emit(as_json: bool, value: Any, text: str) -> None:
    click.echo(json.dumps(to_dag_json(value), indent=2) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
base64_option = click.option("--base64", "as_base64", is_flag=True,
                             help="Write the container text form instead of a raw envelope.")
output_option = click.option("-o", "--output", required=True, help="Output file ('-': stdout).")


class Context:
    def __init__(self, keystore: str | None, store: str) -> None:
        self.keystore = Keystore(keystore_directory(keystore))
        self.store = TokenStore(store)

    def signer(self, name: str) -> SigningKey:
        return open_key(self.keystore.directory, name)

    def revocations(self) -> RevocationSet:
        known = RevocationSet()
        for revocation in self.store.revocations():
            known.add(revocation)
        return known


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pydms", prog_name="ucan")
@click.option("--keystore", metavar="DIR", default=None,
              help="Key directory (default: $UCAN_KEYSTORE or ~/.config/ucan/keys).")
@click.option("--store", metavar="DIR", envvar=STORE_ENV, default=DEFAULT_STORE,
              show_default=True, help="Token store: issued grants and known revocations "
              f"(or ${STORE_ENV}).")
@click.pass_context
def cli(ctx: click.Context, keystore: str | None, store: str) -> None:
    """Issue, inspect and verify UCAN 1.0 capabilities."""
    ctx.obj = Context(keystore, store)


# -- keys -------------------------------------------------------------------------------------


@cli.group()
def key() -> None:
    """Create and list signing keys."""


@key.command("new")
@click.argument("name")
@json_option
@pass_context
@_reporting
def key_new(ctx: Context, name: str, as_json: bool) -> None:
    """Create key NAME, encrypted with a passphrase ($UCAN_PASSPHRASE or a prompt)."""
    ctx.keystore.path_of(name)  # refuse a bad name before asking for a passphrase
    entry = ctx.keystore.create(name, resolve_passphrase(name, confirm=True))
    _emit(as_json, {"name": entry.name, "did": entry.did, "path": str(entry.path)}, entry.did)


@key.command("list")
@json_option
@pass_context
@_reporting
def key_list(ctx: Context, as_json: bool) -> None:
    """List keys and their DIDs (no passphrase needed).

    An unreadable key file does not hide the others: the readable keys are listed, each
    unreadable file is reported on stderr, and the exit status is 1 so scripts notice.
    An empty keystore prints nothing on stdout (a note on stderr) and exits 0."""
    listing = ctx.keystore.survey()
    if listing.keys or as_json:
        _emit(as_json, [{"name": e.name, "did": e.did} for e in listing.keys],
              "\n".join(f"{e.name}\t{e.did}" for e in listing.keys))
    if not listing.keys and not listing.unreadable:
        click.echo(f"no keys in {ctx.keystore.directory}", err=True)
    for failure in listing.unreadable:
        _report(failure, as_json)
    if listing.unreadable:
        sys.exit(1)


@cli.command("did")
@click.argument("name")
@json_option
@pass_context
@_reporting
def did_command(ctx: Context, name: str, as_json: bool) -> None:
    """Print the did:key of key NAME."""
    did = ctx.keystore.did(name)
    _emit(as_json, {"name": name, "did": did}, did)


# -- grant, invoke, revoke ------------------------------------------------------------------


@cli.command()
@click.option("--as", "as_name", required=True, metavar="NAME", help="Issuing key.")
@click.option("--aud", required=True, metavar="DID", help="Who receives the capability.")
@click.option("--cmd", required=True, metavar="CMD", help="Command granted, e.g. /dms/deployment.")
@click.option("--sub", metavar="DID",
              help="Subject (default: the issuer, or the proofs' subject with --proof).")
@click.option("--powerline", is_flag=True, help="sub: null (any subject the chain proves).")
@click.option("--policy", metavar="JSON", help='Policy, e.g. \'[["<=", ".cpu", 4]]\'. '
              "Policies accumulate down a chain, so any policy is accepted here.")
@click.option("--exp", metavar="DURATION|never",
              help=f"Lifetime (default {DEFAULT_GRANT_EXPIRY}, clamped to the proofs' "
              "earliest expiry with --proof).")
@click.option("--nbf", metavar="TIME", help="Not before: Unix time or a duration from now.")
@click.option("--meta", metavar="JSON", help="Metadata map.")
@click.option("--proof", "proofs", multiple=True, metavar="FILE",
              help="Delegations this grant rests on (any order).")
@output_option
@base64_option
@json_option
@pass_context
@_reporting
def grant(ctx: Context, as_name: str, aud: str, cmd: str, sub: str | None, powerline: bool,
          policy: str | None, exp: str | None, nbf: str | None, meta: str | None,
          proofs: tuple[str, ...], output: str, as_base64: bool, as_json: bool) -> None:
    """Issue a delegation of CMD to AUD.

    With --proof, the grant must rest on its proofs, checked in this order (the first
    failure is named): the proofs form a sound chain; the last one is delegated to the
    issuer (InvalidAudience); same subject (InvalidSubject); CMD proven by every proof
    (InvalidClaim); no proof expiring before the grant (InvalidClaim). An explicit --exp
    later than a proof is refused; the default one is clamped to it. Policies are not
    compared: every policy in a chain applies to an invocation, so a wider one below
    cannot loosen the ones above it."""
    check_output(output, as_json)
    if powerline and sub is not None:
        raise CommandFailed("--sub and --powerline exclude each other")
    now = int(time.time())
    try:
        expiration = parse_expiry(exp or DEFAULT_GRANT_EXPIRY, now)
        not_before = None if nbf is None else parse_time(nbf, now)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    policy_value = _json_option(policy, "--policy", [])
    parse_policy(policy_value)
    meta_value = _json_option(meta, "--meta", None)
    if meta_value is not None and not isinstance(meta_value, dict):
        raise CommandFailed("--meta must be a JSON object")
    issuer_did = ctx.keystore.did(as_name)
    chain = order_chain(read_delegations(proofs), issuer_did) if proofs else []
    subject: str | None
    if powerline:
        subject = None
    elif sub is not None:
        subject = sub
    else:
        subject = chain[0].sub if chain else issuer_did
    note = None
    first = first_to_expire(chain)
    if exp is None and first is not None and first.exp is not None and (
        expiration is None or expiration > first.exp
    ):
        expiration = first.exp
        note = (f"note: expiry clamped to the proof's, {_when(first.exp)} ({first.cid} "
                f"expires then), sooner than the default {DEFAULT_GRANT_EXPIRY}")
    if chain:
        try:
            check_grant(chain, issuer=issuer_did, subject=subject, command=cmd,
                        expiration=expiration, now=now, revoked=ctx.revocations())
        except OutlivesProof as exc:
            raise InvalidClaim(
                f"{exc.message}: give --exp no later than {_as_duration(exc.latest - now)} "
                f"({_when(exc.latest)})"
            ) from None
    if not_before is not None and expiration is not None and not_before > expiration:
        raise CommandFailed(f"--nbf {nbf} ({_when(not_before)}) is later than the expiry "
                            f"({_when(expiration)}): the grant could never be used")
    issued = delegate(ctx.signer(as_name), aud, cmd, subject=subject, policy=policy_value,
                      expiration=expiration, not_before=not_before, meta=meta_value)
    write_tokens(output, [issued.envelope], as_base64)
    ctx.store.put_delegation(issued)
    if note is not None:
        click.echo(note, err=True)
    if output != "-" or as_json:
        _emit(as_json, _describe_delegation(issued), str(issued.cid))


@cli.command("invoke")
@click.option("--as", "as_name", required=True, metavar="NAME", help="Invoking key.")
@click.option("--cmd", required=True, metavar="CMD")
@click.option("--sub", required=True, metavar="DID", help="Subject (the resource owner).")
@click.option("--aud", metavar="DID", help="Executor, when not the subject.")
@click.option("--args", "args_json", metavar="JSON", help="Arguments (a JSON object).")
@click.option("--exp", default="5m", show_default=True, metavar="DURATION|never")
@click.option("--proof", "proofs", multiple=True, metavar="FILE",
              help="Delegations proving the invocation (any order).")
@output_option
@base64_option
@json_option
@pass_context
@_reporting
def invoke_command(ctx: Context, as_name: str, cmd: str, sub: str, aud: str | None,
                   args_json: str | None, exp: str, proofs: tuple[str, ...], output: str,
                   as_base64: bool, as_json: bool) -> None:
    """Sign an invocation of CMD on SUB, checked against its proofs before it is written.

    With --base64 the output is a container carrying the invocation and its proofs."""
    check_output(output, as_json)
    now = int(time.time())
    try:
        expiration = parse_expiry(exp, now)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    args = _json_option(args_json, "--args", {})
    if not isinstance(args, dict):
        raise CommandFailed("--args must be a JSON object")
    issuer_did = ctx.keystore.did(as_name)
    chain = order_chain(read_delegations(proofs), issuer_did) if proofs else []
    invocation = invoke(ctx.signer(as_name), sub, cmd, args, [d.cid for d in chain],
                        audience=aud, expiration=expiration, issued_at=now)
    validate_invocation(invocation, chain, now=now, revoked=ctx.revocations())
    write_tokens(output, [invocation.envelope, *(d.envelope for d in chain)], as_base64)
    if output != "-" or as_json:
        _emit(as_json, _describe_invocation(invocation), str(invocation.cid))


@cli.command("revoke")
@click.argument("target", metavar="CID|FILE")
@click.option("--as", "as_name", required=True, metavar="NAME", help="Revoking key (an issuer).")
@output_option
@base64_option
@json_option
@pass_context
@_reporting
def revoke_command(ctx: Context, target: str, as_name: str, output: str, as_base64: bool,
                   as_json: bool) -> None:
    """Revoke delegation CID (or the delegation in a token FILE) as NAME.

    A revocation counts only in chains where NAME issued the delegation or one above it.
    Given a FILE, an invocation is refused and a revoker who is not the delegation's
    issuer is warned about on stderr; given a bare CID nothing can be checked."""
    check_output(output, as_json)
    revoker = ctx.keystore.did(as_name)
    if Path(target).is_file():
        tokens = read_token_file(target)
        if len(tokens) != 1:
            raise CommandFailed(f"{target}: holds {len(tokens)} tokens; give a file with one "
                                "delegation, or its CID")
        token = tokens[0]
        if not isinstance(token, Delegation):
            raise CommandFailed(f"{target}: holds invocation {token.cid}; only delegations "
                                "can be revoked")
        if token.iss != revoker:
            click.echo(f"warning: {as_name} ({revoker}) did not issue {token.cid} (issued by "
                       f"{token.iss}); the revocation will count only in chains where "
                       f"{as_name} issued a delegation above it", err=True)
        cid = token.cid
    else:
        cid = CID.parse(target)
    revocation = revoke(ctx.signer(as_name), cid)
    write_tokens(output, [revocation.envelope], as_base64)
    ctx.store.put_revocation(revocation)
    if output != "-" or as_json:
        _emit(as_json, {"revocation": revocation.cid, "revokes": cid, "by": revocation.iss},
              f"{revocation.cid} revokes {cid}")


# -- inspect and verify -----------------------------------------------------------------------


def _describe_delegation(d: Delegation) -> dict[str, Any]:
    described: dict[str, Any] = {
        "kind": "delegation", "cid": d.cid, "iss": d.iss, "aud": d.aud, "sub": d.sub,
        "cmd": d.cmd, "pol": list(d.policy.source), "nonce": d.nonce, "exp": d.exp,
    }
    if d.nbf is not None:
        described["nbf"] = d.nbf
    if d.meta is not None:
        described["meta"] = d.meta
    return described


def _describe_invocation(i: Invocation) -> dict[str, Any]:
    described: dict[str, Any] = {
        "kind": "invocation", "cid": i.cid, "iss": i.iss, "sub": i.sub, "aud": i.aud,
        "cmd": i.cmd, "args": i.args, "prf": list(i.prf), "nonce": i.nonce, "exp": i.exp,
    }
    for field, value in (("iat", i.iat), ("meta", i.meta), ("cause", i.cause)):
        if value is not None:
            described[field] = value
    return described


def _text(described: dict[str, Any]) -> str:
    width = max(len(k) for k in described)
    lines = []
    for field, value in described.items():
        shown = str(value) if isinstance(value, (str, CID)) else json.dumps(to_dag_json(value))
        lines.append(f"{field:<{width}}  {shown}")
    return "\n".join(lines)


@cli.command("inspect")
@click.argument("path", metavar="FILE")
@json_option
@_reporting
def inspect_command(path: str, as_json: bool) -> None:
    """Show a token's fields, CID and whether its signature is valid (every token of a
    container)."""
    described = []
    for token in read_token_file(path):
        item = (_describe_delegation(token) if isinstance(token, Delegation)
                else _describe_invocation(token))
        item["signature_valid"] = verify_signature(token.iss, token.signed_bytes,
                                                   token.signature)
        described.append(item)
    if as_json:
        _emit(True, described[0] if len(described) == 1 else described, "")
    else:
        click.echo("\n\n".join(_text(item) for item in described))


@cli.command("verify")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...")
@click.option("--proof", "proofs", multiple=True, metavar="FILE",
              help="Delegations for an invocation (any order; matched by CID).")
@click.option("--no-store", "no_store", is_flag=True,
              help="Do not fill proofs missing from the files out of the token store "
              "(its revocations still apply).")
@click.option("--at", "at", type=int, metavar="UNIXTIME", help="Validate as of this time.")
@click.option("--anchor", "anchors", multiple=True, metavar="DID",
              help="Accept only chains whose subject is one of these DIDs.")
@json_option
@pass_context
def verify_command(ctx: Context, paths: tuple[str, ...], proofs: tuple[str, ...],
                   no_store: bool, at: int | None, anchors: tuple[str, ...],
                   as_json: bool) -> None:
    """Validate one invocation with its proofs, or delegations given in chain order
    (root first). Exit 0 when valid; otherwise print the failure name and exit 1.

    An invocation's proofs not given as FILEs or --proof are looked up by CID in the
    token store (--store), where `ucan grant` keeps what it issues; the output lists
    those (JSON: "from_store"). --no-store turns the lookup off."""
    now = int(time.time()) if at is None else at
    from_store: list[CID] = []
    try:
        result = _verify(ctx, paths, proofs, now, anchors,
                         None if no_store else from_store)
    except (UcanError, CommandFailed, TokenNotFound, OSError) as exc:
        name = getattr(exc, "name", type(exc).__name__)
        detail = getattr(exc, "message", None) or str(exc)
        if as_json:
            click.echo(json.dumps({"valid": False, "error": name, "detail": detail,
                                   "from_store": [str(c) for c in from_store]}))
        else:
            click.echo(f"{name}: {detail}", err=True)
            if from_store:
                click.echo(_from_store_line(ctx, from_store), err=True)
        sys.exit(exit_status(exc))
    text = (f"valid: {result['kind']} {result['cid']} ({result['cmd']} on {result['sub']}, "
            f"chain of {len(result['chain'])})")
    if from_store:
        text += "\n" + _from_store_line(ctx, from_store)
    _emit(as_json, {"valid": True, **result, "from_store": from_store}, text)


def _from_store_line(ctx: Context, cids: Sequence[CID]) -> str:
    return f"proofs from the store {ctx.store.directory}: {', '.join(str(c) for c in cids)}"


def _verify(ctx: Context, paths: Sequence[str], proof_paths: Sequence[str], now: int,
            anchors: Sequence[str], from_store: list[CID] | None) -> dict[str, Any]:
    """Validate; proofs taken from the store are appended to `from_store` (None: the
    store is not searched)."""
    invocations: list[Invocation] = []
    delegations: list[Delegation] = []
    for path in paths:
        for token in read_token_file(path):
            if isinstance(token, Delegation):
                delegations.append(token)
            else:
                invocations.append(token)
    revoked = ctx.revocations()
    if invocations:
        if len(invocations) > 1:
            raise CommandFailed("give one invocation at a time")
        invocation = invocations[0]
        pool = {d.cid: d for d in [*delegations, *read_delegations(proof_paths)]}
        for link in invocation.prf:
            if from_store is not None and link not in pool and link in ctx.store:
                pool[link] = ctx.store.delegation(link)
                from_store.append(link)
        chain = validate_invocation(invocation, pool, now=now, revoked=revoked)
        if anchors and chain.subject not in anchors:
            raise InvalidSubject(
                f"invocation {invocation.cid}: subject {chain.subject} is not an anchor"
            )
        return {"kind": "invocation", "cid": invocation.cid, "cmd": invocation.cmd,
                "sub": invocation.sub, "iss": invocation.iss,
                "chain": [d.cid for d in chain.delegations]}
    if proof_paths:
        raise CommandFailed("--proof applies to an invocation; give delegations as FILEs, root first")
    validate_delegation_chain(delegations, now=now, revoked=revoked)
    subject = delegations[0].sub
    if anchors and subject not in anchors:
        raise InvalidSubject(f"the chain's subject {subject} is not an anchor")
    last = delegations[-1]
    return {"kind": "delegation chain", "cid": last.cid, "cmd": last.cmd, "sub": subject,
            "aud": last.aud, "chain": [d.cid for d in delegations]}


def main() -> None:
    cli(prog_name="ucan")
