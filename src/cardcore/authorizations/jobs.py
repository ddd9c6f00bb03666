"""The authorizations' scheduled work: releasing holds the network never cleared."""

from datetime import timedelta

from cardcore.authorizations.expiry import expire_holds
from cardcore.kit.jobs import JobKind

EXPIRE_HOLDS = JobKind("authorizations.expire_holds", expire_holds, every=timedelta(hours=1))
JOBS = (EXPIRE_HOLDS,)
