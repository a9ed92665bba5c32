"""What every stand-in shares: a `with` block serves it, and closes it whatever happens."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from typing_extensions import Self


class ServedStandIn:
    """`with StandIn(...) as s:` starts serving on entry and closes on exit."""

    def start(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
