"""Credentials beyond API keys: OAuth clients, JWS signing secrets, server key pairs, refresh
tokens, cardholder sessions, and the request ids a signed request may use only once."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt
from cardcore.models.ids import PrefixedId, new_id


class Credential(CreatedAt, Base):
    """A partner's OAuth client (`client_credentials`) or JWS secret (`jws`). Its id is the
    `client_id` / `auth_id`. A client secret is kept as a SHA-256 only; a JWS secret must be
    usable to verify HMACs, so it is kept encrypted under the master key instead."""

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(
        PrefixedId("crd"), primary_key=True, default=lambda: new_id("crd")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ServerKey(CreatedAt, Base):
    """One of cardcore's own RSA key pairs: `jwt` keys sign access tokens, `jwe` keys decrypt
    what partners encrypt to us. The newest active key of a purpose is used; retired ones keep
    working for a grace period (see kit/server_keys.py)."""

    __tablename__ = "server_keys"
    __table_args__ = (Index("ix_server_keys_purpose_created_at", "purpose", "created_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    algorithm: Mapped[str] = mapped_column(String(20))
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    retired_at: Mapped[datetime | None]


class RefreshToken(CreatedAt, Base):
    """One refresh token. Using it marks it used and issues the next of its family; using a used
    token again means it was stolen, and the whole family is revoked."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family_id", "family_id"),)

    id: Mapped[str] = mapped_column(
        PrefixedId("rft"), primary_key=True, default=lambda: new_id("rft")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    family_id: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    credential_id: Mapped[str | None] = mapped_column(
        PrefixedId("crd"), ForeignKey("credentials.id"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(
        PrefixedId("ses"), ForeignKey("cardholder_sessions.id"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class CardholderSession(CreatedAt, Base):
    """A cardholder's app session, minted by the partner for one user."""

    __tablename__ = "cardholder_sessions"

    id: Mapped[str] = mapped_column(
        PrefixedId("ses"), primary_key=True, default=lambda: new_id("ses")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    user_id: Mapped[str] = mapped_column(PrefixedId("usr"), ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(200))
    # When the partner vouched that the user had just passed a strong check (biometrics, 2FA).
    strong_auth_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class JwsRequestId(CreatedAt, Base):
    """Request ids already used by a JWS credential: a signed request is accepted once."""

    __tablename__ = "jws_request_ids"

    credential_id: Mapped[str] = mapped_column(
        PrefixedId("crd"), ForeignKey("credentials.id"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(Text, primary_key=True)
