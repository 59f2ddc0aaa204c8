"""mri_recon: accelerated MRI reconstruction research framework."""
