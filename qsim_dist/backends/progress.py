"""The progress bar of a run."""

from __future__ import annotations


class Progress:
    """A tqdm bar on a terminal, shown only once a run has taken a couple of seconds."""

    def __init__(self, enabled: bool | None):
        self.enabled = enabled
        self.bar = None
        self.total = 0

    def __enter__(self):
        import sys

        show = self.enabled if self.enabled is not None else sys.stderr.isatty()
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=0, delay=2.0, unit="op", desc="simulating", leave=False,
                            file=sys.stderr)
        return self

    def add_total(self, n: int) -> None:
        if self.bar is not None:
            self.total += n
            self.bar.total = self.total
            self.bar.refresh()

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
