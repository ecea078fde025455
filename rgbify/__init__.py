"""rgbify: synthetic training data for generators that do vision tasks.

Every task's answer (metric depth, surface normals, semantic and instance masks) is encoded as an RGB image a
generator can learn to draw, and decoded back into metres, unit vectors and labels. Importing this package does
nothing beyond defining names; heavy dependencies load in the subpackages that need them.
"""

__version__ = "0.1.0"
CONVENTIONS_VERSION = "1"
