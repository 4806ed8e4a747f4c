import numpy as np
import pytest
import torch
from torch import nn

from reid_dff.evaluation import Features, extract_features


class TinyEmbedder(nn.Module):
    """Conv + BN + pooling: BN makes train and eval mode differ, the conv makes flips matter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm1d(6 * 2)
        self.bn.running_mean.uniform_(-1, 1)

    def forward(self, x):
        x = self.conv(x)
        x = torch.cat([x.mean(dim=(2, 3)), x[..., : x.shape[3] // 2].mean(dim=(2, 3))], dim=1)
        return self.bn(x)


def batches(num_images=10, batch_size=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(num_images, 3, 8, 4, generator=gen)
    out = []
    for start in range(0, num_images, batch_size):
        stop = min(start + batch_size, num_images)
        out.append(
            {
                "images": images[start:stop],
                "pids": torch.arange(start, stop),
                "camids": torch.arange(start, stop) % 2,
                "paths": [f"img_{i}.jpg" for i in range(start, stop)],
            }
        )
    return images, out


@pytest.mark.parametrize("flip", [False, True])
def test_features_equal_the_eval_mode_model_and_keep_labels_in_order(flip):
    model = TinyEmbedder().train()
    images, loader = batches()
    feats = extract_features(model, loader, "cpu", flip=flip)
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        expected = model(images)
        if flip:
            expected = (expected + model(torch.flip(images, dims=[3]))) / 2
    assert feats.feats.dtype == np.float32 and feats.feats.shape == (10, 12)
    np.testing.assert_allclose(feats.feats, expected.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(feats.pids, np.arange(10))
    np.testing.assert_array_equal(feats.camids, np.arange(10) % 2)
    assert feats.paths == [f"img_{i}.jpg" for i in range(10)]
    np.testing.assert_array_equal(feats.rows_of(["img_3.jpg", "img_0.jpg"]), [3, 0])


def test_flip_changes_the_features():
    _, loader = batches()
    plain = extract_features(TinyEmbedder(), loader, "cpu").feats
    flipped = extract_features(TinyEmbedder(), loader, "cpu", flip=True).feats
    assert not np.allclose(plain, flipped)


def test_batches_whose_images_were_all_skipped_are_passed_over():
    _, loader = batches()
    loader.insert(1, {"num_skipped": 4})
    assert len(extract_features(TinyEmbedder(), loader, "cpu")) == 10


def test_model_not_returning_embeddings_is_a_clear_error():
    _, loader = batches()
    with pytest.raises(ValueError, match=r"returned \(4, 3, 8, 4\) .* needs a \(B, D\) embedding"):
        extract_features(nn.Identity(), loader, "cpu")


def test_batch_without_the_expected_keys_is_a_clear_error():
    _, loader = batches()
    del loader[0]["camids"]
    with pytest.raises(KeyError, match=r"lacks \['camids'\].*build_test_loader"):
        extract_features(TinyEmbedder(), loader, "cpu")


def test_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="yielded no images"):
        extract_features(TinyEmbedder(), [], "cpu")


def test_rows_of_names_a_missing_path():
    feats = Features(
        np.zeros((1, 2), np.float32), ["a.jpg"], pids=np.zeros(1, np.int64), camids=np.zeros(1, np.int64)
    )
    with pytest.raises(KeyError, match="no feature was extracted for image b.jpg"):
        feats.rows_of(["a.jpg", "b.jpg"])
