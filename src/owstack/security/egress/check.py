"""`check_url`: may owstack fetch this URL? Scheme, host lists, then every resolved address."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import anyio
import idna

from owstack.security.egress.addresses import address_problem, embedded_ipv4, name_problem
from owstack.security.egress.policy import EgressDecision, EgressPolicy
from owstack.security.egress.resolve import ResolveError, Resolver, SystemResolver
from owstack.security.egress.urls import Target, URLRejected, parse, read_ipv4


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """`example.com` matches itself only; `*.example.com` matches its subdomains (not the apex). Case and
    a trailing dot are ignored on both sides (a policy built in code is not normalised by the config)."""
    name = host.lower().rstrip(".")
    for pattern in map(_normalised, patterns):
        if pattern.startswith("*."):
            if name.endswith(pattern[1:]):
                return True
        elif name == pattern:
            return True
    return False


def _normalised(pattern: str) -> str:
    """A host pattern as `parse` spells hosts: lower case, no trailing dot, an IP address in canonical form
    (also when written `127.1` or `2130706433`), an international name IDNA-encoded (`*.` kept)."""
    pattern = pattern.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(pattern.strip("[]")))
    except ValueError:
        pass
    try:
        ip4 = read_ipv4(pattern)
    except URLRejected:
        ip4 = None
    if ip4 is not None:
        return str(ip4)
    if pattern.isascii():
        return pattern
    wild = "*." if pattern.startswith("*.") else ""
    try:
        return wild + idna.encode(pattern[len(wild) :], uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return pattern  # matches no host (every parsed host is ASCII)


def _scheme_reason(scheme: str, policy: EgressPolicy) -> str:
    return f"scheme {scheme!r} is not allowed (allowed: {', '.join(policy.allow_schemes)})"


def _precheck(url: str, policy: EgressPolicy) -> Target | EgressDecision:
    """Everything decided before DNS: the URL's form, scheme, host lists and names."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme.isalpha() and scheme not in policy.allow_schemes:
        return EgressDecision(url, False, _scheme_reason(scheme, policy))
    try:
        target = parse(url)
    except URLRejected as exc:
        return EgressDecision(url, False, f"cannot parse URL: {exc}")

    def blocked(reason: str) -> EgressDecision:
        return EgressDecision(url, False, reason, host=target.host, port=target.port)

    if target.scheme not in policy.allow_schemes:
        return blocked(f"scheme {target.scheme!r} is not allowed (allowed: {', '.join(policy.allow_schemes)})")
    names = [target.host] if target.ip is None else [target.host, str(target.ip)]
    if any(host_matches(n, policy.deny_hosts) for n in [*names, *map(str, target.also)]):
        return blocked(f"host {target.host} is in deny_hosts")
    explicitly_allowed = any(host_matches(n, policy.allow_hosts) for n in names)
    if policy.allow_hosts and not explicitly_allowed:
        return blocked(f"host {target.host} is not in allow_hosts")
    if target.ip is None:
        problem = name_problem(target.host)
        listed = host_matches(target.host, tuple(p for p in policy.allow_hosts if not p.startswith("*.")))
        if problem is not None and (problem[0] == "metadata" or not listed):
            return blocked(problem[1])
    return target


def _denied_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, deny: tuple[str, ...]) -> str | None:
    """Why `ip` is refused by an address in `deny_hosts`: the address itself, or the IPv4 address an IPv6
    form carries (`[::ffff:a.b.c.d]`, NAT64, 6to4), whether the URL spelled it or DNS answered it."""
    if not deny:
        return None
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        bare = ipaddress.IPv6Address(str(ip).split("%", 1)[0])  # without a zone id
        inner = embedded_ipv4(bare)
        forms = [bare] if inner is None else [bare, inner[0]]
    for form in forms:
        if host_matches(str(form), deny):
            return f"{ip} is in deny_hosts" + (f" (as {form})" if form is not forms[0] else "")
    return None


def _decide(url: str, target: Target, addresses: list[str], policy: EgressPolicy) -> EgressDecision:
    if not addresses:
        return EgressDecision(url, False, f"{target.host} has no addresses", (), target.host, target.port)
    checked = tuple(addresses)
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return EgressDecision(
                url, False, f"resolver returned {text!r}, not an address", checked, target.host, target.port
            )
        problem = _denied_address(ip, policy.deny_hosts) or address_problem(ip, policy.allow_networks)
        if problem is not None:
            if target.ip is None:
                problem = f"{target.host} resolves to {text}; {problem}"
            elif target.host != text:
                problem = f"host {target.host} reads as {text}; {problem}"
            return EgressDecision(url, False, problem, checked, target.host, target.port)
    for other in target.also:  # another client's reading of the same literal: judged, never connected to
        problem = address_problem(other, policy.allow_networks)
        if problem is not None:
            reason = f"host {target.host} also reads as {other} (leading zeros as decimal, not octal); {problem}"
            return EgressDecision(url, False, reason, checked, target.host, target.port)
    how = "an allowed network" if policy.allow_networks else "public addresses"
    return EgressDecision(url, True, f"{target.host} resolves only to {how}", checked, target.host, target.port)


def _literal(target: Target) -> list[str] | None:
    return [str(target.ip)] if target.ip is not None else None


async def check_url(url: str, policy: EgressPolicy | None = None, resolver: Resolver | None = None) -> EgressDecision:
    """Decide whether `url` may be fetched under `policy` (default: `EgressPolicy()`).

    Allowed only if the URL reads unambiguously, its scheme is allowed, its host passes `deny_hosts` and
    `allow_hosts` and is not an internal or metadata name, and every address it resolves to (all A and
    AAAA answers from `resolver`, default the system's) is public or inside `allow_networks`.
    An unparseable URL or a failed look-up is a block with that reason, never an exception.
    """
    policy = policy or EgressPolicy()
    pre = _precheck(url, policy)
    if isinstance(pre, EgressDecision):
        return pre
    addresses = _literal(pre)
    if addresses is None:
        try:
            with anyio.fail_after(policy.timeout_s):
                addresses = await (resolver or SystemResolver()).resolve(pre.host)
        except (ResolveError, OSError) as exc:
            return EgressDecision(url, False, str(exc) or f"cannot resolve {pre.host}", (), pre.host, pre.port)
        except TimeoutError:
            return EgressDecision(url, False, f"resolving {pre.host} timed out", (), pre.host, pre.port)
    return _decide(url, pre, addresses, policy)


def check_url_sync(url: str, policy: EgressPolicy | None = None, resolver: Resolver | None = None) -> EgressDecision:
    """`check_url` for synchronous code (the resolver's `resolve_sync` is used, in a worker thread, and given
    at most timeout_s as in `check_url`)."""
    policy = policy or EgressPolicy()
    pre = _precheck(url, policy)
    if isinstance(pre, EgressDecision):
        return pre
    addresses = _literal(pre)
    if addresses is None:
        lookup = _LOOKUPS.submit((resolver or SystemResolver()).resolve_sync, pre.host)
        try:
            addresses = lookup.result(timeout=policy.timeout_s)
        except TimeoutError:  # concurrent.futures' timeout; an OSError, so caught first
            lookup.cancel()
            return EgressDecision(url, False, f"resolving {pre.host} timed out", (), pre.host, pre.port)
        except OSError as exc:
            return EgressDecision(url, False, str(exc) or f"cannot resolve {pre.host}", (), pre.host, pre.port)
    return _decide(url, pre, addresses, policy)


#: look-ups of `check_url_sync`, so that timeout_s bounds them: a blocking getaddrinfo cannot be
#: interrupted, and waits as long as the system resolver's own timeouts and retries (seconds to minutes)
#: for a name server that never answers; the one still waiting finishes in its thread
_LOOKUPS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="owstack-egress-dns")
