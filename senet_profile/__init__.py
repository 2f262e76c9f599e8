"""senet-profile: what Squeeze-and-Excitation blocks really cost, measured on the model that was built."""

from senet_profile.api import compare, profile
from senet_profile.catalog.attach import add_se, remove_se
from senet_profile.catalog.registry import get_model, list_models, parse_model_spec, register
from senet_profile.catalog.se import SEConfig
from senet_profile.errors import UserInputError

__all__ = [
    "SEConfig",
    "UserInputError",
    "add_se",
    "compare",
    "get_model",
    "list_models",
    "parse_model_spec",
    "profile",
    "register",
    "remove_se",
]
__version__ = "0.1.0"
