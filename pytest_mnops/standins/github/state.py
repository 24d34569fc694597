"""The GitHub stand-in's model: repositories, each with an Actions scope and one scope per environment, and
the secrets written to each scope.

Every scope holds a real Curve25519 key pair. This is the stand-in's only module importing PyNaCl: a scope
makes its key pair and opens the sealed boxes written for it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

DEFAULT_ENVIRONMENTS = ("staging", "production")


def now() -> datetime:
    # GitHub's timestamps have whole-second resolution; so do ours, or clients would be tested on a finer
    # contract than GitHub serves.
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Secret:
    created_at: datetime
    updated_at: datetime
    plaintext: str = field(repr=False)


@dataclass
class Scope:
    """A repository's Actions secrets or one environment's secrets: its own key pair and its own names."""

    private_key: PrivateKey = field(repr=False)
    secrets: dict[str, Secret] = field(default_factory=dict)

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self.private_key.public_key)).decode()

    @property
    def key_id(self) -> str:
        # GitHub's key ids are opaque digit strings; derive one from the key so it changes with it.
        digest = hashlib.sha256(bytes(self.private_key.public_key)).digest()
        return str(int.from_bytes(digest[:8], "big"))

    def open(self, encrypted_value: str) -> str:
        """The plaintext of ``encrypted_value``, the base64 of a sealed box for this scope's public key.

        ValueError when it is not one: not base64 (binascii.Error), not sealed for this key (PyNaCl's
        CryptoError, raised as ValueError), or not UTF-8 (UnicodeDecodeError).
        """
        try:
            sealed = base64.b64decode(encrypted_value, validate=True)
            return SealedBox(self.private_key).decrypt(sealed).decode()
        except CryptoError as exc:
            raise ValueError("not a sealed box for this key") from exc


@dataclass
class Repo:
    id: int
    full_name: str
    created_at: datetime
    actions: Scope
    environments: dict[str, Scope]  # keyed by casefolded name, as GitHub matches environments
    environment_names: dict[str, str]  # casefolded -> name as created
    environment_ids: dict[str, int]


def new_repo(full_name: str, environments: list[str], ids: Iterator[int]) -> Repo:
    """Repository ``full_name`` with a fresh key pair for its Actions scope and each environment's, no secrets."""
    return Repo(
        id=next(ids),
        full_name=full_name,
        created_at=now(),
        actions=Scope(PrivateKey.generate()),
        environments={e.casefold(): Scope(PrivateKey.generate()) for e in environments},
        environment_names={e.casefold(): e for e in environments},
        environment_ids={e.casefold(): next(ids) for e in environments},
    )
