"""What create_app (app.py) builds once per process and keeps on `app.state`, each behind one
typed accessor. A route takes what it needs as a dependency (`keyring: KeyringDep`); code that
already holds the request (dependencies, the route class) calls the accessor. The cards'
services have theirs beside them (cards/dependencies.py).

Starlette's `app.state` holds anything; each accessor states what create_app put there."""

from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.config import Settings
from cardcore.kit.crypto import Keyring
from cardcore.kit.server_keys import ServerKeys
from cardcore.kit.storage import DocumentStorage
from cardcore.kit.tokens import TokenKeys


def settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For work in a transaction of its own, beside the request's (kit/session.py)."""
    return cast(async_sessionmaker[AsyncSession], request.app.state.sessionmaker)


def keyring(request: Request) -> Keyring:
    return cast(Keyring, request.app.state.keyring)


def token_keys(request: Request) -> TokenKeys:
    return cast(TokenKeys, request.app.state.token_keys)


def encryption_keys(request: Request) -> ServerKeys:
    """Our JWE keys (kit/encryption.py)."""
    return cast(ServerKeys, request.app.state.encryption_keys)


def document_storage(request: Request) -> DocumentStorage:
    return cast(DocumentStorage, request.app.state.document_storage)


SettingsDep = Annotated[Settings, Depends(settings)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(sessionmaker)]
KeyringDep = Annotated[Keyring, Depends(keyring)]
TokenKeysDep = Annotated[TokenKeys, Depends(token_keys)]
EncryptionKeysDep = Annotated[ServerKeys, Depends(encryption_keys)]
DocumentStorageDep = Annotated[DocumentStorage, Depends(document_storage)]
