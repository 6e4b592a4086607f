"""``models/train.py`` and its training samples (``models/train_data.py``): the sample-data
phantoms as backgrounds, the keep-away from labelled real tumours, the background mix, and painted
lesions that hold their click."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from recist_tool.io import load_volume
from recist_tool.sample_data.generate import lesion_free_volume

from ..conftest import REPO_ROOT, require


@pytest.fixture(scope="module")
def train():
    """``models/train.py`` imported as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("recist_train", REPO_ROOT / "models" / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def train_data(train):
    """``models/train_data.py``, the data pipeline, as ``train.py`` imports it (so that a patch
    of one of its functions reaches :func:`make_batch`)."""
    return importlib.import_module("train_data")


@pytest.fixture(scope="module")
def phantom_only(train_data, tmp_path_factory: pytest.TempPathFactory):
    """The backgrounds when no real CT is found: the sample-data phantoms alone."""
    return train_data.load_backgrounds(tmp_path_factory.mktemp("no-shared-data"))


def test_phantom_backgrounds_are_sample_trial_anatomy(train_data, phantom_only) -> None:
    assert len(phantom_only) == len(train_data.PHANTOMS)
    for bg, (px, dz, _) in zip(phantom_only, train_data.PHANTOMS, strict=True):
        assert bg.volume.spacing == pytest.approx((dz, px, px))
        assert bg.weight > 0
        a = np.asarray(bg.volume.array)
        assert min(len(bg.lung), len(bg.soft), len(bg.fat)) > 1000
        # candidates sit in aerated lung, soft tissue and fat, away from the edges
        assert np.median(a[tuple(bg.lung.T)]) < -750
        assert 0 < np.median(a[tuple(bg.soft.T)]) < 200
        assert -150 < np.median(a[tuple(bg.fat.T)]) < -50
        assert bg.lung[:, 1:].min() >= 24
        assert (np.asarray(a.shape[1:]) - bg.lung[:, 1:].max() > 24).all()


def test_phantom_contrast_changes_the_liver_not_the_lung(train_data) -> None:
    plain = np.asarray(lesion_free_volume(0.9, 5.0, False).array)
    enhanced = np.asarray(lesion_free_volume(0.9, 5.0, True).array)
    assert plain.shape == enhanced.shape
    assert np.abs(enhanced - plain).max() > 30  # enhancing organs
    lung = ndimage.uniform_filter(plain, (1, 5, 5)) < -750
    assert np.abs(ndimage.uniform_filter(enhanced - plain, (1, 5, 5))[lung]).mean() < 5


def test_synthetic_lesions_on_phantoms_hold_their_click(train_data, phantom_only) -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        img, mask, click, spacing = train_data.synth_sample(rng, phantom_only)
        assert img.shape == mask.shape == train_data.PATCH_SHAPE
        assert np.isfinite(img).all() and mask.sum() > 8
        c = np.clip(np.rint(click).astype(int), 0, np.asarray(mask.shape) - 1)
        near = mask[tuple(slice(max(v - 1, 0), v + 2) for v in c)]
        assert near.any(), "the click must fall on (or next to) its lesion"


def test_backgrounds_are_drawn_in_proportion_to_their_weight(train_data) -> None:
    bgs = [train_data.Background(name, None, None, None, w)
           for name, w in (("a", 1.0), ("b", 1.0), ("c", 2.0))]
    rng = np.random.default_rng(0)
    picks = [train_data.pick_background(rng, bgs).volume for _ in range(4000)]
    assert [picks.count(n) / len(picks) for n in "abc"] == pytest.approx([0.25, 0.25, 0.5],
                                                                         abs=0.03)


def test_real_tumour_is_kept_out_of_background_points(train_data, shared_data: Path) -> None:
    """No synthetic lesion or negative click lands near lung1's labelled (real) tumour."""
    label = require(shared_data / "lesions/pyradiomics_lung1/label.nrrd")
    bgs = train_data.load_backgrounds(shared_data)
    lung1 = bgs[0]
    assert lung1.weight == 1.0
    tumour = np.asarray(load_volume(label).array) > 0
    dist = ndimage.distance_transform_edt(~tumour, sampling=lung1.volume.spacing)
    for pts in (lung1.lung, lung1.soft, lung1.fat):
        assert len(pts) > 1000
        assert dist[tuple(pts.T)].min() >= train_data.KEEP_AWAY_MM
    real_weight = sum(b.weight for b in bgs[:-len(train_data.PHANTOMS)])
    phantom_weight = sum(b.weight for b in bgs[-len(train_data.PHANTOMS):])
    assert phantom_weight / (real_weight + phantom_weight) == pytest.approx(train_data.PHANTOM_SHARE)


@pytest.mark.parametrize("args, says", [
    (["--data", "{tmp}/no-data"], "LIDC crops are needed"),
    (["--calibrate-only", "--out", "{tmp}/missing.pt"], "no weights at"),
    (["--out", "{tmp}/no-folder/unet.pt"], "does not exist"),
    (["--channels", "16,x,64"], "not a comma-separated list"),
    (["--channels", "16"], "two or more"),
    (["--channels", "8,16,32,64,128,256"], "divisible by 32"),
    (["--init", "{tmp}/absent.pt"], "--init: no weights at"),
])
def test_bad_arguments_are_one_line_errors(train, shared_data: Path, tmp_path: Path, capsys,
                                           args: list[str], says: str) -> None:
    argv = ["--data", str(shared_data)] + [a.format(tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and "Traceback" not in "\n".join(err)


def test_precision_follows_the_hardware(train, tmp_path: Path) -> None:
    """``--precision auto``: bf16 on CUDA and on CPUs with native bf16, fp32 on other CPUs and
    where the CPU flags cannot be read; an explicit choice is kept."""
    cpuinfo = tmp_path / "cpuinfo"
    assert train.resolve_precision("fp32", "cuda") == "fp32"
    assert train.resolve_precision("bf16", "cpu", cpuinfo) == "bf16"
    assert train.resolve_precision("auto", "cuda:0") == "bf16"
    cpuinfo.write_text("flags\t: fpu sse2 avx2 avx512f\n")
    assert train.resolve_precision("auto", "cpu", cpuinfo) == "fp32"
    cpuinfo.write_text("flags\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert train.resolve_precision("auto", "cpu", cpuinfo) == "bf16"
    cpuinfo.unlink()
    assert train.resolve_precision("auto", "cpu", cpuinfo) == "fp32"


def test_channels_argument_parses_to_the_encoder_widths(train) -> None:
    assert train.parse_channels("16,32,64,128") == (16, 32, 64, 128)
    assert train.parse_channels(",".join(map(str, train.CHANNELS))) == train.CHANNELS


@pytest.mark.parametrize("recipe, says", [
    ({"channels": [16, 32, 64, 128]}, "made with channels 16,32,64,128"),
    ({"lidc_sampling": "size"}, "made with --lidc-sampling size"),
    ({"thick_slab_share": 0.5}, "made with --thick-slab-share 0.5"),
    ({"lidc_outside": "ignore"}, "made with --lidc-outside ignore"),
    ({"init_sha256": "ab" * 32}, "made from --init weights abababababab"),
])
def test_checkpoint_of_another_recipe_is_a_one_line_error(train, shared_data: Path,
                                                         tmp_path: Path, capsys, recipe: dict,
                                                         says: str) -> None:
    """Resuming with ``--channels`` or ``--lidc-sampling`` other than the checkpoint's would
    fail to load or mix two recipes: it stops before training, names the checkpoint's choice and
    leaves the checkpoint as it was."""
    import torch

    ckpt = tmp_path / "unet.ckpt"
    torch.save({"state_dict": {}, "opt": {}, "iteration": 10, "rng": None,
                "channels": list(train.CHANNELS), "lidc_sampling": "uniform", **recipe}, ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(SystemExit) as exc:
        train.main(["--data", str(shared_data), "--out", str(tmp_path / "unet.pt"),
                    "--iterations", "1", "--finetune-iterations", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1]
    assert ckpt.read_bytes() == before


def test_size_sampling_draws_crops_in_proportion_to_their_long_axis(train_data, monkeypatch) -> None:
    """``--lidc-sampling size``: a crop's chance follows its long axis clipped to
    ``SIZE_WEIGHT_MM``; ``uniform`` keeps the shipped recipe's draws."""
    from recist_tool.volume import Volume

    zz, yy, xx = np.mgrid[:24, :64, :64]
    crops = []
    for radius_mm in (2.0, 6.0, 12.0, 25.0):  # long axes about 4, 12, 24 and 50 mm
        mask = (zz - 12) ** 2 * 4 + (yy - 32) ** 2 + (xx - 32) ** 2 <= radius_mm ** 2
        vol = Volume.from_grid(np.where(mask, 40, -800).astype(np.int16), (2.0, 1.0, 1.0))
        crops.append((vol, mask))
    assert train_data.lidc_probabilities(crops, "uniform") is None
    p = train_data.lidc_probabilities(crops, "size")
    lo, hi = train_data.SIZE_WEIGHT_MM
    assert p.sum() == pytest.approx(1.0)
    # the 4 mm crop counts as lo, the 50 mm one as hi, the others by their long axis
    assert p[3] / p[0] == pytest.approx(hi / lo)
    assert p[2] / p[1] == pytest.approx(2.0, rel=0.1)

    drawn = np.zeros(len(crops))
    real_sample = train_data.lidc_sample

    def counting_sample(rng, item, *args):
        drawn[next(i for i, c in enumerate(crops) if c is item)] += 1
        return real_sample(rng, item, *args)

    monkeypatch.setattr(train_data, "lidc_sample", counting_sample)
    train_data.make_batch(np.random.default_rng(3), 400, crops, [], lidc_fraction=1.0, lidc_p=p)
    assert drawn / drawn.sum() == pytest.approx(p, abs=0.06)
    with pytest.raises(ValueError, match="unknown LIDC sampling"):
        train_data.lidc_probabilities(crops, "area")


def test_thick_slab_draws_slices_3_to_5_5_mm_thick(train_data) -> None:
    """A crop is re-sliced with ``k * dz`` within ``THICK_SLAB_MM``, at a random phase; a crop
    too short for two thick slices, or already thick, is left as it is."""
    from recist_tool.volume import Volume

    zz, yy, xx = np.mgrid[:40, :64, :64]
    r2 = ((zz - 19.5) * 1.25) ** 2 + ((yy - 32) * 0.7) ** 2 + ((xx - 30) * 0.7) ** 2
    mask = r2 <= 9.0 ** 2  # an 18 mm sphere on 1.25 mm slices
    hu = np.where(mask, 30, -850).astype(np.int16)
    vol = Volume.from_grid(hu, (1.25, 0.7, 0.7))
    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(16):
        thick, tmask = train_data.thick_slab(rng, vol, mask)
        first = float(vol.lps_to_index(thick.slice_positions[0])[0])
        drawn.add((thick.spacing[0], first))
        assert tmask.shape == thick.shape and tmask.sum() >= 4
    assert {dz for dz, _ in drawn} == {3.75, 5.0}  # k = 3 or 4
    assert len({first for _, first in drawn}) >= 4  # phases 0..k-1
    assert train_data.thick_slab(rng, vol.crop((0, 0, 0), (4, 64, 64)), mask[:4]) is None
    assert train_data.thick_slab(rng, Volume.from_grid(hu, (5.0, 0.7, 0.7)), mask) is None


def test_thick_slab_share_sends_lidc_draws_through_thick_slab(train_data, monkeypatch) -> None:
    """``--thick-slab-share``: that share of LIDC draws is re-sliced; 0 keeps run 1's draws."""
    from recist_tool.volume import Volume

    zz, yy, xx = np.mgrid[:20, :48, :48]
    mask = ((zz - 10) * 1.25) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2 <= 8 ** 2
    crops = [(Volume.from_grid(np.where(mask, 40, -800).astype(np.int16), (1.25, 1.0, 1.0)), mask)]
    thick_dz = []
    real_sample = train_data.lidc_sample

    def recording_sample(rng, item, *args):
        thick_dz.append(item[0].spacing[0] > 1.25)
        return real_sample(rng, item, *args)

    monkeypatch.setattr(train_data, "lidc_sample", recording_sample)
    train_data.make_batch(np.random.default_rng(1), 200, crops, [], lidc_fraction=1.0,
                     thick_share=0.5)
    assert 0.4 < np.mean(thick_dz) < 0.6
    thick_dz.clear()
    train_data.make_batch(np.random.default_rng(1), 50, crops, [], lidc_fraction=1.0)
    assert not any(thick_dz)


def test_lidc_outside_ignore_leaves_the_slices_beyond_the_crop_unknown(train_data) -> None:
    """``--lidc-outside ignore``: box slices beyond a crop's first and last slice (where the
    image repeats the edge slice) get a NaN target; the others keep run 1's target."""
    from recist_tool.volume import Volume

    zz, yy, xx = np.mgrid[:8, :48, :48]
    mask = ((zz - 3.5) * 2.5) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2 <= 9 ** 2  # cut by the ends
    crop = (Volume.from_grid(np.where(mask, 40, -800).astype(np.int16), (2.5, 0.7, 0.7)), mask)
    for seed in range(4):
        img0, tgt0, click0, _ = train_data.lidc_sample(np.random.default_rng(seed), crop)
        img, tgt, click, _ = train_data.lidc_sample(np.random.default_rng(seed), crop, "ignore")
        assert np.array_equal(img, img0) and np.array_equal(click, click0)
        unknown = np.isnan(tgt)
        slices = unknown.all(axis=(1, 2))
        assert np.array_equal(unknown, np.broadcast_to(slices[:, None, None], tgt.shape))
        # 8 slices of 2.5 mm = 20 mm of the box's 48 mm are known (1.5 mm box slices)
        assert 12 <= (~slices).sum() <= 15
        known = np.flatnonzero(~slices)
        assert np.array_equal(known, np.arange(known[0], known[-1] + 1))  # one run of slices
        assert np.array_equal(tgt[~unknown] > 0.5, tgt0[~unknown])
        assert tgt0[unknown].sum() == 0 and tgt0[~unknown].sum() > 0
    with pytest.raises(ValueError, match="unknown outside"):
        train_data.lidc_sample(np.random.default_rng(0), crop, "mirror")


def _weights(train, path: Path, channels: tuple[int, ...], seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    sd = train.build_network(channels).state_dict()
    torch.save({"state_dict": sd, "meta": {"channels": list(channels), "iterations_done": 7}},
               path)
    return sd


def test_init_that_is_not_a_weight_file_is_a_one_line_error(train, shared_data: Path,
                                                           tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.pt"
    bad.write_text("not weights")
    with pytest.raises(SystemExit) as exc:
        train.main(["--data", str(shared_data), "--out", str(tmp_path / "unet.pt"),
                    "--init", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "is not a weight file" in err[-1] and "Traceback" not in "\n".join(err)


def test_init_with_other_channels_is_a_one_line_error(train, shared_data: Path,
                                                      tmp_path: Path, capsys) -> None:
    init = tmp_path / "wide.pt"
    _weights(train, init, (16, 32, 64, 128), seed=0)
    with pytest.raises(SystemExit) as exc:
        train.main(["--data", str(shared_data), "--out", str(tmp_path / "unet.pt"),
                    "--init", str(init), "--channels", "8,16,32,64"])
    assert exc.value.code == 2
    assert "has channels 16,32,64,128" in capsys.readouterr().err.strip().splitlines()[-1]


def test_init_starts_a_further_stage_from_earlier_weights(train, shared_data: Path,
                                                         tmp_path: Path, monkeypatch) -> None:
    """``--init W --iterations 0 --finetune-iterations N``: N fine-tuning steps on top of W (its
    channels taken), W's digest recorded in the new weights' metadata."""
    import hashlib

    import torch

    require(shared_data / "lesions" / "lidc_nodules")
    init = tmp_path / "earlier.pt"
    start = _weights(train, init, (8, 16, 32, 32), seed=1)
    calibrated = []
    monkeypatch.setattr(train, "_calibrate_into", lambda out, *a: calibrated.append(out))
    out = tmp_path / "unet.pt"
    # the checkpoint an earlier run (no --init) leaves beside --out is not resumed
    torch.save({"state_dict": {}, "opt": {}, "iteration": 10, "rng": None,
                "channels": [8, 16, 32, 32], "lidc_sampling": "uniform"},
               out.with_suffix(".ckpt"))
    with pytest.raises(SystemExit):
        train.main(["--data", str(shared_data), "--out", str(out), "--init", str(init),
                    "--iterations", "0", "--finetune-iterations", "2"])
    out.with_suffix(".ckpt").unlink()
    assert train.main(["--data", str(shared_data), "--out", str(out), "--init", str(init),
                       "--iterations", "0", "--finetune-iterations", "2", "--lidc-outside",
                       "ignore", "--finetune-lr", "1e-6", "--checkpoint-every", "1000"]) == 0
    assert calibrated == [out]
    got = torch.load(out, weights_only=True)
    meta = got["meta"]
    assert meta["channels"] == [8, 16, 32, 32] and meta["iterations_done"] == 2
    # unknown targets beyond the crops are left out of the loss, not NaN in it
    assert meta["lidc_outside"] == "ignore" and np.isfinite(meta["final_loss_ema"])
    assert meta["init"]["sha256"] == hashlib.sha256(init.read_bytes()).hexdigest()
    assert meta["init"]["iterations_done"] == 7
    torch.manual_seed(2)
    fresh = train.build_network((8, 16, 32, 32)).state_dict()
    key = "enc.0.0.weight"
    moved = (got["state_dict"][key].float() - start[key]).abs().max().item()
    assert moved < 1e-3 < (fresh[key] - start[key]).abs().max().item()


def test_compiled_training_saves_the_plain_network(train, shared_data: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    """``--compile``: the steps run through torch.compile, and the weight file holds the plain
    network's parameters (no ``_orig_mod.`` prefix), which the segmenter loads."""
    import torch

    from recist_tool.segment.unet import UNetSegmenter

    require(shared_data / "lesions" / "lidc_nodules")
    monkeypatch.setattr(train, "_calibrate_into", lambda *a: None)
    out = tmp_path / "unet.pt"
    assert train.main(["--data", str(shared_data), "--out", str(out), "--iterations", "2",
                       "--finetune-iterations", "1", "--compile", "--channels", "8,8,8,8",
                       "--checkpoint-every", "1000"]) == 0
    got = torch.load(out, weights_only=True)
    assert got["meta"]["compiled"] is True and got["meta"]["iterations_done"] == 3
    assert set(got["state_dict"]) == set(train.build_network((8, 8, 8, 8)).state_dict())
    assert UNetSegmenter(out).is_fallback is False


def test_compile_without_a_compiler_is_a_one_line_error(train, shared_data: Path, tmp_path: Path,
                                                       monkeypatch, capsys) -> None:
    require(shared_data / "lesions" / "lidc_nodules")
    monkeypatch.setattr(train.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exc:
        train.main(["--data", str(shared_data), "--out", str(tmp_path / "unet.pt"), "--compile"])
    assert exc.value.code == 2
    assert "no C++ compiler found" in capsys.readouterr().err.strip().splitlines()[-1]
