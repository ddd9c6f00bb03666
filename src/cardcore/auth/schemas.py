from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["client_credentials", "jws"] = Field(
        description="`client_credentials`: an OAuth client for `POST /v1/auth/token`. "
        "`jws`: a shared secret to sign each request with `X-JWS-Signature`."
    )
    name: str = Field(min_length=1, max_length=200, examples=["card backend"])


class CredentialOut(BaseModel):
    id: str = Field(examples=["crd_01jd3z8k1m2n3p4q5r6s7t8v9w"])
    type: str
    name: str
    client_id: str | None = Field(description="For client_credentials: the OAuth client_id.")
    auth_id: str | None = Field(description="For jws: the auth_id of the protected header.")
    status: str = Field(description="ACTIVE or REVOKED.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CredentialCreated(CredentialOut):
    client_secret: str | None = Field(
        default=None, description="For client_credentials; shown once, only a hash is kept."
    )
    secret: str | None = Field(
        default=None, description="For jws: the HS512 key; shown once, kept encrypted."
    )


class TokenResponse(BaseModel):
    """RFC 6749 §5.1."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds the access token is valid.")
    refresh_token: str = Field(description="Single use: each refresh returns a new one.")
    refresh_expires_in: int


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str | None = Field(default=None, max_length=200)
    strong_auth: bool = Field(
        default=False,
        description="The user has just passed a strong check in your app (biometrics, 2FA). "
        "Routes that reveal card data accept such a session for 5 minutes.",
    )


class SessionCreated(TokenResponse):
    session_id: str
    user_id: str
