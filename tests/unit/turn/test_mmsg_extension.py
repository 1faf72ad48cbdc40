"""heron.turn._mmsg, the recvmmsg/sendmmsg extension, on real loopback sockets (v4 and v6).

`make test-deps` builds it (gcc, python3-dev); on CI its absence fails these tests, elsewhere
it skips them, as heron then relays by recvfrom/sendto.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.support.tools import missing

HOSTS = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


@pytest.fixture(scope="module")
def mmsg() -> ModuleType:
    try:
        from heron.turn import _mmsg
    except ImportError:
        missing("heron.turn._mmsg is not built: `make test-deps` compiles it (gcc, python3-dev)")
        raise AssertionError("unreachable") from None  # pragma: no cover
    return _mmsg


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two bound non-blocking UDP sockets of one family on loopback."""
    family = request.param
    sockets = []
    for _ in range(2):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((HOSTS[family], 0))
        sock.setblocking(False)
        sockets.append(sock)
    yield sockets[0], sockets[1]
    for sock in sockets:
        sock.close()


def _address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return host, port


def test_a_batch_sent_arrives_whole_in_order_with_its_sender(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    datagrams = [(n.to_bytes(2, "big") * (n + 1), _address(receiver)) for n in range(10)]

    sent = mmsg.send_batch(sender.fileno(), datagrams)
    got = mmsg.recv_batch(receiver.fileno(), 64, 65_536)

    assert sent == 10
    assert got == [(data, _address(sender)) for data, _ in datagrams]


def test_asking_for_more_than_is_queued_returns_what_is_there_then_nothing(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    for n in range(3):
        sender.sendto(bytes([n]), _address(receiver))

    assert [data for data, _ in mmsg.recv_batch(receiver.fileno(), 64, 2048)] == [
        b"\x00",
        b"\x01",
        b"\x02",
    ]
    assert mmsg.recv_batch(receiver.fileno(), 64, 2048) == []


def test_a_batch_smaller_than_the_queue_leaves_the_rest_for_the_next_call(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    for n in range(5):
        sender.sendto(bytes([n]), _address(receiver))

    first = mmsg.recv_batch(receiver.fileno(), 2, 2048)
    rest = mmsg.recv_batch(receiver.fileno(), 64, 2048)

    assert [d for d, _ in first] == [b"\x00", b"\x01"]
    assert [d for d, _ in rest] == [b"\x02", b"\x03", b"\x04"]


def test_a_datagram_longer_than_the_buffer_is_dropped_never_cut(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    for data in (b"short", b"x" * 100, b"after"):
        sender.sendto(data, _address(receiver))

    got = mmsg.recv_batch(receiver.fileno(), 64, 64)

    assert [data for data, _ in got] == [b"short", b"after"]


def test_unusable_addresses_are_skipped_and_left_out_of_the_count(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    target = _address(receiver)
    datagrams = [
        (b"one", target),
        (b"bad host", ("not-an-address", target[1])),
        (b"bad port", (target[0], 70_000)),
        (b"two", target),
    ]

    sent = mmsg.send_batch(sender.fileno(), datagrams)

    assert sent == 2
    assert [d for d, _ in mmsg.recv_batch(receiver.fileno(), 64, 2048)] == [b"one", b"two"]


def test_a_datagram_the_kernel_refuses_alone_is_skipped_and_the_rest_still_go(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    target = _address(receiver)
    # Over UDP's 65,507/65,527-byte limit: EMSGSIZE for that datagram, not for the batch.
    datagrams = [(b"before", target), (bytes(70_000), target), (b"after", target)]

    sent = mmsg.send_batch(sender.fileno(), datagrams)

    assert sent == 2
    assert [d for d, _ in mmsg.recv_batch(receiver.fileno(), 64, 2048)] == [b"before", b"after"]


def test_more_than_one_system_call_s_worth_is_sent_whole(
    mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    sender, receiver = pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    datagrams = [(n.to_bytes(2, "big"), _address(receiver)) for n in range(150)]

    sent = mmsg.send_batch(sender.fileno(), datagrams)
    got = []
    while batch := mmsg.recv_batch(receiver.fileno(), mmsg.MAX_BATCH, 2048):
        got.extend(batch)

    assert sent == 150
    assert [int.from_bytes(data, "big") for data, _ in got] == list(range(150))


def test_a_bad_descriptor_raises_oserror(mmsg: ModuleType) -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)  # a number that names nothing now

    with pytest.raises(OSError):
        mmsg.recv_batch(fd, 4, 2048)
    with pytest.raises(OSError):
        mmsg.send_batch(fd, [(b"x", ("127.0.0.1", 9))])


def test_a_descriptor_that_is_no_socket_raises_oserror(mmsg: ModuleType) -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            mmsg.recv_batch(fd, 4, 2048)
    finally:
        os.close(fd)


def test_malformed_batches_raise_typeerror_and_bad_sizes_valueerror(mmsg: ModuleType) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(TypeError):
            mmsg.send_batch(sock.fileno(), [("text", ("127.0.0.1", 9))])
        with pytest.raises(ValueError):
            mmsg.recv_batch(sock.fileno(), 0, 2048)
        with pytest.raises(ValueError):
            mmsg.recv_batch(sock.fileno(), 65, 2048)
