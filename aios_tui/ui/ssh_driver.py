"""A Textual driver over an SSH channel instead of the process's terminal (``aios-tui serve``).

Textual's own :class:`~textual.drivers.linux_driver.LinuxDriver` owns the process's tty: raw mode through
termios, ``SIGWINCH`` for resizes, a thread reading stdin, another writing stderr. None of that exists for a
console served over SSH, and many consoles share one process and one event loop. Here the client's terminal
is the far end of the channel (its line discipline is the client's: the server has no tty to set raw), so:

- what the app writes is gathered and sent when it flushes (once a frame), or at the loop's next turn;
- what the client types comes in through :meth:`SessionTerminal.feed` and is parsed by Textual's own
  :class:`~textual._xterm_parser.XTermParser` in a task of the app's (so it carries the app's context);
- the size comes from the PTY request and each window-change request (:meth:`SessionTerminal.resize`);
- while the app is in application mode, what it sends is also handed to the terminal's
  :attr:`~SessionTerminal.mirrors` (read-only followers of the session); the sequences that open and close
  application mode are not (a follower's terminal is set up by whoever follows, and its input stays its own).

The escape sequences that open and close application mode are LinuxDriver's (alternate screen, mouse,
bracketed paste, focus events, the kitty keyboard protocol and the synchronized-output query).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.app import App
from textual.driver import Driver
from textual.geometry import Size
from textual.message import Message

__all__ = ["SSHDriver", "SessionTerminal", "driver_for"]

ESCAPE_TICK_S = 0.1
"""After input that may end in a lone ESC, the parser is asked again this long later (as LinuxDriver's
select timeout): a lone ESC is the escape key once no sequence follows."""

ESCAPE_TICKS = 5
"""How many times, at most, before the parser is left waiting for the next input."""
_KITTY_FLAGS = 0b1 | 0b1000 | 0b10000
"""Disambiguate escape codes, report all keys as escape codes, report associated text (as LinuxDriver)."""


class SessionTerminal:
    """The terminal at the far end of one SSH session: what the app writes goes to ``send``; what the
    client types arrives through :meth:`feed`; the size through :meth:`resize`."""

    def __init__(self, send: Callable[[bytes], None], size: tuple[int, int]) -> None:
        self.size = size
        self._send = send
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self.input: asyncio.Queue[str | None] = asyncio.Queue()
        self.driver: SSHDriver | None = None
        self.mirrors: list[Callable[[bytes], None]] = []
        """Also shown what the app draws, while :attr:`mirroring` (followers' terminals: read-only)."""
        self.mirroring = False
        """The app is in application mode: its frames are mirrored (set by the driver)."""

    def feed(self, data: bytes) -> None:
        """Bytes the client typed (UTF-8; a sequence split across two packets is joined)."""
        text = self._decode(data)
        if text:
            self.input.put_nowait(text)

    def end_input(self) -> None:
        """The client sent EOF or left: nothing more will be typed."""
        self.input.put_nowait(None)

    def resize(self, width: int, height: int) -> None:
        self.size = (max(1, width), max(1, height))
        if self.driver is not None:
            self.driver.resize(*self.size)

    def send(self, data: bytes) -> None:
        self._send(data)
        if self.mirroring:
            for mirror in list(self.mirrors):
                mirror(data)

    def repaint(self) -> None:
        """Have the app draw its whole screen again (a follower joined: it has seen nothing yet)."""
        driver = self.driver
        if driver is not None:
            app = driver._app
            app.call_later(app.refresh, repaint=True, layout=True)


class SSHDriver(Driver):
    """Display and input of one app over one :class:`SessionTerminal` (see :func:`driver_for`)."""

    terminal: ClassVar[SessionTerminal]

    def __init__(
        self,
        app: App[Any],
        *,
        debug: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size or self.terminal.size)
        self._out: list[str] = []
        self._flush_soon: asyncio.Handle | None = None
        self._reader: asyncio.Task[None] | None = None

    # --- output ---------------------------------------------------------------------------------------

    def write(self, data: str) -> None:
        self._out.append(data)
        if self._flush_soon is None:
            self._flush_soon = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if self._out:
            data, self._out = "".join(self._out), []
            self.terminal.send(data.encode("utf-8", errors="replace"))

    # --- application mode -----------------------------------------------------------------------------

    def start_application_mode(self) -> None:
        self.terminal.driver = self
        self.resize(*self.terminal.size)
        write = self.write
        write("\x1b[?1049h")  # the alternate screen
        self._mouse_reporting(on=True)
        write("\x1b[?25l")  # hide the cursor
        write("\x1b[?1004h")  # focus in / out
        if not constants.DISABLE_KITTY_KEY:
            write(f"\x1b[>{_KITTY_FLAGS}u")
        write("\x1b[?2026$p")  # does the terminal synchronize output? (the app listens for the answer)
        write("\x1b[?2004h")  # bracketed paste
        write("\x1b[?7l")  # no line wrap
        self.flush()
        self.terminal.mirroring = True
        # Created here, the task runs in the app's context (Textual's active_app is a context variable).
        self._reader = asyncio.create_task(self._read_input(), name="ssh-input")

    def disable_input(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None

    def stop_application_mode(self) -> None:
        self.disable_input()
        self.flush()  # the last frame is still mirrored; leaving application mode is this terminal's alone
        self.terminal.mirroring = False
        write = self.write
        write("\x1b[?2004l")
        write("\x1b[?7h")
        self._mouse_reporting(on=False)
        if not constants.DISABLE_KITTY_KEY:
            write("\x1b[<u")  # before leaving the alternate screen
        write("\x1b[?1049l")
        write("\x1b[?25h")
        write("\x1b[?1004l")
        self.flush()

    def close(self) -> None:
        self.flush()
        self.terminal.mirroring = False
        self.terminal.driver = None

    def _mouse_reporting(self, *, on: bool) -> None:
        if self._mouse:
            switch = "h" if on else "l"
            for mode in (1000, 1003, 1015, 1006):
                self.write(f"\x1b[?{mode}{switch}")

    # --- input ----------------------------------------------------------------------------------------

    def resize(self, width: int, height: int) -> None:
        self._size = (width, height)
        size = Size(width, height)
        self._app.post_message(events.Resize(size, size))

    def send_message(self, message: Message) -> None:
        # On the event loop's thread already: no need for run_coroutine_threadsafe.
        self._app.post_message(message)

    async def _read_input(self) -> None:
        parser = XTermParser(debug=False)
        queue = self.terminal.input
        pending = 0  # ticks left: the last input may have ended in an escape sequence not yet complete
        while True:
            if pending:
                try:
                    text = await asyncio.wait_for(queue.get(), ESCAPE_TICK_S)
                except TimeoutError:
                    ticked = list(parser.tick())
                    for event in ticked:
                        self.process_message(event)
                    pending = 0 if ticked else pending - 1
                    continue
            else:
                text = await queue.get()
            if text is None:
                with contextlib.suppress(Exception):
                    for event in parser.feed(""):
                        self.process_message(event)
                return
            for event in parser.feed(text):
                self.process_message(event)
            pending = ESCAPE_TICKS if "\x1b" in text else 0


def driver_for(terminal: SessionTerminal) -> type[SSHDriver]:
    """The driver class for one session's app (Textual makes the driver itself, from ``driver_class``)."""
    return type("SessionDriver", (SSHDriver,), {"terminal": terminal})
