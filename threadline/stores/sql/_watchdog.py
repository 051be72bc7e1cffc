"""Bounding a blocking call on a socket: at the deadline, the socket is shut down.

psycopg waits for the server in its own loop, with no time limit, and libpq's socket
options do not help when the network (or a proxy) stalls: the kernel still acknowledges
every byte. Shutting the connection's socket down wakes the wait at once with "server
closed the connection"; the caller, seeing its alarm fired, reports a timeout and drops
the connection. The sync side shares ONE daemon thread (:data:`WATCHDOG`): arming is a
heap push under a lock, disarming takes no lock (see :class:`Alarm`; entries leave the
heap at their deadline, or when the heap is compacted), so a call pays about a
microsecond and threads contend on one lock, not two. The async side uses
``loop.call_later`` (:func:`arm_in_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import socket
import threading
import time

__all__ = ["WATCHDOG", "Alarm", "Watchdog", "arm_in_loop", "shut_down"]


def shut_down(fileno: int) -> None:
    """Shut the socket ``fileno`` down (both ways) without closing the descriptor, which
    stays its owner's to close."""
    with contextlib.suppress(OSError, ValueError):
        sock = socket.socket(fileno=fileno)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.detach()


class Alarm:
    """One armed deadline; ``fired`` tells whether the socket was shut down.

    ``token`` holds one item until the alarm is settled: whoever pops it (the caller
    disarming, or the watchdog firing) decides, without a lock, as ``list.pop`` is
    atomic."""

    __slots__ = ("deadline", "fileno", "fired", "token")

    def __init__(self, fileno: int, deadline: float) -> None:
        self.fileno = fileno
        self.deadline = deadline
        self.token = [True]
        self.fired = False


class Watchdog:
    """One thread shutting down the sockets of calls past their deadline."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """A fresh state (also in a forked child: the parent's thread is not there)."""
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._compact_at = 256
        self._thread: threading.Thread | None = None

    def arm(self, fileno: int, timeout: float) -> Alarm:
        alarm = Alarm(fileno, time.monotonic() + timeout)
        with self._cond:
            heap = self._heap
            if len(heap) > self._compact_at:  # drop the disarmed; amortised O(1) a call
                heap[:] = [entry for entry in heap if entry[2].token]
                heapq.heapify(heap)
                self._compact_at = max(256, 2 * len(heap))
            heapq.heappush(heap, (alarm.deadline, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                 name="threadline-watchdog")
                self._thread.start()
            elif heap[0][2] is alarm:
                self._cond.notify()  # an earlier deadline than the one it sleeps to
        return alarm

    def disarm(self, alarm: Alarm) -> bool:
        """Stop the alarm; ``True`` if it had fired (the socket is shut down). Takes no
        lock unless the watchdog won the token: then it waits for the shutdown to end,
        so the caller never reuses a connection whose socket is being shut down."""
        try:
            alarm.token.pop()
        except IndexError:
            with self._cond:  # the watchdog holds it while it shuts the socket down
                return alarm.fired
        return False

    def _watch(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                now = time.monotonic()
                while heap and (not heap[0][2].token or heap[0][0] <= now):
                    alarm = heapq.heappop(heap)[2]
                    try:
                        alarm.token.pop()
                    except IndexError:
                        continue  # disarmed in time
                    alarm.fired = True
                    shut_down(alarm.fileno)
                self._cond.wait(heap[0][0] - now if heap else None)


#: The process's watchdog (its thread starts with the first alarm).
WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG._reset)


class LoopAlarm:
    """:class:`Alarm` on an event loop's timer."""

    __slots__ = ("fired", "handle")

    def __init__(self) -> None:
        self.fired = False
        self.handle: asyncio.TimerHandle | None = None

    def fire(self, fileno: int) -> None:
        self.fired = True
        shut_down(fileno)

    def disarm(self) -> bool:
        if self.handle is not None:
            self.handle.cancel()
        return self.fired


def arm_in_loop(fileno: int, timeout: float) -> LoopAlarm:
    """Shut ``fileno`` down in ``timeout`` seconds unless disarmed first (call it from
    the running loop that does the I/O)."""
    alarm = LoopAlarm()
    alarm.handle = asyncio.get_running_loop().call_later(timeout, alarm.fire, fileno)
    return alarm
