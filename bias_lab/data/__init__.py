"""Benchmark data: StereoSet, CrowS-Pairs, SEAT, WinoBias and text for perplexity.

Each loader takes a local path (file or folder) or a Hugging Face dataset id, checks the shape of
what it reads, and fails with one line naming the file and the first bad record. Offline with
nothing local, the message says which file or dataset id to provide.
"""

from .crows import CrowsPair, load_crows
from .seat import SeatTest, load_seat
from .stereoset import StereoSetData, StereoSetExample, load_stereoset
from .text import load_text
from .winobias import WinoBiasPair, load_winobias

__all__ = ["CrowsPair", "SeatTest", "StereoSetData", "StereoSetExample", "WinoBiasPair", "load_crows", "load_seat",
           "load_stereoset", "load_text", "load_winobias"]
