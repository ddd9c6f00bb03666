"""The request's one session, and so its one transaction."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit import app_state, audit


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction. Registered with `scope="function"` (see kit/routing.py) so
    the commit happens after the handler built its response but before a byte is sent: a caller
    never sees a success that was not committed.

    Services flush; only this function commits. On failure everything is rolled back and the
    audit trail records the failed attempt in a fresh transaction of the same session.
    """
    async with app_state.sessionmaker(request)() as session:
        request.state.session = session
        try:
            yield session
        except Exception as exc:
            if getattr(exc, "persist_changes", False):
                await session.commit()
            else:
                await session.rollback()
            await audit.record_failure(session, request, exc)
            raise
        else:
            await session.commit()


# Every route and dependency takes the session through this alias, so there is one session per
# request and it is always the function-scoped one.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
