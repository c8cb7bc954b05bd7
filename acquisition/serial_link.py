"""A line-oriented serial link: what the stage drivers read and write through.

It opens any pyserial URL or device path (``/dev/ttyUSB0``, ``COM3``, ``socket://host:port``,
``rfc2217://...``, a pseudo-terminal), reads whole lines with a deadline, and turns every pyserial
or OS failure into :class:`~acquisition.errors.StageDisconnected`.
"""
from __future__ import annotations

import time
from typing import Any

from acquisition.errors import StageDisconnected


def _port_errors() -> tuple[type[BaseException], ...]:
    """What a vanished port raises: pyserial's errors, OS errors, and termios errors (not OSErrors)."""
    import serial

    errors: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
    try:
        import termios

        errors += (termios.error,)
    except ImportError:  # Windows
        pass
    return errors


class SerialLink:
    """Lines in and bytes out over one serial port.

    Parameters
    ----------
    port
        A device path or pyserial URL, or an already open ``serial.Serial``-like object.
    baudrate
        Line speed (GRBL and Marlin boards usually use 115200; ignored by pseudo-terminals).
    """

    def __init__(self, port: Any, *, baudrate: int = 115200):
        self._given = port
        self.baudrate = int(baudrate)
        self.name = port if isinstance(port, str) else str(getattr(port, "port", None) or getattr(port, "name", port))
        self._serial: Any = None if isinstance(port, str) else port
        self._buffer = bytearray()

    @property
    def is_open(self) -> bool:
        return self._serial is not None and bool(getattr(self._serial, "is_open", True))

    def open(self) -> None:
        """Open the port (a device path or URL); an object given already open is kept."""
        if self._serial is not None:
            return
        try:
            import serial
        except ImportError:
            raise StageDisconnected(
                f"cannot open serial port {self.name}: pyserial is not installed "
                "(pip install 'sedarchive[acquisition]')"
            ) from None

        try:
            self._serial = serial.serial_for_url(self._given, baudrate=self.baudrate, timeout=0.02, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as err:
            raise StageDisconnected(f"cannot open serial port {self.name}: {err}") from None
        self._buffer.clear()

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # closing a port that already vanished: nothing left to do
                pass
            self._serial = None

    def write(self, data: bytes) -> None:
        """Send raw bytes (a line with its newline, or a real-time byte)."""
        if self._serial is None:
            raise StageDisconnected(f"serial port {self.name} is not open")
        try:
            self._serial.write(data)
            self._serial.flush()
        except _port_errors() as err:
            raise StageDisconnected(f"serial port {self.name} disconnected while writing: {err}") from None

    def read_line(self, timeout_s: float) -> str | None:
        """The next line without its line end, or ``None`` when none came within ``timeout_s``.

        Bytes already waiting in the port are read before the deadline is looked at, so
        ``read_line(0.0)`` returns a line that has arrived.
        """
        if self._serial is None:
            raise StageDisconnected(f"serial port {self.name} is not open")
        errors = _port_errors()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            line = self._pop_line()
            if line is not None:
                return line
            try:
                waiting = self._serial.in_waiting
                if waiting:
                    chunk = self._serial.read(waiting)
                elif time.monotonic() >= deadline:
                    return None
                else:
                    chunk = self._serial.read(1)  # blocks for at most the port's timeout (20 ms)
            except errors as err:
                raise StageDisconnected(f"serial port {self.name} disconnected: {err}") from None
            if chunk:
                self._buffer.extend(chunk)

    def drain(self, quiet_s: float = 0.05) -> list[str]:
        """Read lines until none arrives for ``quiet_s`` (stale output after a reset)."""
        lines = []
        while (line := self.read_line(quiet_s)) is not None:
            lines.append(line)
        return lines

    def _pop_line(self) -> str | None:
        for i, byte in enumerate(self._buffer):
            if byte in (0x0A, 0x0D):
                raw = bytes(self._buffer[:i])
                del self._buffer[: i + 1]
                text = raw.decode("ascii", errors="replace").strip()
                if text:
                    return text
                return self._pop_line()
        return None
