"""The bias-neuron method (Liu et al., IG2 + BNS): prompts with a [MASK] between two demographic
words, Integrated Gap Gradients over FFN neurons, resumable runs, bias-neuron selection, the
suppression/amplification check against random neurons, the analyses of where bias neurons sit
and the live mask prediction of the dashboard."""

from .analyses import (compare_layer_distributions, intersection_statistics, neurons_per_dimension, neurons_per_layer,
                       shallow_deep_edge)
from .ig2 import ENGINES, TARGETS, IG2Settings, PromptAttribution, attribute_ig2, iter_ig2, reference_attribution
from .live import MaskPrediction, parse_neurons, predict_mask
from .prompts import MASK, PreparedPrompt, Prompt, ig2_prompts, load_prompt_file, prepare_prompts
from .run import IG2Result, load_ig2_run, run_ig2
from .selection import (NEURON_COLUMNS, SelectionSettings, bag_keys, jut_keys, neuron_spec, prompt_neurons,
                        select_bias_neurons, union_ig)
from .steps import METHODS, integration_points
from .verification import gaps, random_neurons, relative_change, verify_neurons

__all__ = ["ENGINES", "MASK", "METHODS", "NEURON_COLUMNS", "TARGETS", "IG2Result", "IG2Settings", "MaskPrediction",
           "PreparedPrompt", "Prompt", "PromptAttribution", "SelectionSettings", "attribute_ig2", "bag_keys",
           "compare_layer_distributions", "gaps", "ig2_prompts", "integration_points", "intersection_statistics",
           "iter_ig2", "jut_keys", "load_ig2_run", "load_prompt_file", "neuron_spec", "neurons_per_dimension",
           "neurons_per_layer", "parse_neurons", "predict_mask", "prepare_prompts", "prompt_neurons", "random_neurons",
           "reference_attribution", "relative_change", "run_ig2", "select_bias_neurons", "shallow_deep_edge",
           "union_ig", "verify_neurons"]
