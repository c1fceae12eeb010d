"""Explanations: attention maps, Captum attributions, and how far to trust them.

`catalog` (which methods exist, what they cost, what to say about them) and `render` (HTML and
images from plain arrays) are torch-free so the dashboard can import them while browsing;
`attributions`, `attention`, `faithfulness` and `sanity` compute and import torch.
"""
