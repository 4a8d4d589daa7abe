"""The signing key: an Ed25519 pair, the private half for the auditor, the public half for the ministry.

The private key is PEM PKCS8 without a passphrase (the nightly job and an analyst's export read it
unattended), so its protection is the file mode: created 0600, never widened, never overwritten unless
asked. The public key is PEM SubjectPublicKeyInfo, the form `openssl pkey -pubin` reads.

A key's fingerprint is `sha256:` and the hex sha256 of its public key's DER encoding, which anyone can
recompute without this tool: `openssl pkey -pubin -in KEY.pub -outform DER | sha256sum`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.errors import UsageError

FINGERPRINT_PREFIX = "sha256:"


def public_key_path(private_path: Path) -> Path:
    """Where keygen puts the public half: beside the private key, `.pub` appended."""
    return private_path.with_name(private_path.name + ".pub")


def fingerprint(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return FINGERPRINT_PREFIX + hashlib.sha256(der).hexdigest()


def public_pem(key: Ed25519PublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def generate_key(private_path: Path, *, force: bool = False) -> Ed25519PrivateKey:
    """Write a new private key to `private_path` (mode 0600) and its public key to `private_path.pub`.

    An existing file is never overwritten unless `force`: a signing key replaced by mistake makes every
    public key already given out useless. Both paths are checked before either is written."""
    public_path = public_key_path(private_path)
    if not force:
        taken = [str(p) for p in (private_path, public_path) if p.exists() or p.is_symlink()]
        if taken:
            raise UsageError(f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''}: "
                             "not overwriting a key (--force replaces it, and the public key given out with it)")
    if private_path.is_dir():
        raise UsageError(f"{private_path} is a directory: give the key file's name")
    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(private_path, private_bytes, 0o600, replace=force)
        _write_new(public_path, public_pem(key.public_key()).encode("ascii"), 0o644, replace=force)
    except OSError as exc:
        raise UsageError(f"cannot write the key {private_path}: {exc.strerror or exc}") from exc
    return key


def _write_new(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Create `path` with `mode` from the start (never a moment with wider permissions). With `replace`,
    through a new file in the same directory renamed over the old one, so the old file's mode is not kept."""
    target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no {what} at {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: the export runs unattended, so the key has no passphrase
        raise UsageError(f"{path} is a passphrase-protected key: the signing key must have none "
                         "(keep it mode 0600 instead; `auditor evidence keygen` writes one)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"{path} is not a PEM private key (`auditor evidence keygen -o FILE` writes one)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an Ed25519 key: evidence is signed with Ed25519 "
                         "(`auditor evidence keygen -o FILE` writes one)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read(path, "public key")
    if b"PRIVATE KEY-----" in data:
        raise UsageError(f"{path} is a private key: verify with the public key (the .pub file, or what "
                         "`auditor evidence pubkey` prints); the private key never leaves the auditor")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key: evidence is signed with Ed25519")
    return key
