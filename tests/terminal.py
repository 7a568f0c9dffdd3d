"""Commands as a person sees them in a terminal of a given width (a pseudo-terminal)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from rich.cells import cell_len

CJK = re.compile(r"[\u3400-\u9fff]")


def on_a_terminal(*args: str, columns: int = 80) -> str:
    """What a person sees running the command in a terminal `columns` wide (a pseudo-terminal)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    # COLUMNS would win over the terminal's size: the terminal alone says how wide it is.
    environ = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    process = subprocess.Popen([sys.executable, "-m", "opsaudit", *args], stdout=follower, stderr=subprocess.PIPE,
                               env={**environ, "NO_COLOR": "1", "TERM": "dumb"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:   # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=300)
    os.close(leader)
    assert process.returncode == 0, process.stderr.read()
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def widest(shown: str) -> int:
    """The widest line's width in terminal cells (a Chinese character takes two)."""
    return max(cell_len(line.rstrip()) for line in shown.splitlines())


def error_line(message: str, language: str) -> str:
    """The one line opsaudit prints on stderr for an error: `opsaudit: 错误：…` / `opsaudit: error: …`."""
    return f"opsaudit: {'错误：' if language == 'zh-CN' else 'error: '}{message}"


def assert_chinese_line(line: str, *named: str) -> None:
    """One line, in Chinese, naming each of `named`; no Latin word but the names it quotes."""
    assert "\n" not in line and CJK.search(line), line
    rest = line
    for name in sorted(named, key=len, reverse=True):   # staff_id before staff
        assert name in line, (name, line)
        rest = rest.replace(name, "")
    assert not re.search(r"[A-Za-z]", rest), line
