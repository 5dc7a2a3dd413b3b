"""The output relay's per-unit log rings (issue 16 §3): bounds, order, cursors, since.

Real writer processes through real pipes; the ring itself is also driven directly for
its arithmetic (line and byte bounds, a read cut in the middle).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from cinit.io.output import LINE_MAX, PIECE, LogRing, OutputRelay
from tests.io.test_output import Destination, reap, start_writer, wait_idle

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sink() -> Iterator[Destination]:
    destination = Destination()
    yield destination
    destination.close()


@pytest.fixture
def relay(sink: Destination) -> Iterator[OutputRelay]:
    relay = OutputRelay(sink.fd, sink.fd)
    relay.start()
    yield relay
    relay.stop()


def texts(relay: OutputRelay, *units: str, **kwargs: object) -> list[str]:
    lines, _cursor = relay.read_logs(list(units) or None, **kwargs)  # type: ignore[arg-type]
    return [line.text.decode() for line in lines]


def shown(ring: LogRing) -> list[bytes]:
    entries = LogRing.visible(ring.snapshot())
    return [line for entry in entries for line in entry[4][:-1].split(b"\n")]


def test_the_ring_keeps_the_last_lines_within_its_line_bound() -> None:
    ring = LogRing(max_lines=5, max_bytes=1 << 20)
    ring.add(1, 1.0, 1, 4, b"a\nb\nc\nd\n")
    ring.add(5, 2.0, 2, 3, b"e\nf\ng\n")
    assert shown(ring) == [b"c", b"d", b"e", b"f", b"g"]
    assert LogRing.visible(ring.snapshot())[0][:4] == (3, 1.0, 1, 2)  # a read cut after 2
    ring.add(8, 3.0, 1, 5, b"h\ni\nj\nk\nl\n")  # the others alone reach the bound: dropped
    assert [entry[0] for entry in ring.entries] == [8]
    assert shown(ring) == [b"h", b"i", b"j", b"k", b"l"]
    assert ring.size == sum(len(entry[4]) for entry in ring.entries)


def test_the_ring_keeps_the_last_lines_within_its_byte_bound() -> None:
    ring = LogRing(max_lines=1000, max_bytes=10)
    ring.add(1, 1.0, 1, 3, b"1234\n5678\nab\n")
    assert shown(ring) == [b"5678", b"ab"]
    ring.add(4, 1.0, 1, 1, b"x" * 20 + b"\n")  # one line bigger than the bound: not shown
    assert shown(ring) == [] and len(ring.entries) == 1  # (held: at most one read)
    ring.add(5, 1.0, 1, 1, b"tail\n")
    assert shown(ring) == [b"tail"] and ring.size == 5 + 21  # the big read still held


def test_stdout_and_stderr_lines_are_kept_with_stream_and_time(relay: OutputRelay) -> None:
    before = time.time()
    code = "import os\nos.write(1, b'out one\\nout two\\n')\nos.write(2, b'err one\\n')\n"
    assert reap(start_writer(relay, "web.service", code, both=True)) == 0
    wait_idle(relay)
    lines, cursor = relay.read_logs(["web.service"])
    assert [(line.text, line.stream) for line in lines] == [
        (b"out one", 1),
        (b"out two", 1),
        (b"err one", 2),
    ]
    assert all(before <= line.time <= time.time() for line in lines)
    assert lines[-1].as_dict()["stream"] == "stderr" and cursor == lines[-1].number + 1
    assert relay.read_logs(["web.service"], after=cursor) == ([], cursor)


def test_a_unit_writing_5000_lines_keeps_the_last_1000(relay: OutputRelay) -> None:
    code = "import os\nfor i in range(5000):\n    os.write(1, b'line %d\\n' % i)\n"
    assert reap(start_writer(relay, "chatty.service", code)) == 0
    wait_idle(relay)
    kept = texts(relay, "chatty.service")
    assert kept == [f"line {i}" for i in range(4000, 5000)]
    assert texts(relay, "chatty.service", count=3) == ["line 4997", "line 4998", "line 4999"]


def test_the_byte_bound_holds_for_a_unit_writing_more_than_1_mib(relay: OutputRelay) -> None:
    small = OutputRelay(relay._dest[1], relay._dest[2], log_lines=100_000, log_bytes=1 << 20)
    small.start()
    try:
        code = (
            "import os\n"
            "for i in range(3000):\n"
            "    os.write(1, b'%05d ' % i + b'y' * 994 + b'\\n')\n"
        )
        assert reap(start_writer(small, "big.service", code)) == 0
        wait_idle(small)
        kept = texts(small, "big.service")
        assert sum(len(text) + 1 for text in kept) <= 1 << 20
        assert len(kept) == (1 << 20) // 1001  # whole lines: as many as fit
        assert kept[-1].startswith("02999 ")
        assert small._rings["big.service"].size <= (1 << 20) + 2 * PIECE  # one read over
    finally:
        small.stop()


def test_units_interleave_in_the_order_their_lines_were_read(relay: OutputRelay) -> None:
    for round_ in range(3):
        for unit in ("a.service", "b.service"):
            code = f"import os\nos.write(1, b'{unit} {round_}\\n')\n"
            assert reap(start_writer(relay, unit, code)) == 0
            wait_idle(relay)
    everything = texts(relay)
    assert everything == [f"{u} {r}" for r in range(3) for u in ("a.service", "b.service")]
    assert texts(relay, "b.service", count=2) == ["b.service 1", "b.service 2"]
    lines, _ = relay.read_logs(None, count=1)
    assert [line.unit for line in lines] == ["b.service"]


def test_a_cursor_pages_forward_and_since_filters_by_time(relay: OutputRelay) -> None:
    code = "import os\nfor i in range(10):\n    os.write(1, b'first %d\\n' % i)\n"
    assert reap(start_writer(relay, "p.service", code)) == 0
    wait_idle(relay)
    middle = time.time()
    time.sleep(0.05)
    code = "import os\nos.write(1, b'second\\n')\n"
    assert reap(start_writer(relay, "p.service", code)) == 0
    wait_idle(relay)
    assert texts(relay, since=middle) == ["second"]
    page, cursor = relay.read_logs(None, count=4, after=0)
    assert [line.text for line in page] == [b"first 0", b"first 1", b"first 2", b"first 3"]
    seen = [line.text for line in page]
    while page:
        page, cursor = relay.read_logs(None, count=4, after=cursor)
        seen += [line.text for line in page]
    assert seen == [b"first %d" % i for i in range(10)] + [b"second"]


def test_a_long_line_is_kept_cut_and_the_next_line_whole(relay: OutputRelay) -> None:
    code = (
        "import os\n"
        f"os.write(1, b'L' * {PIECE * 3} + b'\\nnext\\n')\n"
        f"os.write(1, b'M' * {LINE_MAX + 10} + b'\\n')\n"
    )
    assert reap(start_writer(relay, "long.service", code)) == 0
    wait_idle(relay)
    kept = texts(relay, "long.service")
    assert kept == ["L" * LINE_MAX, "next", "M" * LINE_MAX]


def test_zero_turns_the_rings_off(sink: Destination) -> None:
    relay = OutputRelay(sink.fd, sink.fd, log_lines=0)
    relay.start()
    try:
        assert reap(start_writer(relay, "x.service", "print('hello')")) == 0
        wait_idle(relay)
        assert relay.read_logs() == ([], 1)
        assert relay.tail("x.service") == []
        assert b"x.service: hello\n" in os.pread(sink.fd, 1 << 16, 0)
    finally:
        relay.stop()


def test_unprefixed_output_is_kept_and_numbered_alike(relay: OutputRelay) -> None:
    code = "import os\nos.write(1, b'one\\ntwo\\nthree\\n')\n"
    assert reap(start_writer(relay, "raw.service", code, prefix=False)) == 0
    assert reap(start_writer(relay, "tagged.service", code)) == 0
    wait_idle(relay)
    lines, cursor = relay.read_logs()
    assert [(line.unit, line.text) for line in lines] == [
        (unit, text)
        for unit in ("raw.service", "tagged.service")
        for text in (b"one", b"two", b"three")
    ]
    assert [line.number for line in lines] == list(range(1, 7)) and cursor == 7
