"""Test oracles: plain, slow, independent versions of what rgbify computes fast."""
