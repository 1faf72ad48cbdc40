"""``heron dns``, ``heron cert`` and ``heron check``: the administrator's set-up day."""

from __future__ import annotations

import os
import pwd
import socket
from datetime import UTC, datetime, timedelta

import click

from heron.backup import running
from heron.cli.context import CliContext, pass_context, run
from heron.cli.published import dns_findings, turn_findings
from heron.cli.tls import acme_warnings
from heron.config import Config, ListenAddress
from heron.destinations import own_addresses
from heron.dns.resolver import Resolver, random_pick
from heron.errors import HeronError, TlsError
from heron.permissions import loose_permissions
from heron.store import Database
from heron.tls import inspect_certificate, server_context, write_self_signed
from heron.xmpp.s2s.locate import locate_server
from heron.zone import zone_records

__all__ = ["cert", "check", "dns"]

EXIT_PROBLEMS = 1
"""``heron check`` found something wrong (2 stays a configuration that does not load)."""
_EXPIRY_WARNING = timedelta(days=30)
_EXPIRY_FAILURE = timedelta(days=14)
"""Less than this is a failure: a renewal that failed once (Let's Encrypt renews at 30)."""
_SELF_SIGNED = "`heron cert --force` makes a self-signed one"
_LOCALHOST = {"localhost": ("127.0.0.1", "::1")}


@click.command()
@pass_context
def dns(ctx: CliContext) -> None:
    """Print the A/AAAA, SRV and NAPTR records to paste into the zone file."""
    for line in zone_records(ctx.config):
        click.echo(line)


@click.command()
@click.option("--days", default=825, show_default=True, help="Validity in days.")
@click.option("--force", is_flag=True, help="Overwrite an existing certificate and key.")
@click.option("--if-missing", is_flag=True, help="Do nothing if the certificate exists.")
@pass_context
def cert(ctx: CliContext, days: int, force: bool, if_missing: bool) -> None:
    """Make a self-signed certificate for every configured name."""
    config = ctx.config
    cert_path, key_path = config.certificate_path, config.key_path
    if cert_path.exists() or key_path.exists():
        if if_missing:
            click.echo(f"{cert_path} exists; left alone")
            return
        if not force:
            raise TlsError(f"{cert_path} or {key_path} exists; --force replaces them")
    info = write_self_signed(cert_path, key_path, config.tls_names, days=days)
    click.echo(f"wrote {cert_path} and {key_path} for {', '.join(info.names)}")


def _port_problem(address: ListenAddress, transport: str) -> str | None:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=kind)
        with socket.socket(infos[0][0], kind) as probe:
            if transport == "tcp":
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    return None


def _certificate_findings(config: Config) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    renew = "`heron tls renew`" if config.tls.acme else _SELF_SIGNED
    if config.tls.acme and not config.certificate_path.exists():
        return [], ["tls.acme: no certificate yet; `heron serve` starts on a self-signed one"]
    try:
        server_context(config.certificate_path, config.key_path)
        info = inspect_certificate(config.certificate_path)
    except TlsError as exc:
        return [f"{exc}; fix: install the certificate and key, or `heron cert`"], warnings
    missing = [name for name in config.tls_names if not info.covers(name)]
    if missing:
        problems.append(
            f"tls.certificate: does not cover {', '.join(missing)}; fix: a certificate "
            f"naming every service name ({renew})"
        )
    left = info.not_after - datetime.now(UTC)
    if left <= timedelta(0):
        problems.append(
            f"tls.certificate: expired on {info.not_after:%Y-%m-%d}; fix: renew it ({renew})"
        )
    elif left < _EXPIRY_FAILURE:
        problems.append(
            f"tls.certificate: expires on {info.not_after:%Y-%m-%d}, in {left.days} days; "
            f"fix: renew it now ({renew})"
        )
    elif left < _EXPIRY_WARNING:
        warnings.append(f"tls.certificate: expires on {info.not_after:%Y-%m-%d}; renew it soon")
    return problems, warnings


def _overlap(first: ListenAddress, second: ListenAddress) -> bool:
    """Whether two listeners on one port would take the same connections: one address, or
    a wildcard and an address of its family (heron binds IPv6 sockets IPv6-only)."""
    if first.port != second.port:
        return False
    for one in _LOCALHOST.get(first.host, (first.host,)):
        for other in _LOCALHOST.get(second.host, (second.host,)):
            same_family = (":" in one) == (":" in other)
            if one == other or same_family and {one, other} & {"0.0.0.0", "::"}:
                return True
    return False


def _clashes(config: Config) -> list[str]:
    """Two of heron's own listeners on one address and port: each probe alone finds the
    port free, but ``serve`` fails, as when web.listen stays on 443 beside ``[mux] listen``
    (the mux serves the web there already) or the handbook's way gives two services one
    address."""
    listeners = [
        (key, address, transport)
        for key, address, transports in config.listen_addresses()
        for transport in transports
    ]
    problems = []
    for index, (key, address, transport) in enumerate(listeners):
        for other_key, other, other_transport in listeners[index + 1 :]:
            if transport == other_transport and key != other_key and _overlap(address, other):
                problems.append(
                    f"{key}: {transport} {address} is also {other_key} {other}; "
                    "fix: change one of them"
                )
    return problems


async def _database_problem(config: Config) -> str | None:
    try:
        database = Database(config.database_url)
        await database.ping()
    except HeronError as exc:
        return str(exc)
    return None


async def _federation_findings(config: Config, resolver: Resolver) -> tuple[list[str], list[str]]:
    """Whether other servers find this one: each federated domain's SRV records (or, without
    them, its A/AAAA records on 5269) lead to this host's addresses and its s2s ports, as
    ``prosodyctl check dns`` asks. Warnings, not failures: DNS may not be published yet."""
    xmpp = config.xmpp
    ports = {(a.port, False) for a in xmpp.s2s_listen} | {
        (a.port, True) for a in xmpp.s2s_tls_listen
    }
    if not config.xmpp.enabled or not ports:
        return [], []
    # The mux hands direct TLS with ALPN xmpp-server to federation (XEP-0368).
    ports |= {(a.port, True) for a in config.mux.listen}
    own = set(await own_addresses(config.host_name, [str(a) for a in config.public_addresses]))
    found: list[str] = []
    warnings: list[str] = []
    for domain in [*config.xmpp_hosts, config.muc_domain]:
        located = await resolver.run(locate_server(domain, random_pick))
        here = [t for t in located.targets if t.address in own and (t.port, t.direct_tls) in ports]
        if here:
            found.append(f"{domain}: other servers reach {here[0].address}:{here[0].port}")
        elif located.failed:
            warnings.append(f"{domain}: the s2s DNS lookup failed (see `heron dns`)")
        else:
            shown = ", ".join(f"{t.address}:{t.port}" for t in located.targets) or "nothing"
            warnings.append(
                f"{domain}: DNS sends other servers to {shown}, not to this host's s2s "
                "listeners (`heron dns` prints the records)"
            )
    return found, warnings


async def _outside_findings(config: Config) -> tuple[list[str], list[str], list[str]]:
    """(ok, warnings, problems) of what clients and other servers see: the published
    records (when ``public_addresses`` says what to publish), TURN's addresses and
    federation."""
    resolver = Resolver(config.dns.servers)
    right: list[str] = []
    wrong: list[str] = []
    if config.public_addresses:
        right, wrong = await dns_findings(config, resolver)
    problems = [*wrong, *await turn_findings(config, resolver)]
    reachable, unreachable = await _federation_findings(config, resolver)
    if not config.public_addresses and config.host_name != "localhost":
        unreachable.append(
            "dns: no public_addresses in the config, so the published records are not "
            "checked (`heron dns` prints them)"
        )
    return [*right, *reachable], unreachable, problems


def _data_dir_findings(config: Config) -> list[str]:
    """The data directory heron must write, private to its owner."""
    directory = config.data_dir
    problems = loose_permissions(config)
    if directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        user = pwd.getpwuid(os.geteuid()).pw_name
        problems.append(
            f"{directory} is not writable by {user}, who runs heron; "
            f"fix: chown -R {user} {directory}"
        )
    return problems


@click.command()
@pass_context
def check(ctx: CliContext) -> None:
    """Validate the config, the certificate, the database, the data directory's
    permissions, that the ports are free (or this data directory's heron serves them), that
    DNS publishes the records `heron dns` prints and leads other XMPP servers here, and
    that TURN's relay addresses can work. One line per finding, with its fix; exit status
    1 when something is wrong."""
    config = ctx.config
    click.echo("ok    configuration")
    problems, warnings = _certificate_findings(config)
    if not problems:
        click.echo(f"ok    certificate {config.certificate_path}")
    database_problem = run(_database_problem(config))
    if database_problem:
        problems.append(database_problem)
    else:
        click.echo(f"ok    database {Database(config.database_url).display_url}")
    problems += _data_dir_findings(config)
    problems += _clashes(config)
    serving = run(running(config))
    for key, address, transports in config.listen_addresses():
        for transport in transports:
            problem = _port_problem(address, transport)
            if problem and serving:
                click.echo(f"ok    {key} {transport} {address}: heron serves it")
            elif problem:
                problems.append(
                    f"{key}: {transport} {address}: {problem}; fix: stop what holds it "
                    f"(`ss -lnp 'sport = :{address.port}'`) or change {key}"
                )
            else:
                click.echo(f"ok    {key} {transport} {address} is free")
    warnings += acme_warnings(config, serving)
    right, unreachable, wrong = run(_outside_findings(config))
    problems += wrong
    for line in right:
        click.echo(f"ok    {line}")
    for warning in [*warnings, *unreachable]:
        click.echo(f"warn  {warning}")
    for problem in problems:
        click.echo(f"FAIL  {problem}")
    if problems:
        click.echo(f"heron: {len(problems)} problem(s); first: {problems[0]}", err=True)
        raise SystemExit(EXIT_PROBLEMS)
