"""The catalog: importing this package registers every model family."""

from senet_profile.catalog.models import inception as inception
from senet_profile.catalog.models import mobile as mobile
from senet_profile.catalog.models import resnet as resnet
from senet_profile.catalog.models import senet154 as senet154
from senet_profile.catalog.models import torchvision_se as torchvision_se
from senet_profile.catalog.models import vgg as vgg
