"""Failed sign-ins are slowed, per account name and per client address: after FREE failures each further
attempt waits twice as long as the one before (up to MAX_DELAY seconds), whether or not the account
exists (so the delay does not tell either). Kept in memory per server process; a success clears the
account's count."""

from __future__ import annotations

import threading
import time

FREE = 3
MAX_DELAY = 30.0
FORGET = 15 * 60  # seconds after the last failure


class Throttle:
    def __init__(self) -> None:
        self.failures: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()

    def delay(self, *keys: str) -> float:
        """Seconds to wait before answering an attempt under these keys."""
        now = time.monotonic()
        worst = 0
        with self.lock:
            for key in keys:
                count, last = self.failures.get(key, (0, now))
                if now - last > FORGET:
                    self.failures.pop(key, None)
                    continue
                worst = max(worst, count)
        return 0.0 if worst < FREE else min(MAX_DELAY, 0.25 * 2 ** (worst - FREE))

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self.lock:
            for key in keys:
                count, _ = self.failures.get(key, (0, now))
                self.failures[key] = (count + 1, now)
            if len(self.failures) > 100_000:  # bounded memory under a flood of made-up names
                for key in sorted(self.failures, key=lambda k: self.failures[k][1])[:50_000]:
                    del self.failures[key]

    def succeeded(self, key: str) -> None:
        with self.lock:
            self.failures.pop(key, None)
