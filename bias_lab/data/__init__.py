"""Benchmark data: StereoSet, CrowS-Pairs, SEAT, WinoBias, text for perplexity, and group prompts
for generation (HolisticBias, BOLD, RealToxicityPrompts, custom files).

Each loader takes a local path (file or folder) or a Hugging Face dataset id, checks the shape of
what it reads, and fails with one line naming the file and the first bad record. Offline with
nothing local, the message says which file or dataset id to provide.
"""

from .crows import CrowsPair, load_crows
from .groups import (FASP_AXES, GroupPrompt, check_groups, load_bold, load_group_prompts, load_holistic_bias,
                     load_real_toxicity_prompts)
from .seat import SeatTest, load_seat
from .stereoset import StereoSetData, StereoSetExample, load_stereoset
from .text import load_text
from .winobias import WinoBiasPair, load_winobias

__all__ = ["FASP_AXES", "CrowsPair", "GroupPrompt", "SeatTest", "StereoSetData", "StereoSetExample", "WinoBiasPair",
           "check_groups", "load_bold", "load_crows", "load_group_prompts", "load_holistic_bias",
           "load_real_toxicity_prompts", "load_seat", "load_stereoset", "load_text", "load_winobias"]
