"""What the tests and the benchmarks hand the bot they run against the test servers: the
secrets the servers expect, the production clocks scaled down, loose flood limits, and a
free port for its HTTP endpoint."""

from __future__ import annotations

import os
import random
import socket

from bot.core.lifecycle import PollSchedule, StatusCadence
from bot.engine.engine import RetryPolicy, Timing
from bot.telegram.flood import FloodLimits

BOT_TOKEN = "123456789:AAH-test-token-for-the-fake-server"
PROVIDER_KEY = "kie-test-key-5f2b9c7e"

# The production clocks, scaled down so a test task takes a fraction of a second. Tasks
# time out after two minutes, not seconds: a test holds a task open upstream (`fakes.kie.HELD`)
# as long as it needs, however busy the machine (a test of time-outs sets its own).
FAST = Timing(
    poll=PollSchedule(
        first=0.05, fast=0.05, fast_until=5, medium=0.2, medium_until=10, slow=0.5, timeout=120
    ),
    status=StatusCadence(private=0.15, group=1.0),
    create_retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05),
    step_retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05),
    not_found_grace=1.0,
    status_reads=(1000, 1),
    account_checks=(0.05, 0.1),
    places=0.1,
)

# The test Telegram server enforces no flood limits unless a test asks it to; PTB's own
# defaults (30 a second, 20 a minute per group) and no per-chat pace keep tests quick.
LOOSE_FLOOD = FloodLimits(overall=(30, 1), group=(20, 60), private_chat=(1000, 1))


EPHEMERAL_START = 32768  # Linux's ip_local_port_range starts here by default
_BLOCK = 1500  # ports per pytest-xdist worker, below that range
_handed_out: set[int] = set()


def free_port() -> int:
    """A port for a bot's HTTP endpoint that nothing else takes before the bot binds it.

    Port 0's pick comes from the ephemeral range, where every outgoing connection of every
    test process also takes its local port: between the probe and the bot's bind, one
    sometimes did ("address already in use", a run in a few dozen). So the ports come from
    below that range, a block per pytest-xdist worker, and none is handed out twice."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 20_000 + (int(worker) % 8 if worker.isdigit() else 0) * _BLOCK
    for _ in range(4 * _BLOCK):
        port = random.randrange(low, low + _BLOCK)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port left in {low}-{low + _BLOCK - 1}")
