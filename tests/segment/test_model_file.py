"""``model-file``: a network file (torch.export or TorchScript) with the ``unet`` contract plugs
in without code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recist_tool.cli import main
from recist_tool.errors import SegmentationError
from recist_tool.io import save_volume
from recist_tool.segment import Prompt, dice, get_segmenter
from recist_tool.segment import unet as unet_mod
from recist_tool.segment.evaluate import centre_click
from recist_tool.segment.model_file import META_NAME, export_network
from recist_tool.segment.synthetic import make_case

torch = pytest.importorskip("torch")

needs_weights = pytest.mark.skipif(not unet_mod.default_weights_path().is_file(),
                                   reason="no unet weights (models/unet_lesion.pt)")


@needs_weights
def test_exported_network_segments_as_unet_does(tmp_path, capsys) -> None:
    ts = export_network(tmp_path / "unet.pt2")
    extra = {META_NAME: ""}
    torch.export.load(str(ts), extra_files=extra)
    meta = json.loads(extra[META_NAME])
    shipped = get_segmenter("unet")
    assert meta["threshold"] == shipped.threshold and meta["patch_shape"] == [32, 48, 48]
    seg = get_segmenter("model-file", path=str(ts))
    assert seg.name == "model-file" and seg.version.startswith(f"unet-{shipped.version}+")
    case = make_case("lung_solid", 8.0, seed=4)
    prompt = Prompt.at(*centre_click(case.volume, case.mask))
    a, b = shipped.segment(case.volume, prompt), seg.segment(case.volume, prompt)
    assert dice(a.full(), b.full()) > 0.99 and dice(b.full(), case.mask) > 0.85
    # from the command line, as a file and nothing else
    img = tmp_path / "ct.nii.gz"
    save_volume(case.volume, img)
    z, y, x = prompt.point_zyx
    assert main(["segment", str(img), "--seed", f"{z},{y},{x}", "--segmenter",
                 f"model-file:path={ts}", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["segmenter"] == "model-file" and res["n_voxels"] == b.n_voxels
    # the outline option of unet applies to a network file too
    cut = get_segmenter("model-file", path=str(ts), edge="half-contrast").segment(case.volume,
                                                                                  prompt)
    assert cut.version.endswith("/half-contrast") and "edge" in cut.info
    ref = get_segmenter("unet", edge="half-contrast").segment(case.volume, prompt)
    assert dice(cut.full(), ref.full()) > 0.99


@pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning")
def test_a_torchscript_model_with_its_own_grid(tmp_path) -> None:
    """The file's metadata sets the working grid and threshold: a TorchScript "network" that
    answers where the click heat map is above 0.2, on a 24×32×32 box at 2 mm, finds a sphere
    of radius σ·sqrt(2 ln 5)."""

    class Ball(torch.nn.Module):
        def forward(self, x):  # lesion where the click heat map is high
            return (x[:, 1:2] - 0.2) * 40.0

    ts = tmp_path / "ball.ts"
    meta = {"patch_shape": [24, 32, 32], "work_spacing_mm": [2.0, 2.0, 2.0],
            "click_sigma_mm": 4.0, "threshold": 0.5, "version": "ball-1"}
    torch.jit.save(torch.jit.script(Ball()), str(ts), _extra_files={META_NAME: json.dumps(meta)})
    seg = get_segmenter("model-file", path=str(ts))
    assert seg.version.startswith("ball-1+")
    assert seg.patch_shape == (24, 32, 32) and seg.work_spacing == (2.0, 2.0, 2.0)
    arr = np.full((40, 80, 80), 40, np.int16)  # soft tissue: the click is not refused
    from recist_tool.volume import Volume

    vol = Volume.from_grid(arr, (1.0, 1.0, 1.0))
    m = seg.segment(vol, Prompt.at(20, 40, 40), node=False)
    # heat exp(-d²/2σ²) > 0.2 ⇔ d < σ·sqrt(2 ln 5) = 7.2 mm
    r_mm = (3 * m.n_voxels / (4 * np.pi)) ** (1 / 3)
    assert r_mm == pytest.approx(4.0 * np.sqrt(2 * np.log(5)), abs=0.7)
    assert m.info["work_spacing_mm"] == [2.0, 2.0, 2.0] and not m.leak_bounded


@pytest.mark.parametrize(("name", "content", "message"), [
    (None, None, "needs a file"), ("m.pt2", None, "not found"),
    ("m.ts", b"not a model", "cannot read TorchScript model"),
    ("m.pt2", b"not a model", "cannot read torch.export program"),
])
def test_bad_model_files_are_one_line_errors(tmp_path, name, content, message) -> None:
    path = None if name is None else tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SegmentationError, match=message) as err:
        get_segmenter("model-file", **({} if path is None else {"path": str(path)}))
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("meta", "message"), [
    ('{"patch_shape": [24, 32]}', "must have 3 values"),
    ('{"work_spacing_mm": "fine"}', "bad metadata"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_bad_metadata_is_a_one_line_error(tmp_path, meta, message) -> None:
    ts = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(ts),
                   _extra_files={META_NAME: meta})
    with pytest.raises(SegmentationError, match=message) as err:
        get_segmenter("model-file", path=str(ts))
    assert "\n" not in str(err.value)
