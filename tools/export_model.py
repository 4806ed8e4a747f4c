#!/usr/bin/env python
r"""Export a trained reid-dff model to ONNX for onnxruntime, TensorRT or a tracker that takes ReID models.

    python tools/export_model.py --weights output/x/model_final.pth --output model.onnx [--input 256 128]
        [--opset 20] [KEY VALUE ...]

The graph maps ``images`` (B, 3, H, W) float32 -- RGB, resized to H x W, (x / 255 - mean) / std -- to
``embeddings`` (B, D), the post-BNNeck feature the evaluator ranks, with a dynamic batch axis. The file's
metadata records the input size, pixel mean/std, metric, embedding size, backbone, DFF filter, the
checkpoint's SHA-256 and its config (see docs/deploy.md). Right after export onnxruntime runs the graph on
a random batch of another size; the file is written (atomically) only if its embeddings match PyTorch's
within --tolerance (relative). Needs the deploy extra: pip install -e ".[deploy]".
"""

import sys

# The code is reid_dff/cli/export_model.py, installed as the `reid-dff-export-model` command.
from reid_dff.cli.export_model import main

if __name__ == "__main__":
    sys.exit(main())
