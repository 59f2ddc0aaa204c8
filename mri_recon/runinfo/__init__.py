"""What a run was: the code, package versions, hardware, input files (content hashes) and the
resources it used, collected without any framework, and the append-only ``provenance.json``
record that holds them (the CLI fills it: ``mri_recon.cli.provenance``)."""

from mri_recon.runinfo.environment import ResourceMeter, git_state, hardware, package_versions
from mri_recon.runinfo.hashing import check_manifest, hash_file, manifest
from mri_recon.runinfo.record import (
    FORMAT_VERSION,
    RECORD_NAME,
    RecordError,
    append_segment,
    last_completed,
    read_record,
    replace_last_segment,
    replay_inputs,
    replay_segment,
    resolved_root,
)

__all__ = [
    "FORMAT_VERSION",
    "RECORD_NAME",
    "RecordError",
    "ResourceMeter",
    "append_segment",
    "check_manifest",
    "git_state",
    "hardware",
    "hash_file",
    "last_completed",
    "manifest",
    "package_versions",
    "read_record",
    "replace_last_segment",
    "replay_inputs",
    "replay_segment",
    "resolved_root",
]
