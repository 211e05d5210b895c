"""Attribution of a demographic probability gap to FFN neurons (Integrated Gap Gradients)."""

from .ig2 import ENGINES, TARGETS, IG2Settings, PromptAttribution, attribute_ig2, iter_ig2, reference_attribution
from .steps import METHODS, integration_points

__all__ = ["ENGINES", "METHODS", "TARGETS", "IG2Settings", "PromptAttribution", "attribute_ig2", "integration_points",
           "iter_ig2", "reference_attribution"]
