"""craftlib: helpers for the CRAFT biomedical NER tutorial notebooks.

Data flows one way: ``corpus`` → ``tags`` → (``ontology`` → ``augment``) → ``train`` → ``evaluate`` → ``viz``.
Importing the package has no side effects and does not import torch.
"""

from craftlib.config import ENTITY_TYPES, LABELS, PROFILES, get_profile
from craftlib.runtime import setup

__version__ = "0.1.0"
__all__ = ["ENTITY_TYPES", "LABELS", "PROFILES", "__version__", "get_profile", "setup"]
