"""Where a webhook may be sent. A partner controls the URL, so without these checks a webhook is
a way to make cardcore call its own network (SSRF). The host is resolved once, every address it
resolves to must be public, and the request is then sent to that very address (with the original
host name for the Host header and TLS), so a DNS answer that changes between check and connect
cannot slip a private address in."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from cardcore.kit.errors import validation_error


class RefusedDestination(Exception):
    pass


def forbidden_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_http: bool, allow_private: bool) -> httpx.URL:
    """Syntax and literal-address checks at subscription time (422 on failure)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise validation_error("url", "INVALID_URL", "Not a valid URL.") from exc
    if parsed.scheme not in (("https", "http") if allow_http else ("https",)):
        raise validation_error(
            "url",
            "INSECURE_URL",
            "Webhook URLs must use https (for local development only, "
            "CARDCORE_WEBHOOKS_ALLOW_HTTP=true allows http).",
        )
    if not parsed.host or parsed.userinfo:
        raise validation_error("url", "INVALID_URL", "A host is required; credentials are not.")
    if len(url) > 2000:
        raise validation_error("url", "INVALID_URL", "The URL is too long.")
    try:
        literal = ipaddress.ip_address(parsed.host)
    except ValueError:
        literal = None
    if (literal is not None and forbidden_address(literal) and not allow_private) or (
        parsed.host.lower() in ("localhost", "localhost.localdomain") and not allow_private
    ):
        raise validation_error(
            "url",
            "PRIVATE_ADDRESS",
            "Webhooks cannot go to loopback or private addresses (for local development only, "
            "CARDCORE_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true allows them).",
        )
    return parsed


@dataclass(frozen=True)
class PinnedTarget:
    url: httpx.URL
    host_header: str
    sni_hostname: str | None


async def pin(url: str, *, allow_private: bool) -> PinnedTarget:
    """Resolve the URL's host and pick an address to send to, refusing forbidden ones."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RefusedDestination(f"cannot resolve {host}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise RefusedDestination(f"cannot resolve {host}")
    if not allow_private and any(forbidden_address(ip) for ip in addresses):
        raise RefusedDestination(f"{host} resolves to a private or reserved address")
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    return PinnedTarget(
        url=parsed.copy_with(host=str(addresses[0])),
        host_header=host_header,
        sni_hostname=host if parsed.scheme == "https" else None,
    )
