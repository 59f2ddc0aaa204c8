"""Learned reconstruction: plain ``nn.Module`` networks, their norm factory, losses, and the
image-domain reconstructor that wraps a network in the reconstructor contract."""
