"""The one configuration file, validated once at the edge.

An administrator edits one TOML file; every service receives only its own
frozen section of it. Anything the file leaves out has a default that works
on ``localhost`` with no set-up, and names that several services share (SIP
domain, XMPP hosts, TURN realm) default to the main ``domain``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from heron.dns.records import parse_nameserver
from heron.errors import ConfigError

__all__ = [
    "Config",
    "DatabaseSettings",
    "DnsSettings",
    "LimitsSettings",
    "ListenAddress",
    "MediaSettings",
    "SipSettings",
    "TlsSettings",
    "TurnSettings",
    "WebSettings",
    "XmppSettings",
    "SYSTEM_CONFIG",
    "SYSTEM_DATA_DIR",
    "config_file",
    "load_config",
    "parse_address",
    "system_service",
    "validate_domain",
]

DEFAULT_DATA_DIR = Path("var")
SYSTEM_CONFIG = Path("/etc/heron/heron.toml")
SYSTEM_DATA_DIR = Path("/var/lib/heron")


def system_service(
    environ: Mapping[str, str] = os.environ,
    *,
    parent: int | None = None,
    euid: int | None = None,
    system_config: Path = SYSTEM_CONFIG,
) -> bool:
    """The one rule for Debian's defaults (SYSTEM_CONFIG, SYSTEM_DATA_DIR instead of
    built-in settings and ./var): heron runs as the system's service when systemd started
    it (its direct child, with the unit's INVOCATION_ID; a CI runner's children inherit the
    variable but not the parent), or when root runs it where SYSTEM_CONFIG exists."""
    parent = os.getppid() if parent is None else parent
    euid = os.geteuid() if euid is None else euid
    by_systemd = parent == 1 and "INVOCATION_ID" in environ
    return by_systemd or (euid == 0 and system_config.is_file())


def config_file(path: Path | None, system: bool) -> Path | None:
    """The file to read: the one given, else SYSTEM_CONFIG for the system's service."""
    if path is None and system and SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return path


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCALPART = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")


def validate_domain(value: str) -> str:
    """Return ``value`` lower-cased if it is a DNS host name (RFC 1123), else raise."""
    name = value.strip().lower().rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{value!r} is not a valid domain name")
    return name


def parse_address(value: str) -> tuple[str, str]:
    """Split ``user@domain`` into a normalised (local part, domain) pair.

    Local parts are lower-cased and kept to characters that every protocol
    accepts unescaped, so one account name works as SIP user, XMPP node and
    TURN username alike.
    """
    local, sep, domain = value.strip().partition("@")
    if not sep:
        raise ValueError(f"{value!r} is not an address of the form user@domain")
    local = local.lower()
    if not _LOCALPART.match(local):
        raise ValueError(
            f"{value!r}: the user part may hold only letters, digits and . _ + - "
            "(up to 64, starting with a letter or digit)"
        )
    return local, validate_domain(domain)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A host and port to listen on, written ``host:port`` or ``[v6]:port``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _listen_address(value: Any) -> ListenAddress:
    if isinstance(value, ListenAddress):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string of the form host:port")
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{value!r} is not of the form host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if host != "localhost":
            raise ValueError(f"{value!r}: the host must be an IP address or localhost") from None
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{value!r}: the port must be between 1 and 65535")
    return ListenAddress(host, port)


Listen = Annotated[ListenAddress, BeforeValidator(_listen_address)]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Domain = Annotated[str, BeforeValidator(validate_domain)]


def _admin_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string of the form user@domain")
    local, domain = parse_address(value)
    return f"{local}@{domain}"


AdminAddress = Annotated[str, BeforeValidator(_admin_address)]

# Prosody's units for archive_expires_after: a month and a year are averages.
_EXPIRY_UNITS = {"d": 86_400, "w": 604_800, "m": 2_629_746, "y": 31_556_952}


def _expiry(value: Any) -> float | None:
    """``"never"``, or a count of days, weeks, months or years: ``"3d"``, ``"1w"``, ``"1y"``."""
    if value == "never":
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"([1-9][0-9]{0,4})([dwmy])", value.strip())
        if match:
            return float(int(match[1]) * _EXPIRY_UNITS[match[2]])
    raise ValueError(f'{value!r}: use "never" or a number and d, w, m or y ("1w", "1y")')


Expiry = Annotated[float | None, BeforeValidator(_expiry)]


def _listen(*addresses: str) -> Any:
    return Field(default_factory=lambda: [_listen_address(a) for a in addresses])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def _https_url(value: str) -> str:
    if not re.fullmatch(r"https://[^\s/]+(/\S*)?", value):
        raise ValueError(f"{value!r} is not an https:// URL")
    return value


def _email(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[^\s@:]+@[^\s@]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class TlsSettings(_Section):
    certificate: Path | None = None
    """PEM certificate chain; default ``<data dir>/tls/heron.crt`` (see ``heron cert``), or
    ``<data dir>/acme/heron.crt`` with ``acme``."""
    key: Path | None = None
    """PEM private key; default ``<data dir>/tls/heron.key`` (``acme/heron.key``)."""
    acme: bool = False
    """Obtain and renew one certificate for every name heron serves from an ACME CA (RFC
    8555), proving each name by TLS-ALPN-01 (RFC 8737) on ``[mux] listen``, which must be
    port 443 for a public CA; the files are heron's, in the data directory."""
    acme_directory: Annotated[str, AfterValidator(_https_url)] = LETS_ENCRYPT
    """The CA's ACME directory URL; default Let's Encrypt's production one."""
    acme_email: Annotated[str | None, AfterValidator(_email)] = None
    """Where the CA may write about the account (expiry warnings, policy changes)."""
    acme_ca: Path | None = None
    """PEM CA certificates to trust the directory's HTTPS with instead of the system's (a
    test CA such as pebble's)."""
    acme_renew_before: int = Field(default=30, ge=1, le=365)
    """Days before expiry a certificate is renewed; heron checks daily."""

    @model_validator(mode="after")
    def _acme_owns_files(self) -> TlsSettings:
        if self.acme and (self.certificate or self.key):
            raise ValueError(
                "tls.certificate and tls.key are ACME's own with tls.acme; remove them"
            )
        return self


class DatabaseSettings(_Section):
    url: str | None = None
    """sqlite:///path, postgresql://... or mysql://...; default SQLite in the data dir."""


def _nameserver(value: str) -> str:
    parse_nameserver(value)
    return value


class DnsSettings(_Section):
    servers: list[Annotated[str, AfterValidator(_nameserver)]] = Field(default_factory=list)
    """Name servers ("host" or "host:port", IP addresses) heron asks to find other domains'
    servers, for SIP (RFC 3263 NAPTR, SRV, A/AAAA) and XMPP (RFC 6120 §3.2 SRV, A/AAAA);
    default those of /etc/resolv.conf."""


def _redis_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{value!r} is not a redis://, rediss:// or unix:// URL")
    return value


class RedisSettings(_Section):
    url: Annotated[str | None, AfterValidator(_redis_url)] = None
    """redis://host:port/db (rediss:// for TLS, unix:///path for a socket): SIP bindings,
    lockouts and flood bans shared by every SIP worker and every heron node
    on it; without it, SIP runs in one process and keeps them in memory."""
    prefix: str = Field(default="heron:", min_length=1, max_length=64)
    """Starts every key and channel heron uses, so that several heron domains (or tests)
    can share one Redis; the nodes of one domain must use the same."""


class TurnSettings(_Section):
    enabled: bool = True
    """Serve STUN and TURN (what coturn does)."""
    realm: Domain | None = None
    """Long-term credential realm; default the main domain."""
    listen: list[Listen] = _listen("0.0.0.0:3478")
    """UDP and TCP listeners."""
    tls_listen: list[Listen] = _listen("0.0.0.0:5349")
    """TLS listeners (ALPN stun.turn)."""
    relay_addresses: list[IPAddress] = Field(default_factory=list)
    """Addresses relays bind to, at most one IPv4 and one IPv6 (RFC 6156); default the
    public addresses, else the first specific listen address, else 127.0.0.1."""
    external_address: IPAddress | None = None
    """Address to advertise for the IPv4 relay when behind 1:1 NAT (coturn external-ip)."""
    other_address: IPAddress | None = None
    """Second address for RFC 5780 NAT behaviour discovery (the handbook's two IPv4s)."""
    relay_port_min: int = Field(default=49152, ge=1024, le=65535)
    """Lowest relay port (coturn min-port)."""
    relay_port_max: int = Field(default=65535, ge=1024, le=65535)
    """Highest relay port (coturn max-port)."""
    allowed_peer_ranges: list[IPNetwork] = Field(default_factory=list)
    """Peer ranges allowed although denied by default (loopback, private, ...)."""
    denied_peer_ranges: list[IPNetwork] = Field(default_factory=list)
    """Peer ranges to refuse in addition to the defaults."""
    allow_anonymous: bool = False
    """Allow TURN without credentials; STUN Binding never needs any."""
    auth_secret: str | None = Field(default=None, min_length=16)
    """Shared secret of the TURN REST API scheme (coturn static-auth-secret)."""
    auth_secret_file: Path | None = None
    """File holding that secret; default <data dir>/turn_secret, created when missing."""
    default_lifetime: int = Field(default=600, ge=60, le=3600)
    """Allocation lifetime when the client asks for none, seconds (RFC 8656 §3.2)."""
    max_lifetime: int = Field(default=3600, ge=60, le=86400)
    """Longest allocation lifetime granted, seconds."""
    user_quota: int = Field(default=20, ge=0)
    """Live allocations per user; 0 is unlimited (coturn user-quota)."""
    total_quota: int = Field(default=10000, ge=0)
    """Live allocations in all; 0 is unlimited (coturn total-quota)."""
    max_bps: int = Field(default=0, ge=0)
    """Relayed bytes per second per allocation; 0 is unlimited (coturn max-bps)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes sharing the TURN listeners with SO_REUSEPORT. Each client address meets
    one worker, but a RESERVATION-TOKEN (EVEN-PORT with R) only works in the worker that
    made it: clients pairing two sockets that way (turnutils_uclient -m) need 1 here."""

    @model_validator(mode="after")
    def _port_range(self) -> TurnSettings:
        if self.relay_port_min > self.relay_port_max:
            raise ValueError("relay_port_min is above relay_port_max")
        return self


class MediaSettings(_Section):
    """The WebRTC ⇄ RTP media bridge the SIP proxy steers (what rtpengine does for Kamailio)."""

    enabled: bool = True
    """Run the media bridge; the SIP proxy uses it for the calls ``sip.media_relay`` names."""
    address: IPAddress = ipaddress.IPv4Address("0.0.0.0")
    """Address the bridge's UDP sockets bind to (rtpengine's interface)."""
    advertise: IPAddress | None = None
    """Address put in the SDP heron rewrites; default ``turn.external_address``, else the
    first of ``public_addresses`` of the bind address's IP version, else ``address`` when
    it is not a wildcard, else 127.0.0.1 (local tests only)."""
    port_min: int = Field(default=40000, ge=1024, le=65534)
    """Lowest media port (rtpengine's port-min); RTP ports are even, RTCP on the next. The
    default range sits just below TURN's relays (49152-65535), which it must not overlap."""
    port_max: int = Field(default=49151, ge=1025, le=65535)
    """Highest media port (rtpengine's port-max): 4 ports per bridged call."""
    max_calls: int = Field(default=1000, ge=1, le=100_000)
    """Calls bridged at once; more are refused with 503."""
    timeout: float = Field(default=60.0, ge=1.0, le=3600.0)
    """Seconds without a packet from either side after which a call's relay ends
    (rtpengine's timeout)."""
    allowed_destinations: list[IPNetwork] = Field(default_factory=list)
    """Private, loopback or link-local networks media may be sent to (desk phones and a PBX
    on the LAN). Without them, as for SIP's ``allowed_destinations``, the bridge neither
    sends to nor accepts media from such addresses, nor heron's own."""

    @model_validator(mode="after")
    def _port_range(self) -> MediaSettings:
        if self.port_min + 3 > self.port_max:
            raise ValueError("port_min must be at least 3 below port_max (one RTP/RTCP pair)")
        if self.advertise is not None and self.advertise.version != self.address.version:
            raise ValueError("advertise must be of the IP version of address")
        return self


class SipRoute(_Section):
    user: str = Field(pattern=r"^\^?[^\s]*$")
    """Regular expression on the Request-URI user part, such as ^[0-9]+$ for numbers."""
    target: str = Field(pattern=r"^sips?:")
    """Where such requests go: the PBX (the handbook's Asterisk) or a trunk, a SIP URI."""


class SipSettings(_Section):
    enabled: bool = True
    """Serve SIP as proxy and registrar (what Kamailio does)."""
    domain: Domain | None = None
    """SIP domain users register in, such as sip.falcot.com; default the main domain."""
    listen: list[Listen] = _listen("0.0.0.0:5060")
    """UDP and TCP listeners."""
    tls_listen: list[Listen] = _listen("0.0.0.0:5061")
    """TLS (sips:) listeners."""
    websocket: bool = True
    """SIP over WebSocket (RFC 7118) at /sip on the web port, for browsers."""
    aliases: list[Domain] = Field(default_factory=list)
    """Other names requests for the SIP domain may use (host names, addresses)."""
    min_expires: int = Field(default=60, ge=1)
    """Shortest registration accepted; shorter ones get 423 (RFC 3261 §10.3)."""
    max_expires: int = Field(default=3600, ge=60)
    """Longest registration granted."""
    max_contacts: int = Field(default=10, ge=1)
    """Bindings per address-of-record."""
    digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = Field(
        default=("MD5", "SHA-256"), min_length=1
    )
    """Challenge order: many phones and sipp 3.6 read only the first, so MD5 leads."""
    trusted_peers: list[IPNetwork] = Field(default_factory=list)
    """Hosts (PBX, trunk) whose unauthenticated requests may reach local users, and which
    heron may forward requests to even on private addresses."""
    allowed_destinations: list[IPNetwork] = Field(default_factory=list)
    """Private, loopback or link-local networks heron may forward requests to (a PBX or a
    SIP server of another domain on the LAN). Without them, no request goes to such an
    address, nor to heron's own, unless a registered phone, a static route or a
    click-to-call target is there."""
    open_federation: bool = False
    """Accept unauthenticated requests from any other domain for local users."""
    routes: list[SipRoute] = Field(default_factory=list)
    """Static routes by Request-URI user, tried in order, for numbers and extensions."""
    flood_rate: float = Field(default=50.0, ge=0)
    """Requests per second one source may send (Kamailio's pike); 0 turns the guard off."""
    flood_burst: float = Field(default=200.0, ge=1)
    """Requests a source may send at once before the rate applies."""
    flood_ban: float = Field(default=60.0, ge=1)
    """Seconds a flooding source is ignored."""
    flood_exempt: list[IPNetwork] = Field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")]
    )
    """Sources never limited (trusted peers are exempt too); messages from heron's own
    SIP sockets (a loop through itself) never are."""
    media_relay: Literal["never", "webrtc", "always"] = "webrtc"
    """Which calls with SDP go through the media bridge (as Kamailio's rtpengine_offer):
    ``webrtc`` those between a web phone and a plain RTP phone, ``always`` every call
    (plain phones behind NAT, as rtpproxy), ``never`` none. Two web phones never do."""
    echo: str = Field(default="", pattern=r"^[A-Za-z0-9.*#+_-]{0,32}$")
    """A number of the SIP domain heron answers itself, returning the caller's media
    (Asterisk's Echo()), such as "600"; empty: none. Only for authenticated users."""
    workers: int | None = Field(default=None, ge=1, le=64)
    """Processes serving SIP, sharing the UDP listeners (SO_REUSEPORT, a datagram goes to
    the worker its source port modulo the count names) and each accepting TCP/TLS
    connections of its own. Default: the CPU count when ``redis.url`` is set and the media
    bridge is off, else 1. More than 1 needs both (the workers share state through Redis;
    the media bridge lives in one process)."""


class XmppSettings(_Section):
    enabled: bool = True
    """Serve XMPP chat, presence and group chat (what Prosody does)."""
    hosts: list[Domain] = Field(default_factory=list)
    """Virtual hosts users log in to; default the main domain."""
    muc: Domain | None = None
    """Group-chat component; default conference.<domain>."""
    listen: list[Listen] = _listen("0.0.0.0:5222")
    """Client listeners with STARTTLS."""
    tls_listen: list[Listen] = _listen("0.0.0.0:5223")
    """Client listeners with direct TLS (XEP-0368)."""
    s2s_listen: list[Listen] = _listen("0.0.0.0:5269")
    """Server-to-server listeners with STARTTLS (federation, RFC 6120). With none (and no
    ``s2s_tls_listen``), heron does not federate: it neither accepts nor opens s2s streams."""
    s2s_tls_listen: list[Listen] = _listen("0.0.0.0:5270")
    """Server-to-server listeners with direct TLS (XEP-0368, ALPN ``xmpp-server``)."""
    s2s_require_encryption: bool = True
    """Refuse s2s streams without TLS (Prosody's s2s_require_encryption)."""
    s2s_secure_auth: bool = False
    """Accept only servers whose certificate is valid for their domain, never dialback
    (Prosody's s2s_secure_auth)."""
    s2s_allow: list[Domain] = Field(default_factory=list)
    """When not empty, the only domains heron federates with (Prosody's s2s_whitelist)."""
    s2s_deny: list[Domain] = Field(default_factory=list)
    """Domains heron never federates with (Prosody's s2s_blacklist)."""
    s2s_ca_file: Path | None = None
    """PEM file of the certificate authorities that vouch for other servers; default the
    system's (Prosody's ssl.cafile)."""
    s2s_bidi: bool = True
    """XEP-0288: one connection carries both directions when the other server offers it
    (Prosody's mod_s2s_bidi); heron asks only servers whose certificate is valid."""
    s2s_queue: int = Field(default=200, ge=1, le=100_000)
    """Stanzas waiting per remote domain while its stream is set up; more bounce."""
    s2s_read_rate: int = Field(default=262_144, ge=0)
    """Bytes per second one server-to-server stream may send (after a burst of four seconds'
    worth, or one largest stanza), as ``read_rate`` for a client; higher, since one stream
    carries a whole domain's users (Prosody's mod_limits ``s2sin``). 0 is unlimited."""
    s2s_streams_per_domain: int = Field(default=10, ge=1, le=1000)
    """Incoming server-to-server streams one remote domain may hold authenticated at once;
    another is closed with resource-constraint, so that no domain can hold every socket."""
    s2s_allowed_destinations: list[IPNetwork] = Field(default_factory=list)
    """Private, loopback or link-local networks heron may connect to for server-to-server
    XMPP (another domain's server on the LAN): without them, as for SIP's
    ``allowed_destinations`` and TURN's ``allowed_peer_ranges``, no s2s connection goes
    to such an address nor to heron's own, whatever DNS says."""
    require_encryption: bool = True
    """Refuse to authenticate clients before STARTTLS (Prosody's c2s_require_encryption)."""
    websocket: bool = True
    """XMPP over WebSocket (RFC 7395) at /xmpp-websocket on the web port, for browsers."""
    max_stanza_size: int = Field(default=262_144, ge=10_000, le=16_777_216)
    """Largest stanza in bytes; a bigger one ends the stream (Prosody's default too)."""
    read_rate: int = Field(default=65_536, ge=0)
    """Bytes per second one client connection may send (after a burst of four seconds' worth,
    or one largest stanza); past it heron reads more slowly, as Prosody's mod_limits does.
    0 is unlimited."""
    csi_queue: int = Field(default=256, ge=1, le=10_000)
    """Presence updates and chat states held back for a client that said it is inactive
    (XEP-0352, as Prosody's csi_simple: csi_queue_size); a full queue is sent at once."""
    resume_timeout: int = Field(default=300, ge=0, le=86_400)
    """Seconds a client whose connection dropped may take to resume its session (XEP-0198,
    Prosody's smacks_hibernation_time); meanwhile its messages wait for it, then go to
    offline storage. 0 turns resumption off (acks stay)."""
    sm_queue: int = Field(default=500, ge=1, le=100_000)
    """Stanzas a client may leave unacknowledged, hibernating sessions included (XEP-0198,
    Prosody's smacks_max_queue_size); more end its stream with resource-constraint."""
    hibernated_per_account: int = Field(default=10, ge=1, le=1000)
    """Sessions of one account waiting to be resumed; a newer one ends the oldest
    (Prosody's smacks_max_hibernated_sessions)."""
    hibernated_total: int = Field(default=10_000, ge=1, le=1_000_000)
    """Sessions waiting to be resumed over all accounts; a newer one ends the oldest."""
    offline_limit: int = Field(default=500, ge=0)
    """Messages kept per offline user (XEP-0160); more are bounced."""
    archive: bool = True
    """Keep message archives (XEP-0313 MAM) for accounts and group-chat rooms, and mark
    archived messages with their id (XEP-0359)."""
    archive_expires: Expiry = 604_800.0
    """How long archived messages are kept: "never", or a number and d, w, m or y ("1w",
    "1y"); Prosody's archive_expires_after, with its default of one week."""
    archive_max: int = Field(default=10_000, ge=0, le=10_000_000)
    """Messages kept per archive (an account's or a room's); past it the oldest go.
    0 is unlimited."""
    archive_page: int = Field(default=50, ge=1, le=250)
    """Results one archive query returns at most, whatever ``max`` the client asks
    (Prosody's max_archive_query_results); clients page for more."""
    push_include_body: bool = False
    """Put message bodies into push notifications (XEP-0357 summaries), which leave the
    server for the app vendor's push service; off, the phone learns only who wrote."""
    muc_history: int = Field(default=20, ge=0, le=1000)
    """Group-chat messages a newcomer is sent (XEP-0045 §7.2.15), as Prosody's default."""
    rooms_per_user: int = Field(default=20, ge=0, le=1000)
    """Group-chat rooms one account may own at once (administrators are not limited), so
    that one user cannot take the service's 1000 rooms; 0 is unlimited."""
    upload: bool = True
    """XEP-0363 HTTP File Upload: a service at upload.<domain> whose files the web listener
    takes and serves (it needs ``web``)."""
    upload_dir: Path | None = None
    """Where uploaded files are kept; default ``<data_dir>/upload``."""
    upload_max_size: int = Field(default=10_485_760, ge=1, le=1 << 40)
    """Largest file in bytes (Prosody's http_file_share_size_limit, 10 MiB)."""
    upload_quota: int = Field(default=104_857_600, ge=0)
    """Bytes one account's uploads not yet expired may take; 0 is unlimited."""
    upload_expires: Expiry = 604_800.0
    """How long uploaded files are kept: "never", or a number and d, w, m or y (Prosody's
    http_file_share_expires_after, a week)."""
    turn_credentials_ttl: int = Field(default=86_400, ge=60)
    """Lifetime of the TURN credentials handed out by XEP-0215, in seconds."""


_PUBLIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _public_name(value: Any) -> str:
    if not isinstance(value, str) or not _PUBLIC_NAME.match(value.lower()):
        raise ValueError(
            f"{value!r}: a public name holds only letters, digits, _ and - (up to 32), "
            "as it appears in /call/NAME and in sip:NAME@<sip domain>"
        )
    return value.lower()


def _call_target(value: Any) -> str:
    """A local address ``user@domain`` becomes ``sip:user@domain``; SIP URIs stay."""
    if not isinstance(value, str):
        raise ValueError("must be an address user@domain or a sip: URI")
    if re.match(r"^sips?:[^\s<>\"]+$", value):
        return value
    local, domain = parse_address(value)
    return f"sip:{local}@{domain}"


PublicName = Annotated[str, BeforeValidator(_public_name)]
CallTarget = Annotated[str, BeforeValidator(_call_target)]


class WebSettings(_Section):
    enabled: bool = True
    """Serve the web phone, WebSockets, admin pages, API and metrics over HTTPS."""
    listen: list[Listen] = _listen("0.0.0.0:8443")
    """HTTPS listeners."""
    plain_listen: list[Listen] = Field(default_factory=list)
    """Plain-HTTP listeners, none by default: only for a TLS-terminating reverse proxy on
    this host (such as 127.0.0.1:8080 behind nginx); cookies stay Secure, so browsers must
    reach the proxy over HTTPS."""
    trusted_proxies: list[IPNetwork] = Field(default_factory=list)
    """Reverse proxies whose X-Forwarded-For (and X-Forwarded-Proto) heron believes, as
    nginx's ``set_real_ip_from`` with ``real_ip_recursive on``: the client is the last
    address in X-Forwarded-For that is not one of these. Empty by default: no header is
    believed, and a client reaching ``plain_listen`` is unknown (its failed logins slow
    only the account they guess, and /metrics is not served to it). Set it to the proxy's
    address (such as ``["127.0.0.1/32"]``) and have the proxy send the header (nginx:
    ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for``). Trusted proxies
    are not held to ``limits.connections_per_source``."""
    click_to_call: dict[PublicName, CallTarget] = Field(default_factory=dict)
    """Public destinations anonymous web visitors may call at /call/NAME, such as
    ``sales = "roland@falcot.com"`` or ``support = "sip:600@192.0.2.10"`` (a PBX extension).
    The SIP proxy lets unauthenticated callers INVITE ``NAME@<sip domain>`` and nothing else;
    an INVITE to a public name goes to its target, even if an account has the same name."""
    click_to_call_per_minute: int = Field(default=6, ge=1, le=600)
    """Anonymous calls (and /call configurations, with their TURN credentials) one source
    address may start per minute, in a burst or spread out; more get 503 for a minute."""
    click_to_call_turn_ttl: int = Field(default=300, ge=60, le=86_400)
    """Lifetime in seconds of the TURN credentials a /call page gets. A call relayed through
    TURN ends about one allocation lifetime after they expire (the refresh is refused)."""
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    """How long a web login lasts before the browser must log in again."""
    metrics: Literal["localhost", "admin", "off"] = "localhost"
    """Who may read /metrics: "localhost" (loopback clients only, for a local Prometheus),
    "admin" (a logged-in administrator) or "off"."""


class LimitsSettings(_Section):
    """What one source may cost the server, over every protocol (the README's security model)."""

    connections_per_source: int = Field(default=256, ge=0)
    """Open TCP/TLS/WebSocket connections one IPv4 address or IPv6 /64 may hold over every
    listener together; 0 is unlimited. An office behind one NAT address needs several per
    person (phone, chat, browser)."""
    connections_exempt: list[IPNetwork] = Field(default_factory=list)
    """Sources never limited in connections (a reverse proxy, a PBX)."""
    handshake_timeout: float = Field(default=30.0, ge=1.0, le=600.0)
    """Seconds a new connection has to finish TLS and prove who it is (or, for SIP, send a
    first whole message) before it is closed."""
    idle_timeout: float = Field(default=900.0, ge=1.0, le=86_400.0)
    """Seconds without a byte from the peer after which an established connection is closed;
    SIP keeps a connection that carries a live registration until the registration ends."""
    account_guesses: int = Field(default=5, ge=1)
    """Wrong passwords for one account (over SIP, XMPP, TURN and the web together) before each
    further guess must wait, 1 s after the first, doubling up to ``guess_wait_max``."""
    source_guesses: int = Field(default=20, ge=1)
    """Wrong passwords from one IPv4 address or IPv6 /64 before its guesses must wait."""
    guess_wait_max: float = Field(default=60.0, ge=1.0, le=3600.0)
    """Longest wait between guesses for one account, in seconds (five times that for a source).
    Networks an account logged in from in the last 30 days are exempt from its wait."""
    password_checks: int = Field(default=2, ge=1, le=64)
    """Argon2 password checks (web logins, SASL PLAIN) run at once, 64 MiB each; more wait
    in a queue of 16 per check, and beyond that are refused."""


MuxService = Literal["turn", "sip", "xmpp-client", "xmpp-server", "web"]


class MuxSettings(_Section):
    listen: list[Listen] = Field(default_factory=list)
    """Addresses (such as 198.51.100.19:443) where one port carries every service: a TCP
    connection goes to the service its first bytes name (TLS by ALPN, then by server name;
    STUN, SIP, XMPP and HTTP by their first line), a UDP datagram to STUN/TURN."""
    first_bytes_timeout: float = Field(default=10.0, ge=1.0, le=120.0)
    """Seconds a new connection has to send enough bytes to name its service; then it is
    closed (a peer trickling a ClientHello byte by byte holds nothing longer)."""
    pending_per_source: int = Field(default=16, ge=1, le=100_000)
    """Connections one IPv4 address or IPv6 /64 may hold open on the mux before they name
    their service; more are closed at once."""
    sni: dict[Domain, MuxService] = Field(default_factory=dict)
    """TLS server names that choose a service when the ClientHello offers no known ALPN
    protocol, such as ``{"sip.falcot.com" = "sip"}``; the SIP domain goes to SIP by itself
    when it is not the host name. Otherwise TLS offering no ALPN is TURN (browsers' relays
    over TLS), and the rest goes to the web component."""


class Config(_Section):
    """The whole configuration; sections default to a working localhost set-up."""

    domain: Domain = "localhost"
    """Main domain, such as falcot.com: accounts are user@domain."""
    hostname: Domain | None = None
    """DNS name of this machine, the target of the SRV records; default the main domain."""
    public_addresses: list[IPAddress] = Field(default_factory=list)
    """Public IPv4/IPv6 addresses, for the A/AAAA records ``heron dns`` prints."""
    admins: list[AdminAddress] = Field(default_factory=list)
    """Accounts with administrator rights, in addition to ``heron admin add``."""
    data_dir: Path = DEFAULT_DATA_DIR
    """Where the SQLite database and generated certificates live."""
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    """One of debug, info, warning, error."""
    tls: TlsSettings = TlsSettings()
    database: DatabaseSettings = DatabaseSettings()
    dns: DnsSettings = DnsSettings()
    redis: RedisSettings = RedisSettings()
    turn: TurnSettings = TurnSettings()
    sip: SipSettings = SipSettings()
    xmpp: XmppSettings = XmppSettings()
    web: WebSettings = WebSettings()
    mux: MuxSettings = MuxSettings()
    media: MediaSettings = MediaSettings()
    limits: LimitsSettings = LimitsSettings()

    @model_validator(mode="after")
    def _media_ports_apart(self) -> Config:
        media, turn = self.media, self.turn
        if (
            media.enabled
            and turn.enabled
            and media.port_min <= turn.relay_port_max
            and turn.relay_port_min <= media.port_max
        ):
            raise ValueError(
                f"media ports {media.port_min}-{media.port_max} overlap TURN relay ports "
                f"{turn.relay_port_min}-{turn.relay_port_max}"
            )
        return self

    @model_validator(mode="after")
    def _sip_workers_need_redis(self) -> Config:
        workers = self.sip.workers
        if workers is not None and workers > 1:
            if self.redis.url is None:
                raise ValueError(f"sip.workers = {workers} needs redis.url")
            if self.media.enabled:
                raise ValueError(f"sip.workers = {workers} needs media.enabled = false")
        return self

    @model_validator(mode="after")
    def _echo_needs_media(self) -> Config:
        if self.sip.enabled and self.sip.echo and not self.media.enabled:
            raise ValueError(f"sip.echo = {self.sip.echo!r} needs the media bridge (media.enabled)")
        return self

    @model_validator(mode="after")
    def _acme_needs_mux(self) -> Config:
        if self.tls.acme and not self.mux.listen:
            raise ValueError("tls.acme proves names by TLS-ALPN-01 on port 443: set [mux] listen")
        return self

    @property
    def sip_domain(self) -> str:
        return self.sip.domain or self.domain

    @property
    def sip_workers(self) -> int:
        """``sip.workers``, or its default: the CPU count where workers can share state."""
        if self.sip.workers is not None:
            return self.sip.workers
        if self.redis.url is None or self.media.enabled:
            return 1
        return len(os.sched_getaffinity(0))

    @property
    def turn_realm(self) -> str:
        return self.turn.realm or self.domain

    @property
    def xmpp_hosts(self) -> list[str]:
        return self.xmpp.hosts or [self.domain]

    @property
    def muc_domain(self) -> str:
        return self.xmpp.muc or f"conference.{self.domain}"

    @property
    def upload_domain(self) -> str:
        return f"upload.{self.domain}"

    @property
    def upload_path(self) -> Path:
        return self.xmpp.upload_dir or self.data_dir / "upload"

    @property
    def host_name(self) -> str:
        return self.hostname or self.domain

    @property
    def account_domains(self) -> list[str]:
        """Domains whose accounts this heron keeps: the main domain and the XMPP hosts."""
        return list(dict.fromkeys([self.domain, *self.xmpp_hosts]))

    @property
    def turn_secret_path(self) -> Path:
        return self.turn.auth_secret_file or self.data_dir / "turn_secret"

    @property
    def certificate_path(self) -> Path:
        return self.tls.certificate or self.data_dir / self._tls_dir / "heron.crt"

    @property
    def key_path(self) -> Path:
        return self.tls.key or self.data_dir / self._tls_dir / "heron.key"

    @property
    def _tls_dir(self) -> str:
        return "acme" if self.tls.acme else "tls"

    @property
    def acme_dir(self) -> Path:
        """ACME's files: the account key, the certificate and its key, owner-only."""
        return self.data_dir / "acme"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'heron.db'}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database's file; None for PostgreSQL or MariaDB."""
        url = self.database_url
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    @property
    def media_advertise(self) -> IPAddress:
        """The address the media bridge names in SDP (``media.advertise``'s default)."""
        media = self.media
        version = media.address.version
        candidates = [
            media.advertise,
            self.turn.external_address,
            *self.public_addresses,
            None if media.address.is_unspecified else media.address,
        ]
        for candidate in candidates:
            if candidate is not None and candidate.version == version:
                return candidate
        return ipaddress.ip_address("127.0.0.1" if version == 4 else "::1")

    @property
    def sip_secret_path(self) -> Path:
        return self.data_dir / "sip_secret"

    def listen_addresses(self) -> list[tuple[str, ListenAddress, tuple[str, ...]]]:
        """Every (config key, address, transports) of the enabled services."""
        both, tcp = ("udp", "tcp"), ("tcp",)
        groups: list[tuple[bool, str, list[ListenAddress], tuple[str, ...]]] = [
            (self.turn.enabled, "turn.listen", self.turn.listen, both),
            (self.turn.enabled, "turn.tls_listen", self.turn.tls_listen, tcp),
            (self.sip.enabled, "sip.listen", self.sip.listen, both),
            (self.sip.enabled, "sip.tls_listen", self.sip.tls_listen, tcp),
            (self.xmpp.enabled, "xmpp.listen", self.xmpp.listen, tcp),
            (self.xmpp.enabled, "xmpp.tls_listen", self.xmpp.tls_listen, tcp),
            (self.xmpp.enabled, "xmpp.s2s_listen", self.xmpp.s2s_listen, tcp),
            (self.xmpp.enabled, "xmpp.s2s_tls_listen", self.xmpp.s2s_tls_listen, tcp),
            (self.web.enabled, "web.listen", self.web.listen, tcp),
            (self.web.enabled, "web.plain_listen", self.web.plain_listen, tcp),
            (True, "mux.listen", self.mux.listen, both if self.turn.enabled else tcp),
        ]
        return [
            (key, address, transports)
            for enabled, key, addresses, transports in groups
            if enabled
            for address in addresses
        ]

    @property
    def tls_names(self) -> list[str]:
        """Every name a client may check the certificate against."""
        names = [self.host_name, self.domain, self.sip_domain, self.turn_realm]
        if self.xmpp.enabled:
            names += [*self.xmpp_hosts, self.muc_domain]
        names += list(self.mux.sni)  # names a client asks the mux for by SNI
        return list(dict.fromkeys(names))


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def load_config(
    path: Path | None = None, data_dir: Path | None = None, *, system: bool = False
) -> Config:
    """Read and validate the configuration, raising :class:`ConfigError` with one line.

    ``data_dir`` (the ``--data-dir`` option) beats ``HERON_DATA_DIR``, which
    beats the file's ``data_dir``, which beats SYSTEM_DATA_DIR when ``system``.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                raw = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    override = data_dir or os.environ.get("HERON_DATA_DIR")
    if override:
        raw["data_dir"] = str(override)
    elif system:
        raw.setdefault("data_dir", str(SYSTEM_DATA_DIR))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{_describe(exc)}") from None
