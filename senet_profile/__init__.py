"""senet-profile: what Squeeze-and-Excitation blocks really cost, measured on the model that was built."""

from senet_profile.api import compare, profile
from senet_profile.errors import UserInputError
from senet_profile.registry import get_model, list_models, parse_model_spec, register

__all__ = ["UserInputError", "compare", "get_model", "list_models", "parse_model_spec", "profile", "register"]
__version__ = "0.1.0"
