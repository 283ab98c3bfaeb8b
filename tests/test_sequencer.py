"""The per-socket Sequencer (expertconnect/realtime/sequencer.py), pure: no server, no database.
A list of events stands in for the log; the tests play the socket, doing the reads it asks for
and delivering live events in every order the hub and the relay can produce."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest

from expertconnect.realtime.events import MESSAGE_RECEIVE, NOTIFICATION_RECEIVE, Event
from expertconnect.realtime.sequencer import PUSHED, REPLAYED, RESYNC, Read, Sequencer

USER = 7
RESYNC_FRAME = {"type": "resync_required"}


def event(seq: int, event_type: str = MESSAGE_RECEIVE) -> Event:
    return Event(USER, event_type, {"type": event_type, "n": seq}, None, seq)


def frame(seq: int, event_type: str = MESSAGE_RECEIVE) -> dict:
    return event(seq, event_type).frame()


def messages_only(e: Event) -> bool:
    return e.event_type == MESSAGE_RECEIVE


def everything(e: Event) -> bool:
    return True


class Log:
    """The user's event log: committed events, a head and a purge mark, read as the query
    list_events_after reads it."""

    def __init__(self, events: list[Event], purged_through: int = 0):
        self.events = events
        self.purged_through = purged_through

    @property
    def head(self) -> int:
        return max((e.seq or 0 for e in self.events), default=0)

    def answer(self, sequencer: Sequencer, read: Read) -> list[dict]:
        page = [
            e
            for e in self.events
            if (e.seq or 0) > read.after
            and (e.seq or 0) > self.purged_through
            and sequencer.wants(e)
        ][: read.limit]
        return sequencer.on_page(self.head, self.purged_through, page)

    def catch_up(self, sequencer: Sequencer) -> list[dict]:
        """What the socket's _catch_up does: every read asked for, until live."""
        frames = []
        while (read := sequencer.next_read()) is not None:
            frames += self.answer(sequencer, read)
        return frames


# ---------------------------------------------------------------------- opening a socket
def test_a_fresh_socket_reads_only_the_head_and_then_sends_what_follows():
    log = Log([event(1), event(2)])
    seq = Sequencer(None, everything)
    assert seq.next_read() == Read(0, 0)
    assert log.answer(seq, Read(0, 0)) == []
    assert seq.last_seq == 2 and not seq.catching_up
    assert seq.on_live(event(3)) == [frame(3)]


def test_a_resumed_socket_replays_what_it_missed_then_goes_live():
    log = Log([event(1), event(2), event(3)])
    seq = Sequencer(1, everything)
    assert seq.next_read() == Read(1, 500)
    assert log.answer(seq, Read(1, 500)) == [frame(2), frame(3)]
    assert seq.on_live(event(4)) == [frame(4)]


def test_replay_from_the_head_sends_nothing():
    seq = Sequencer(3, everything)
    assert Log([event(1), event(2), event(3)]).catch_up(seq) == []
    assert seq.last_seq == 3


def test_replay_reads_page_after_page():
    log = Log([event(n) for n in range(1, 8)])
    seq = Sequencer(0, everything, page_size=3)
    reads, frames = [], []
    while (read := seq.next_read()) is not None:
        reads.append(read)
        frames += log.answer(seq, read)
    assert reads == [Read(0, 3), Read(3, 3), Read(6, 3)]
    assert frames == [frame(n) for n in range(1, 8)]


def test_a_last_page_exactly_full_costs_one_empty_read():
    log = Log([event(n) for n in range(1, 5)])
    seq = Sequencer(0, everything, page_size=2)
    assert log.catch_up(seq) == [frame(n) for n in range(1, 5)]
    assert seq.last_seq == 4 and not seq.catching_up


def test_events_the_socket_does_not_carry_still_move_it_along():
    log = Log([event(1), event(2, NOTIFICATION_RECEIVE), event(3)])
    seq = Sequencer(0, messages_only)
    assert log.catch_up(seq) == [frame(1), frame(3)]
    assert seq.on_live(event(4, NOTIFICATION_RECEIVE)) == []
    assert seq.on_live(event(5)) == [frame(5)]  # 4 was not a gap
    assert not seq.read_needed


# ---------------------------------------------------------------------- resync_required
@pytest.mark.parametrize("resume_from", [0, 2])
def test_replay_from_before_the_purge_mark_asks_for_a_resync(resume_from):
    log = Log([event(n) for n in range(1, 6)], purged_through=3)
    seq = Sequencer(resume_from, everything)
    assert log.catch_up(seq) == [RESYNC_FRAME]
    assert seq.last_seq == 5
    assert seq.on_live(event(6)) == [frame(6)]


def test_replay_from_exactly_the_purge_mark_is_complete():
    log = Log([event(n) for n in range(1, 6)], purged_through=3)
    assert log.catch_up(Sequencer(3, everything)) == [frame(4), frame(5)]


def test_an_event_id_beyond_the_head_asks_for_a_resync():
    log = Log([event(1), event(2)])
    seq = Sequencer(9, everything)
    assert log.catch_up(seq) == [RESYNC_FRAME]
    assert seq.on_live(event(3)) == [frame(3)]


def test_a_gap_the_purge_has_swallowed_asks_for_a_resync():
    log = Log([event(1)])
    seq = Sequencer(None, everything)
    log.catch_up(seq)
    log.events += [event(2), event(3)]
    assert seq.on_live(event(3)) == []
    log.purged_through = 2  # retention ran before the catch-up read
    # The client reloads after a resync, so what it holds is the state at the head (3).
    assert log.catch_up(seq) == [RESYNC_FRAME]
    assert seq.on_live(event(4)) == [frame(4)]


def test_resync_is_only_judged_on_the_first_page_of_a_catch_up():
    log = Log([event(n) for n in range(1, 6)])
    seq = Sequencer(0, everything, page_size=2)
    first = seq.next_read()
    assert log.answer(seq, first) == [frame(1), frame(2)]
    log.purged_through = 2  # purged meanwhile, but only what was already sent
    assert log.catch_up(seq) == [frame(3), frame(4), frame(5)]


# ---------------------------------------------------------------------- counting frames
def test_each_frame_is_counted_as_replayed_pushed_or_resync():
    """What the socket's metrics hear: a frame read from the log is replayed, a live one
    (sent at once, or held during a read and released after it) is pushed."""
    kinds: list[str] = []
    log = Log([event(1), event(2, NOTIFICATION_RECEIVE), event(3)])
    seq = Sequencer(0, messages_only, count=kinds.append)
    read = seq.next_read()
    seq.on_live(event(4))  # held while the read is under way
    assert log.answer(seq, read) == [frame(1), frame(3), frame(4)]
    assert seq.on_live(event(5, NOTIFICATION_RECEIVE)) == []  # not carried: not counted
    assert seq.on_live(event(6)) == [frame(6)]
    assert kinds == [REPLAYED, REPLAYED, PUSHED, PUSHED]


def test_a_resync_is_counted_once_and_replays_nothing():
    kinds: list[str] = []
    seq = Sequencer(1, everything, count=kinds.append)
    assert Log([event(n) for n in range(1, 4)], purged_through=2).catch_up(seq) == [RESYNC_FRAME]
    assert kinds == [RESYNC]


# ---------------------------------------------------------------------- live during replay
def test_live_events_during_the_read_are_held_and_the_replayed_ones_dropped():
    log = Log([event(1), event(2)])
    seq = Sequencer(0, everything)
    read = seq.next_read()
    log.events.append(event(3))  # committed after the read's snapshot...
    assert seq.on_live(event(2)) == []  # ...and published while the read is on the wire
    assert seq.on_live(event(3)) == []
    assert seq.next_read() is None  # one read at a time
    page = [e for e in log.events if (e.seq or 0) > read.after and (e.seq or 0) <= 2]
    assert seq.on_page(2, 0, page) == [frame(1), frame(2), frame(3)]
    assert seq.on_live(event(4)) == [frame(4)]


def test_held_events_are_released_in_seq_order():
    log = Log([event(1)])
    seq = Sequencer(None, everything)
    read = seq.next_read()
    for n in (4, 2, 3):
        assert seq.on_live(event(n)) == []
    assert log.answer(seq, read) == [frame(2), frame(3), frame(4)]


def test_a_gap_among_the_held_events_starts_another_read():
    log = Log([event(1)])
    seq = Sequencer(None, everything)
    read = seq.next_read()
    seq.on_live(event(2))
    seq.on_live(event(4))  # 3 is still being published elsewhere
    seq.on_live(event(5))
    assert log.answer(seq, read) == [frame(2)]
    assert seq.read_needed and seq.last_seq == 2
    log.events += [event(2), event(3), event(4), event(5)]
    assert log.catch_up(seq) == [frame(3), frame(4), frame(5)]
    assert seq.on_live(event(3)) == []  # arriving at last, after the log had it


# ---------------------------------------------------------------------- live, then a gap
def test_a_live_duplicate_is_sent_once():
    seq = Sequencer(None, everything)
    Log([]).catch_up(seq)
    assert seq.on_live(event(1)) == [frame(1)]
    assert seq.on_live(event(1)) == []


def test_a_gap_in_live_events_is_filled_from_the_log():
    log = Log([event(1), event(2), event(3)])
    seq = Sequencer(None, everything)
    log.catch_up(seq)
    log.events += [event(4), event(5)]
    assert seq.on_live(event(5)) == []
    assert seq.read_needed
    assert seq.next_read() == Read(3, 500)
    # The read is under way: more live events are held.
    assert seq.on_live(event(4)) == []
    assert log.answer(seq, Read(3, 500)) == [frame(4), frame(5)]
    assert seq.on_live(event(6)) == [frame(6)]


def test_on_page_without_a_read_is_a_bug():
    seq = Sequencer(None, everything)
    Log([]).catch_up(seq)
    with pytest.raises(RuntimeError):
        seq.on_page(0, 0, [])


# ---------------------------------------------------------------------- every interleaving
@dataclass
class World:
    """A user's log being written while one socket opens: `committed` events are in the log,
    `undelivered` will still reach the socket live, `read` is the read the socket has asked
    for and not yet had answered."""

    log_all: list[Event]
    committed: int
    undelivered: set[int]
    sequencer: Sequencer
    read: Read | None = None
    frames: list[dict] = field(default_factory=list)
    first_head: int | None = None

    def branch(self) -> World:
        """A copy to try one move on (deepcopy would be ten times slower)."""
        world = copy.copy(self)
        world.undelivered = set(self.undelivered)
        world.frames = list(self.frames)
        world.sequencer = copy.copy(self.sequencer)
        world.sequencer._held = list(self.sequencer._held)
        return world

    def issue_read(self) -> None:
        # The socket asks for a due read at once (no await between the two).
        if self.read is None:
            self.read = self.sequencer.next_read()

    def moves(self) -> list[tuple]:
        moves: list[tuple] = []
        if self.committed < len(self.log_all):
            moves.append(("commit",))
        # The hub and the relay may deliver committed events in any order.
        moves += [("deliver", s) for s in sorted(self.undelivered) if s <= self.committed]
        if self.read is not None:
            moves.append(("answer",))
        return moves

    def apply(self, move: tuple) -> None:
        if move[0] == "commit":
            self.committed += 1
        elif move[0] == "deliver":
            self.undelivered.discard(move[1])
            self.frames += self.sequencer.on_live(self.log_all[move[1] - 1])
        else:
            log = Log(self.log_all[: self.committed])
            if self.first_head is None:
                self.first_head = log.head
            read, self.read = self.read, None
            assert read is not None
            self.frames += log.answer(self.sequencer, read)
        self.issue_read()


# 4 commits + 4 deliveries + a few reads: a schedule this long means reads without end.
MAX_MOVES = 30


def finished_worlds(world: World, depth: int = 0) -> list[World]:
    moves = world.moves()
    if not moves:
        return [world]
    assert depth < MAX_MOVES, "the sequencer keeps asking for reads"
    finished = []
    for move in moves:
        branch = world.branch()
        branch.apply(move)
        finished += finished_worlds(branch, depth + 1)
    return finished


EVENTS = 4
# The second event is a notification: a message-only socket must skip it without a gap.
LOG = [event(s, NOTIFICATION_RECEIVE if s == 2 else MESSAGE_RECEIVE) for s in range(1, 5)]


@pytest.mark.parametrize(
    ("initially_committed", "published_before"),
    [(0, False), (2, False), (2, True), (4, True)],
    ids=["none-committed", "2-committed-in-flight", "2-committed-published", "all-published"],
)
@pytest.mark.parametrize("resume_from", [None, 0, 3, 9])
@pytest.mark.parametrize("wants", [everything, messages_only], ids=["all", "messages"])
def test_every_interleaving_sends_each_event_once_in_order(
    initially_committed, published_before, resume_from, wants
):
    """Events 1..4; some committed before the socket registers with the hub (and maybe
    already published, so never delivered to it), the rest committed while it replays. Over
    every order of commits, live deliveries and read answers, with pages of 2: the socket
    ends live, having sent exactly the events after its starting point, in order, once."""
    already_published = set(range(1, initially_committed + 1)) if published_before else set()
    start = World(
        LOG,
        initially_committed,
        set(range(1, EVENTS + 1)) - already_published,
        Sequencer(resume_from, wants, page_size=2),
    )
    start.issue_read()
    worlds = finished_worlds(start)
    for world in worlds:
        assert not world.sequencer.catching_up
        head = world.first_head
        assert head is not None
        if resume_from is None:
            expected, after = [], head
        elif resume_from > head:
            expected, after = [RESYNC_FRAME], head
        else:
            expected, after = [], resume_from
        expected += [e.frame() for e in LOG if (e.seq or 0) > after and wants(e)]
        assert world.frames == expected
