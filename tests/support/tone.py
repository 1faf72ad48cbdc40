"""A known tone for the media tests: made with sox at test time, found again by Goertzel.

A call's audio proves it went through when the far end's recording holds the tone the near
end played. The detector asks, block by block, what share of a block's energy sits at the
tone's frequency (the Goertzel filter's power against the block's total): a sine through
G.711 or Opus keeps nearly all of it there, silence has no energy to speak of and noise or
another tone spreads it elsewhere, so neither codec noise nor a gain change fools it.
Recordings in any sample rate or channel count are first brought to 16-bit mono by sox.
"""

from __future__ import annotations

import math
import subprocess
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import require_tool

TONE_HZ = 1000
"""A whole number of cycles in every 10 ms block at 8, 16 and 48 kHz: no leakage at the edges."""
BLOCK_SECONDS = 0.1
SHARE = 0.6
"""A block holds the tone when at least this share of its energy is at the tone's frequency."""
QUIET = 1e-4
"""Blocks whose mean power (full scale 1.0) is below this are silence and count for nothing."""


def make_tone(path: Path, rate: int, seconds: float, frequency: int = TONE_HZ) -> Path:
    """A 16-bit mono sine WAV at ``rate`` Hz, half of full scale: 8 kHz for a G.711 desk
    phone's source, 48 kHz for Chromium's ``--use-file-for-fake-audio-capture``."""
    sox = require_tool("sox", "sox")
    made = subprocess.run(
        [sox, "-n", "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(path)]
        + ["synth", str(seconds), "sine", str(frequency), "vol", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return path


@dataclass(frozen=True)
class ToneReport:
    """How much of a recording held the tone, and how much was sound at all."""

    tone_seconds: float
    sound_seconds: float
    total_seconds: float


def _mono16(path: Path) -> Path:
    """``path`` as 16-bit signed mono (its own rate kept), converted by sox when it is not."""
    with wave.open(str(path), "rb") as recording:
        if recording.getnchannels() == 1 and recording.getsampwidth() == 2:
            return path
    sox = require_tool("sox", "sox")
    converted = path.with_name(path.stem + "-mono16.wav")
    done = subprocess.run(
        [sox, str(path), "-c", "1", "-b", "16", "-e", "signed-integer", str(converted)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return converted


def goertzel_share(samples: array[int], rate: int, frequency: float) -> tuple[float, float]:
    """(share of the block's energy at ``frequency``, the block's mean power), full scale 1.0."""
    count = len(samples)
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    previous = before = 0.0
    energy = 0.0
    for sample in samples:
        value = sample / 32768
        energy += value * value
        previous, before = value + coefficient * previous - before, previous
    if energy == 0:
        return 0.0, 0.0
    power = previous * previous + before * before - coefficient * previous * before
    # A sine of amplitude A over N samples gives power (A N / 2)^2 and energy A^2 N / 2.
    return min(1.0, 2 * power / (count * energy)), energy / count


def tone_report(path: Path, frequency: float = TONE_HZ) -> ToneReport:
    """Seconds of ``path`` holding the tone and seconds holding any sound."""
    with wave.open(str(_mono16(path)), "rb") as recording:
        rate = recording.getframerate()
        data = array("h", recording.readframes(recording.getnframes()))
    block = max(1, int(rate * BLOCK_SECONDS))
    tone = sound = 0
    for start in range(0, len(data) - block + 1, block):
        share, level = goertzel_share(data[start : start + block], rate, frequency)
        if level < QUIET:
            continue
        sound += 1
        tone += share >= SHARE
    return ToneReport(tone * BLOCK_SECONDS, sound * BLOCK_SECONDS, len(data) / rate)
