"""The order of one socket's frames, pure (no I/O): replay from `last_event_id`, then live
events, with no gap and no duplicate, and resync_required when the log cannot fill a gap.

The socket tells it about live events (on_live, in whatever order the hub delivers them) and
about pages read from the event log (on_page); it answers with the frames to send, in order,
and with the read the socket must do next (next_read). Every event of the user carries the
next number of the user's sequence, so "sent everything up to last_seq" is the whole state.

    socket                       Sequencer
    open ------------------------> next_read() -> Read(after, limit)
    events_q.list_events_after --> on_page(...)  -> frames; next_read() again until None
    hub delivers an event -------> on_live(e)    -> frames (held while a read is under way);
                                                    a gap makes next_read() ask for the log
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from expertconnect.realtime.events import Event, resync_required_frame

# Replay reads the log in pages of this many events.
REPLAY_PAGE = 500

# The kinds of frame it answers, as it tells `count` (the socket's metrics): a live event, an
# event read from the log, a resync_required.
PUSHED, REPLAYED, RESYNC = "pushed", "replayed", "resync"


def _count_nothing(kind: str) -> None:
    pass


@dataclass(frozen=True)
class Read:
    """Read up to `limit` logged events with a seq above `after` (limit 0: only the head)."""

    after: int
    limit: int


class _State(enum.Enum):
    LIVE = "live"  # sending live events as they come
    READ_NEEDED = "read needed"  # a read of the log is due; live events are held
    READING = "reading"  # the socket is reading the log; live events are held


class Sequencer:
    def __init__(
        self,
        resume_from: int | None,
        wants: Callable[[Event], bool],
        page_size: int = REPLAY_PAGE,
        count: Callable[[str], None] = _count_nothing,
    ):
        """resume_from: the client's last_event_id, or None for a fresh connection (which
        starts at the user's current head and replays nothing). wants: whether this socket
        carries an event (type, and peer for a chat). count: called with PUSHED, REPLAYED or
        RESYNC for each frame answered."""
        self.wants = wants
        self.page_size = page_size
        self.count = count
        # Every event of the user up to last_seq has been sent or skipped.
        self.last_seq = 0
        self._state = _State.READ_NEEDED
        # The catch-up under way: from where (None: start at head), and whether the next page
        # is its first (the only one that can call for a resync).
        self._catch_up_from: int | None = resume_from
        self._after = resume_from or 0
        self._first_page = True
        # Live events that arrived while catching up, released when it is done.
        self._held: list[Event] = []

    @property
    def catching_up(self) -> bool:
        return self._state is not _State.LIVE

    @property
    def read_needed(self) -> bool:
        return self._state is _State.READ_NEEDED

    def next_read(self) -> Read | None:
        """The read to do now, or None if none is due (live, or a read is already under
        way). The socket answers it with on_page()."""
        if self._state is not _State.READ_NEEDED:
            return None
        self._state = _State.READING
        if self._first_page and self._catch_up_from is None:
            return Read(0, 0)
        return Read(self._after, self.page_size)

    def on_page(self, head: int, purged_through: int, events: list[Event]) -> list[dict]:
        """A page answering next_read(): the user's committed head, the seq through which the
        log was purged, and the events read (in seq order). Returns the frames to send."""
        if self._state is not _State.READING:
            raise RuntimeError("on_page without a read under way")
        first, self._first_page = self._first_page, False
        after = self._catch_up_from
        if first and after is None:
            self.last_seq = max(self.last_seq, head)
            return self._go_live()
        if first and after is not None and (after < purged_through or after > head):
            # The log no longer has (or never had) what follows `after`: the client must
            # reload, and gets what is new from here on.
            self.last_seq = max(self.last_seq, head)
            self.count(RESYNC)
            return [resync_required_frame(), *self._go_live()]
        frames = [e.frame() for e in events if self.wants(e)]
        for _ in frames:
            self.count(REPLAYED)
        if len(events) >= self.page_size and events[-1].seq is not None:
            self._after = events[-1].seq
            self._state = _State.READ_NEEDED
            return frames
        # The read saw every event up to head: the ones not sent were not this socket's.
        self.last_seq = max(self.last_seq, head)
        return frames + self._go_live()

    def on_live(self, event: Event) -> list[dict]:
        """A committed event of the user, as the hub delivers it (any order, possibly twice).
        Returns the frames to send now; may make a read of the log due (see read_needed)."""
        if self._state is not _State.LIVE:
            self._held.append(event)
            return []
        seq = event.seq
        if seq is None or seq <= self.last_seq:
            return []  # already sent (by a read of the log, or delivered twice)
        if seq != self.last_seq + 1:
            # An earlier event of this user committed but has not reached us yet (another
            # coroutine or process is still publishing it): read the log, which has it.
            self._held.append(event)
            self._start_catch_up()
            return []
        self.last_seq = seq
        if not self.wants(event):
            return []
        self.count(PUSHED)
        return [event.frame()]

    def _start_catch_up(self) -> None:
        self._state = _State.READ_NEEDED
        self._catch_up_from = self._after = self.last_seq
        self._first_page = True

    def _go_live(self) -> list[dict]:
        """End of a catch-up: send the held events that follow on, in seq order."""
        self._state = _State.LIVE
        held, self._held = sorted(self._held, key=_seq), []
        frames: list[dict] = []
        for index, event in enumerate(held):
            frames += self.on_live(event)
            if self._state is not _State.LIVE:
                # A gap again: the rest waits for the next catch-up (on_live held `event`).
                self._held += held[index + 1 :]
                break
        return frames


def _seq(event: Event) -> int:
    return event.seq or 0
