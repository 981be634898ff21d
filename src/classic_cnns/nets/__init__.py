"""Pure ``nn.Module`` networks, one file per architecture family.

Importing this package registers every built-in architecture.
"""

from classic_cnns.nets import lenet
from classic_cnns.nets.lenet import LeNet5Net

__all__ = ["LeNet5Net", "lenet"]
