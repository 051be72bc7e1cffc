"""The socket watchdog of the SQL stores: an alarm past its deadline shuts its socket
down and says so; a disarmed one never touches its socket, however many threads arm and
disarm at once (disarming takes no lock: the alarm's token decides the race)."""

from __future__ import annotations

import socket
import threading
import time

from threadline.stores.sql._watchdog import Watchdog


def _peer_sees_eof(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False


def test_an_alarm_past_its_deadline_shuts_the_socket_down() -> None:
    dog = Watchdog()
    left, right = socket.socketpair()
    with left, right:
        alarm = dog.arm(left.fileno(), 0.05)
        deadline = time.monotonic() + 5
        while not _peer_sees_eof(right) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dog.disarm(alarm) is True
        assert _peer_sees_eof(right)


def test_a_disarmed_alarm_never_fires() -> None:
    dog = Watchdog()
    left, right = socket.socketpair()
    with left, right:
        alarm = dog.arm(left.fileno(), 0.05)
        assert dog.disarm(alarm) is False
        dog.arm(left.fileno(), 60)  # wakes the watchdog past the first deadline
        time.sleep(0.2)
        left.sendall(b"x")  # still open both ways
        assert right.recv(1) == b"x"
        assert not _peer_sees_eof(right)


def test_threads_arming_and_disarming_at_once_shut_nothing_down() -> None:
    dog = Watchdog()
    pairs = [socket.socketpair() for _ in range(8)]
    fired: list[bool] = []
    short = dog.arm(pairs[0][0].fileno(), 0.02)  # one real deadline among them

    def worker(sock: socket.socket) -> None:
        for _ in range(3000):
            fired.append(dog.disarm(dog.arm(sock.fileno(), 30)))

    threads = [threading.Thread(target=worker, args=(pair[0],)) for pair in pairs[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.1)
    assert dog.disarm(short) is True and _peer_sees_eof(pairs[0][1])
    assert fired == [False] * 21000
    assert all(not _peer_sees_eof(right) for _, right in pairs[1:])
    assert len(dog._heap) <= 600  # compacted on the way, not 21,000 entries
    for left, right in pairs:
        left.close()
        right.close()
