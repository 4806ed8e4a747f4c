"""ImageNet and the generic class-folder set on tiny fake trees in the real layouts."""

from __future__ import annotations

import os

import pytest
from fake_trees import write_image

from reid_dff.data.datasets import DatasetLayoutError, build_dataset, format_inspection, inspect_root
from reid_dff.data.datasets.imagenet import ImageNet, read_val_solution

# Three wnids written out of order on purpose: labels follow the sorted names, not creation order.
WNIDS = ["n02119789", "n01440764", "n01751748"]
TRAIN = {"n01440764": 3, "n01751748": 2, "n02119789": 4}
VAL = {  # Kaggle's flat names -> wnid
    "ILSVRC2012_val_00000001": "n01751748",
    "ILSVRC2012_val_00000002": "n02119789",
    "ILSVRC2012_val_00000003": "n01440764",
    "ILSVRC2012_val_00000004": "n01751748",
    "ILSVRC2012_val_00000005": "n01440764",
}


def make_imagenet(root, val_layout: str, csv_rows=None, base=("imagenet",)) -> str:
    data = os.path.join(root, *base)
    seed = 0
    for wnid in WNIDS:
        for k in range(TRAIN[wnid]):
            write_image(os.path.join(data, "train", wnid, f"{wnid}_{k}.JPEG"), seed=(seed := seed + 1))
    for image_id, wnid in VAL.items():
        folder = os.path.join(data, "val", wnid) if val_layout == "folders" else os.path.join(data, "val")
        write_image(os.path.join(folder, f"{image_id}.JPEG"), seed=(seed := seed + 1))
    if val_layout == "csv":
        rows = csv_rows if csv_rows is not None else [f"{i},{w} 1 2 3 4 {w} 5 6 7 8" for i, w in VAL.items()]
        with open(os.path.join(root, "imagenet", "LOC_val_solution.csv"), "w", encoding="utf-8") as f:
            f.write("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    return data


def relative(samples, data):
    return [(os.path.basename(s.path), s.pid, s.camid, s.domain) for s in samples]


def test_both_val_layouts_give_the_same_samples(tmp_path):
    folders = make_imagenet(tmp_path / "a", "folders")
    flat = make_imagenet(tmp_path / "b", "csv")
    a = ImageNet(str(tmp_path / "a"), warn_statistics=False)
    b = ImageNet(str(tmp_path / "b"), warn_statistics=False)
    assert (a.val_layout, b.val_layout) == ("folders", "csv")
    assert a.classes == b.classes == sorted(WNIDS)
    assert relative(a.val, folders) == relative(b.val, flat)
    # Independent expectation: label = index of the wnid in the sorted list, samples by (label, name).
    expected = sorted((sorted(WNIDS).index(w), f"{i}.JPEG") for i, w in VAL.items())
    assert [(name, pid) for name, pid, _, _ in relative(b.val, flat)] == [(n, p) for p, n in expected]
    assert all(os.path.isfile(s.path) and os.path.isabs(s.path) for s in a.val + b.val + a.train)
    assert a.test is a.val
    train = [(os.path.basename(s.path), s.pid) for s in a.train]
    assert train == [
        (f"{w}_{k}.JPEG", label)
        for label, w in enumerate(sorted(WNIDS))
        for k in sorted(range(TRAIN[w]), key=str)
    ]
    stats = a.statistics()
    assert (stats["train"].ids, stats["train"].images) == (3, sum(TRAIN.values()))
    assert (stats["val"].ids, stats["val"].images) == (3, len(VAL))


def test_kaggle_archive_layout_is_found(tmp_path):
    make_imagenet(tmp_path, "csv", base=("imagenet", "ILSVRC", "Data", "CLS-LOC"))
    dataset = build_dataset("imagenet", str(tmp_path), warn_statistics=False)
    assert dataset.data_dir.endswith(os.path.join("ILSVRC", "Data", "CLS-LOC"))
    assert len(dataset.val) == len(VAL) and len(dataset.train) == sum(TRAIN.values())


def test_csv_with_an_unknown_wnid_names_it(tmp_path):
    rows = [f"{i},{'n09999999' if i.endswith('3') else w} 1 2 3 4" for i, w in VAL.items()]
    make_imagenet(tmp_path, "csv", csv_rows=rows)
    with pytest.raises(
        DatasetLayoutError, match=r"ILSVRC2012_val_00000003 with 'n09999999'.*not a class folder"
    ):
        ImageNet(str(tmp_path), warn_statistics=False)


def test_csv_without_a_wnid_or_row_is_an_error(tmp_path):
    rows = [f"{i},{w} 1 2 3 4" if not i.endswith("2") else f"{i}," for i, w in VAL.items()]
    make_imagenet(tmp_path / "a", "csv", csv_rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"line 3: no wnid for image 'ILSVRC2012_val_00000002'"):
        ImageNet(str(tmp_path / "a"), warn_statistics=False)
    rows = [f"{i},{w} 1 2 3 4" for i, w in VAL.items() if not i.endswith("5")]
    make_imagenet(tmp_path / "b", "csv", csv_rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"no row for the image .*ILSVRC2012_val_00000005.JPEG"):
        ImageNet(str(tmp_path / "b"), warn_statistics=False)


def test_csv_with_a_wrong_header_or_missing_is_an_error(tmp_path):
    make_imagenet(tmp_path, "csv")
    csv_path = tmp_path / "imagenet" / "LOC_val_solution.csv"
    csv_path.write_text("id,label\nILSVRC2012_val_00000001,n01751748\n", encoding="utf-8")
    with pytest.raises(DatasetLayoutError, match="expected ImageId,PredictionString"):
        ImageNet(str(tmp_path), warn_statistics=False)
    csv_path.unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)LOC_val_solution.csv for the flat .*Expected layout"):
        ImageNet(str(tmp_path), warn_statistics=False)


def test_read_val_solution_takes_the_first_token(tmp_path):
    path = tmp_path / "LOC_val_solution.csv"
    path.write_text("ImageId,PredictionString\na,n1 1 2 3 4 n2 5 6 7 8\nb,n3 0 0 1 1\n", encoding="utf-8")
    assert read_val_solution(str(path)) == {"a": "n1", "b": "n3"}


def test_missing_train_shows_the_expected_tree(tmp_path):
    (tmp_path / "imagenet" / "val").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as info:
        ImageNet(str(tmp_path))
    message = str(info.value)
    assert "a train/ folder" in message and str(tmp_path / "imagenet" / "train") in message
    assert ImageNet.expected_tree.strip() in message and "LOC_val_solution.csv" in message


def test_val_class_folder_unknown_to_train_is_an_error(tmp_path):
    make_imagenet(tmp_path, "folders")
    write_image(str(tmp_path / "imagenet" / "val" / "n07777777" / "x.JPEG"))
    with pytest.raises(DatasetLayoutError, match=r"class folders that train/ lacks: n07777777"):
        ImageNet(str(tmp_path), warn_statistics=False)


def test_inspection_reports_counts_against_the_published_ones(tmp_path):
    make_imagenet(tmp_path, "folders")
    (result,) = [r for r in inspect_root(str(tmp_path)) if r.spec == "imagenet"]
    assert result.status == "differs"
    assert "imagenet train: 9 images, published 1281167" in result.problems
    assert "imagenet val: 3 ids, published 1000" in result.problems
    text = format_inspection([result])
    assert "9 (1281167)" in text and "5 (50000)" in text
    with pytest.warns(UserWarning, match="differs from the published statistics"):
        ImageNet(str(tmp_path))


def test_class_folder_parses_train_and_optional_val(tmp_path):
    for name, count in (("cat", 2), ("ant", 3), ("bee", 1)):
        for k in range(count):
            write_image(str(tmp_path / "mine" / "train" / name / f"{k}.png"), seed=k)
    (tmp_path / "mine" / "train" / "cat" / "notes.txt").write_text("not an image")  # ignored
    write_image(str(tmp_path / "mine" / "train" / "cat" / ".hidden.png"))  # hidden: ignored
    dataset = build_dataset("class_folder:mine", str(tmp_path))
    assert dataset.classes == ["ant", "bee", "cat"] and dataset.val == []
    assert [(os.path.relpath(s.path, tmp_path / "mine" / "train"), s.pid) for s in dataset.train] == [
        (os.path.join("ant", "0.png"), 0), (os.path.join("ant", "1.png"), 0), (os.path.join("ant", "2.png"), 0),
        (os.path.join("bee", "0.png"), 1), (os.path.join("cat", "0.png"), 2), (os.path.join("cat", "1.png"), 2),
    ]  # fmt: skip
    write_image(str(tmp_path / "mine" / "val" / "cat" / "v.jpg"))
    dataset = build_dataset("class_folder:mine", str(tmp_path))
    assert [(os.path.basename(s.path), s.pid) for s in dataset.val] == [("v.jpg", 2)]
    os.makedirs(tmp_path / "mine" / "val" / "dog")
    with pytest.raises(DatasetLayoutError, match="train/ lacks: dog"):
        build_dataset("class_folder:mine", str(tmp_path))


def test_class_folder_layout_errors_show_the_tree(tmp_path):
    os.makedirs(tmp_path / "mine" / "train" / "empty")
    with pytest.raises(DatasetLayoutError, match=r"holds no images.*\nExpected layout:\n<root>/<folder>/"):
        build_dataset("class_folder:mine", str(tmp_path))
    with pytest.raises(DatasetLayoutError, match=r"(?s)folder .*other not found.*Expected layout"):
        build_dataset("class_folder:other", str(tmp_path))
