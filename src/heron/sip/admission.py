"""Who a request is from (digest, RFC 3261 §22) and whom it may reach through us.

The policy of Kamailio's default configuration with WITH_AUTH: a request from a
local user is challenged, and its From must name the user who answered; a
request for a local user from elsewhere comes from a trusted peer (a PBX, a
trunk) or, with open federation, from anyone; nobody relays from elsewhere to
elsewhere. Two openings are deliberate: anyone may INVITE a click-to-call
public name, a few times a minute per source, and a web phone answers the
challenge with a short-lived ``expiry:user`` credential.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from heron.cluster import SharedGuesses
from heron.config import Config
from heron.credentials import WebPhoneCredentials
from heron.errors import ConfigError
from heron.guesses import GuessThrottle, account_key
from heron.ratelimit import FloodGuard
from heron.sip.digest import (
    ISSUER_BYTES,
    Algorithm,
    DigestAuthenticator,
    DigestOutcome,
    StoredHa1,
)
from heron.sip.errors import SipError
from heron.sip.locality import Locality
from heron.sip.message import Method, Request
from heron.sip.uri import SipUri, parse_uri

__all__ = ["Admission", "Ha1Lookup", "Refusal", "public_targets"]

log = logging.getLogger(__name__)

Ha1Lookup = Callable[[str], Awaitable[StoredHa1 | None]]
"""A SIP user's stored HA1, or None for no such account."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """The final answer to send instead of routing: a refusal, or a 401/407 challenge."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def public_targets(names: Mapping[str, str]) -> dict[str, SipUri]:
    """``web.click_to_call`` parsed once, so a bad target stops the start, not a call."""
    targets: dict[str, SipUri] = {}
    for name, target in names.items():
        try:
            uri = parse_uri(target)
        except SipError as exc:
            raise ConfigError(f"web.click_to_call.{name}: {target!r}: {exc}") from None
        if not isinstance(uri, SipUri):
            raise ConfigError(f"web.click_to_call.{name}: {target!r} is not a sip: URI")
        targets[name] = uri
    return targets


class Admission:
    """Authenticates requests and decides which may be routed; counts challenges."""

    def __init__(
        self,
        config: Config,
        locality: Locality,
        key: bytes,
        public: Mapping[str, SipUri],
        *,
        guesses: GuessThrottle | None = None,
        shared: SharedGuesses | None = None,
        ha1_for: Ha1Lookup,
        random: Callable[[int], bytes],
        web_phone: WebPhoneCredentials,
    ) -> None:
        """``key`` signs digest nonces and web-phone credentials, ``public`` is
        :func:`public_targets` of ``web.click_to_call``, ``random`` salts the nonces and
        tags them as this process's (nonce counts stay in it: a nonce another SIP process
        or node issued is answered stale, unchecked, never with a shared count);
        ``guesses`` is the guess throttle every protocol shares (``services.guards``),
        ``shared`` its counterpart in Redis, which every SIP process and node shares."""
        sip = config.sip
        self._realm = config.sip_domain
        self._digest = DigestAuthenticator(
            self._realm,
            key,
            algorithms=tuple(Algorithm(name) for name in sip.digest_algorithms),
            issuer=random(ISSUER_BYTES),
        )
        self._guesses = GuessThrottle() if guesses is None else guesses
        self._shared = shared
        self._domain = config.domain
        self.throttled = 0
        self._web_phone = web_phone
        self._locality = locality
        self._ha1_for = ha1_for
        self._random = random
        self._trusted_peers = tuple(sip.trusted_peers)
        self._open_federation = sip.open_federation
        # Click-to-call: a second pike for unauthenticated INVITEs to public names,
        # a burst of per_minute, then per_minute a minute, per source address.
        per_minute = config.web.click_to_call_per_minute
        self._anonymous = FloodGuard(per_minute / 60, per_minute, 60.0)
        self._public = public
        self.challenges = 0
        self.failures = 0

    def retarget(
        self,
        trusted_peers: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
        open_federation: bool,
        public: Mapping[str, SipUri],
    ) -> None:
        """The policy a reload changes, for the next request; nonces stay valid."""
        self._trusted_peers = tuple(trusted_peers)
        self._open_federation = open_federation
        self._public = public

    async def admit(
        self, request: Request, transport: str, host: str, now: float
    ) -> Request | Refusal:
        """An out-of-dialog request other than REGISTER: refused, or let through, with a
        click-to-call name's configured target as its Request-URI (Kamailio's $ru = ...)."""
        uri = request.uri
        local = isinstance(uri, SipUri) and self._locality.is_local(uri)
        from_address = request.headers.from_
        from_uri = from_address.uri if from_address else None
        from_local = isinstance(from_uri, SipUri) and self._locality.is_local(from_uri)
        trusted = self._trusted(host)
        public = self._public_target(request) if local else None
        if from_local and not trusted:
            user = await self.authenticate(request, transport, host, now)
            if isinstance(user, Refusal):
                return user
            assert isinstance(from_uri, SipUri)
            if (from_uri.user or "").lower() != user.lower():
                return Refusal(403, "From Does Not Match The Authenticated User")
        elif public is not None:
            # Anyone may call a public name; a From naming a local user was challenged
            # above, so an anonymous caller cannot pose as staff.
            if not trusted and not self._anonymous.allow(host, now):
                return Refusal(503, "Too Many Anonymous Calls", (("Retry-After", "60"),))
            log.info("sip: click-to-call from %s to %s", host, request.uri)
        elif not from_local and local and not (trusted or self._open_federation):
            return Refusal(403, "Forbidden")
        elif not local and not from_local and not trusted:
            return Refusal(403, "Relaying Denied")
        return request if public is None else replace(request, uri=public)

    async def authenticate(
        self, request: Request, transport: str, host: str, now: float
    ) -> str | Refusal:
        """The authenticated user, or the 401/407 challenge to answer with (RFC 3261 §22)."""
        auth = self._digest.credentials(request)
        stale = False
        if auth is not None:
            username = auth.param("username") or ""
            user, ha1 = await self._credentials_for(username, now)
            # One key per account over every protocol: Roland and roland are one.
            account = account_key(user.partition("@")[0], self._domain)
            wait = self._guesses.wait(account, host, now)
            standing = None
            if self._shared is not None and wait <= 0:
                standing = await self._shared.standing(account, host, now)
                wait = standing.wait
            if standing is not None and standing.outage:
                # Redis is down or overloaded: nothing can be checked or counted, and a
                # phone with the right password must not be told it is wrong.
                stale = True
            elif wait > 0:
                # Refused unchecked, answered as a wrong password would be; a network
                # that proved this password lately is not held by the account's wait.
                self._throttle(account, host, wait)
            else:
                verdict = self._digest.verify(request.method, auth, ha1, now, host)
                outcome = verdict.outcome
                if outcome is DigestOutcome.OK and verdict.username is not None:
                    self._guesses.success(account, host, now)
                    if self._shared is not None:
                        await self._shared.success(account, host, now, standing)
                    return user
                stale = outcome is DigestOutcome.STALE
                if outcome is DigestOutcome.INVALID:
                    self.failures += 1
                    if verdict.checked:
                        self._guesses.failure(account, host, now)
                        if self._shared is not None:
                            await self._shared.failure(account, host, now)
        self.challenges += 1
        challenge = self._digest.challenge(request.method, now, self._random(12), stale=stale)
        headers = challenge.headers
        if transport in ("ws", "wss"):
            # JsSIP keeps only the last challenge field and speaks MD5 only: browsers
            # get the configured order reversed, MD5 (the default first) last.
            headers = headers[::-1]
        return Refusal(challenge.status, headers=headers)

    def _throttle(self, account: str, host: str, wait: float) -> None:
        self.throttled += 1
        if self.throttled in (1, 100) or self.throttled % 10_000 == 0:
            log.warning(
                "sip: digest credentials for %r from %s refused unchecked for %.0f s more "
                "(limits.account_guesses, limits.source_guesses); %d so far",
                account,
                host,
                wait,
                self.throttled,
            )

    def from_mismatch(self, request: Request, user: str) -> Refusal | None:
        """403 when ``request``'s From is not ``user``, who authenticated: a local user's
        From is bound to the credentials on every path (Kamailio's auth_check with the
        From user check)."""
        from_address = request.headers.from_
        from_uri = from_address.uri if from_address else None
        if (
            isinstance(from_uri, SipUri)
            and self._locality.is_local(from_uri)
            and (from_uri.user or "").lower() == user.lower()
        ):
            return None
        return Refusal(403, "From Does Not Match The Authenticated User")

    def trusted(self, host: str) -> bool:
        return self._trusted(host)

    def _trusted(self, host: str) -> bool:
        """The source address is one of ``sip.trusted_peers``."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            address in network
            for network in self._trusted_peers
            if network.version == address.version
        )

    async def _credentials_for(self, username: str, now: float) -> tuple[str, StoredHa1 | None]:
        """The user a digest username stands for, and the HA1 to check it with.

        ``expiry.grant:user`` is a web phone's short-lived credential (see
        :class:`heron.credentials.WebPhoneCredentials`): its HA1 comes from the
        HMAC password, and it is good only until its expiry or until the web
        session that got it ends, for an account that still exists.
        """
        checked = self._web_phone.check(username, self._realm, now=now)
        if checked is None:
            return username, await self._ha1_for(username)
        user, md5, sha256 = checked
        if await self._ha1_for(user) is None:
            return user, None
        return user, StoredHa1(md5.hex(), sha256.hex())

    def _public_target(self, request: Request) -> SipUri | None:
        """Where an INVITE to a click-to-call name (``web.click_to_call``) goes, else None."""
        uri = request.uri
        if request.method != Method.INVITE or not isinstance(uri, SipUri) or not uri.user:
            return None
        return self._public.get(uri.user.lower())
