"""The catalog: importing this package registers every model family."""

from senet_profile.models import resnet as resnet
