"""fastMRI prostate T2 through the ``fastmri`` format: tiny files written by ``mri-recon-data
synth --format fastmri --anatomy prostate --preset tiny``, read key by key and axis by axis as
the dataset's authors read them (cai2r/fastMRI_prostate; docs/DATASETS.md cites each fact).
Each test names the fact it checks."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_recon.cli.data import main
from mri_recon.data.fastmri import DataError, load_volume, read_volume_info
from mri_recon.data.formats import get_reader
from mri_recon.data.header import parse_ismrmrd_header
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prostate")
    argv = ["synth", "--out", str(out), "--format", "fastmri", "--anatomy", "prostate"]
    assert main([*argv, "--preset", "tiny"]) == 0
    return out


def _train_file(root: Path) -> Path:
    return sorted((root / "multicoil_train").glob("*.h5"))[0]


def _authors_padding(header: bytes) -> tuple[int, int]:
    """fastmri_prostate.data.mri_data.get_padding / zero_pad_kspace_hdr: (left, right)."""
    hdr = parse_ismrmrd_header(header)
    padding = (hdr.encoded_size[0] - (hdr.maximum + 1)) / 2
    return int(np.floor(padding)), int(np.ceil(padding))


def _authors_image(kspace: np.ndarray, crop: int) -> np.ndarray:
    """create_coil_combined_im + center_crop_im of fastmri_prostate (ifftnd: unnormalised
    ifftn times sqrt(N), RSS over coils, np.flipud, centre crop) on (S, C, H, W) k-space."""
    axes = (-2, -1)
    image = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(kspace, axes=axes), axes=axes), axes=axes)
    image *= np.sqrt(kspace.shape[-2] * kspace.shape[-1])
    im = np.stack([np.flipud(np.sqrt((np.abs(sl) ** 2).sum(0))) for sl in image])
    x0, y0 = int(im.shape[-1] / 2 - crop / 2), int(im.shape[-2] / 2 - crop / 2)
    return im[:, y0 : y0 + crop, x0 : x0 + crop]


def test_check_knows_prostate_files_and_their_layout(root, capsys) -> None:
    """load_file_T2 / the tutorial: ``kspace`` complex (averages, slices, coils, readout,
    phase), ``calibration_data`` (slices, coils, readout, lines), ``reconstruction_rss``
    float (slices, h, w), ``ismrmrd_header``, attrs max/norm/patient_id/acquisition; the
    ``fastmri`` format's ``check`` says OK for each (no option needed)."""
    assert main(["check", str(root)]) == 0
    assert capsys.readouterr().out.strip().endswith("2 OK, 0 BAD")
    with h5py.File(_train_file(root)) as hf:
        ks, calib, target = hf["kspace"], hf["calibration_data"], hf["reconstruction_rss"]
        assert ks.ndim == 5 and ks.shape[0] == 3 and ks.dtype == np.complex64
        assert calib.shape[:3] == ks.shape[1:4] and calib.dtype == np.complex64
        assert target.shape[0] == ks.shape[1] and target.dtype == np.float32
        assert {"max", "norm", "patient_id", "acquisition"} <= set(hf.attrs)
        assert isinstance(hf["ismrmrd_header"][()], bytes)


def test_combined_averages_padding_and_the_target_flipped_back(root) -> None:
    """Averages 0 and 2 hold the odd lines, average 1 the even ones (each 2x undersampled);
    ``averages=combine``: each acquired column the mean of the averages acquiring it; the
    lines zero-padded to the header's encoded x as ``zero_pad_kspace_hdr`` pads them; the
    stored target is ``np.flipud`` of the RSS image (create_coil_combined_im): flipped back,
    it lies as ``rss(ifft2c(kspace))`` does."""
    path = _train_file(root)
    with h5py.File(path) as hf:
        raw, header, stored = (
            hf["kspace"][()],
            hf["ismrmrd_header"][()],
            hf["reconstruction_rss"][()],
        )
    num_avg, slices, coils, height, acquired = raw.shape
    acquired_cols = np.abs(raw).max(axis=(1, 2, 3)) > 0  # (A, W_acq)
    assert not acquired_cols[[0, 2], ::2].any() and acquired_cols[[0, 2], 1::2].all()
    assert acquired_cols[1, ::2].all() and not acquired_cols[1, 1::2].any()
    left, right = _authors_padding(header)
    info = read_volume_info(path, reader=get_reader("fastmri"))
    assert (info.padding_left, info.padding_right) == (left, height - right)
    assert info.kspace_shape == (slices, coils, height, height) and info.mask is None
    volume = load_volume(info)
    expected = np.empty(raw.shape[1:], np.complex64)
    expected[..., 1::2] = (raw[0, ..., 1::2] + raw[2, ..., 1::2]) / 2
    expected[..., ::2] = raw[1, ..., ::2]
    padded = np.pad(expected, ((0, 0), (0, 0), (0, 0), (left, right)))
    np.testing.assert_allclose(volume.kspace.numpy(), padded, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(volume.target.numpy(), stored[:, ::-1])
    # oracle: the authors' image of the same k-space is ours upside down
    crop = stored.shape[-1]
    ours = center_crop(rss(ifft2c(volume.kspace), dim=1), (crop, crop)).numpy()
    np.testing.assert_allclose(ours[:, ::-1], _authors_image(padded, crop), rtol=1e-4, atol=1e-6)
    # and the stored target (mean of the averages' images) matches it only flipped back
    err = np.linalg.norm(ours - volume.target.numpy()) / np.linalg.norm(ours)
    flipped_err = np.linalg.norm(ours - stored) / np.linalg.norm(ours)
    assert err < 0.05 < flipped_err


def test_one_average_is_a_sample_with_its_own_2x_mask(root) -> None:
    """``averages=a``: average ``a`` alone, prospectively undersampled (every other line),
    the separate calibration scan's central lines filling the centre band it lacks (the
    authors' GRAPPA calibration: the ACS region); those columns are the stored mask, the
    padded columns known zeros."""
    path = _train_file(root)
    info = read_volume_info(path, reader=get_reader("fastmri", {"averages": 1}))
    left, right = info.padding_left, info.padding_right
    width = info.kspace_shape[-1]
    with h5py.File(path) as hf:
        average, calib = hf["kspace"][1], hf["calibration_data"][()]  # (S, C, H, *)
    lines = calib.shape[-1]
    band = slice(width // 2 - lines // 2, width // 2 - lines // 2 + lines)
    expected = np.ones(width, bool)
    expected[left:right] = np.arange(right - left) % 2 == 0  # average 1: the even lines
    expected[band] = True
    np.testing.assert_array_equal(info.mask, expected)
    assert info.acceleration == pytest.approx((right - left) / expected[left:right].sum())
    assert info.num_low_frequencies >= lines
    kspace = load_volume(info).kspace.numpy()
    own = np.zeros(width, bool)  # the columns average 1 acquired
    own[left:right] = np.arange(right - left) % 2 == 0
    np.testing.assert_array_equal(kspace[..., own], average[..., own[left:right]])
    assert not kspace[..., ~expected].any()
    filled = np.zeros(width, bool)  # the band's lines the average lacks: the calibration's
    filled[band] = ~own[band]
    assert filled.any()
    np.testing.assert_array_equal(kspace[..., filled], calib[..., filled[band]])


def test_bad_prostate_files_and_options_are_one_line(root, tmp_path) -> None:
    """An average the file does not have, a diffusion file (EPI, needs regridding), a header
    whose encoded x is not the readout, a bad ``averages`` value, and M4Raw (one repetition
    per file) reading a prostate file: each one line naming the key or option."""
    path = _train_file(root)
    with pytest.raises(DataError, match=r"format_options.averages = 3: kspace has 3 averages"):
        read_volume_info(path, reader=get_reader("fastmri", {"averages": 3}))
    with pytest.raises(ValueError, match=r"^format_options.averages: must be 'combine' or"):
        get_reader("fastmri", {"averages": "mean"})
    with pytest.raises(DataError, match=r"kspace has 5 dims, expected 4 \(S, C, H, W\)"):
        get_reader("m4raw").read_info(path)
    dwi, bad_header = tmp_path / "dwi.h5", tmp_path / "header.h5"
    for copy in (dwi, bad_header):
        copy.write_bytes(path.read_bytes())
    with h5py.File(dwi, "a") as hf:
        hf["coil_sens_maps"] = np.zeros((1,), np.complex64)
    with pytest.raises(DataError, match=r"prostate diffusion file \(coil_sens_maps\)"):
        read_volume_info(dwi)
    with h5py.File(bad_header, "a") as hf:
        xml = hf["ismrmrd_header"][()].replace(b"<x>32</x>", b"<x>40</x>", 1)
        del hf["ismrmrd_header"]
        hf["ismrmrd_header"] = np.bytes_(xml)
    with pytest.raises(DataError, match=r"encoded x = 40 .* readout H = 32"):
        read_volume_info(bad_header)
