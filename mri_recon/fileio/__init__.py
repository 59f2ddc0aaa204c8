"""Writing outputs safely: atomic files (temporary file + rename; CSV tables too, with their
one reader) with the permissions an ordinary ``open`` would give them. Imported by every
layer that writes; imports nothing of mri_recon."""

from mri_recon.fileio.atomic import (
    OutputError,
    atomic_path,
    make_temp_dir,
    output_dir_problem,
    read_csv,
    umask_mode,
    write_atomic,
    write_csv,
)
from mri_recon.fileio.rundir import restored_on_failure

__all__ = [
    "OutputError",
    "atomic_path",
    "make_temp_dir",
    "output_dir_problem",
    "read_csv",
    "restored_on_failure",
    "umask_mode",
    "write_atomic",
    "write_csv",
]
