"""Lightning: the training module, its callbacks and checkpoint loader, the data module.

The only subpackage that imports Lightning; nothing is imported here, so that
``mri_recon.lit.checkpoint`` loads without it.
"""
