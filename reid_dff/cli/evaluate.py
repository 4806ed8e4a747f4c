"""Evaluate a checkpoint on the configured targets; prints a Markdown table, writes OUTPUT_DIR/results.json.

Any MODEL.TASK: ReID checkpoints get retrieval metrics, classification (Office-Home) checkpoints top-1.

python tools/eval.py --config-file configs/ms_cs_c3_to_ma.yaml MODEL.WEIGHTS output/ma/best.pth
python tools/eval.py --config-file CFG MODEL.WEIGHTS ckpt.pth DATASETS.TARGETS "[viper, prid, grid, ilids]"
python tools/eval.py --config-file CFG MODEL.WEIGHTS ckpt.pth TEST.RERANK.ENABLED True TEST.METRIC euclidean

Each target's images are embedded once and reused over its splits (DATASETS.SPLIT_IDS for the small
targets). results.json holds every split's metrics, the split files' SHA-256, the resolved config and the
checkpoint's SHA-256 (schema: docs/evaluation.md); OUTPUT_DIR/config.yaml is the resolved config. When
OUTPUT_DIR holds a training run (a last.pth), the evaluation goes to OUTPUT_DIR/eval_<weights file stem>/
instead, so the run's own results.json and config.yaml stay (as with train_net.py --eval-only).
"""

import argparse
import sys

from reid_dff.cli.common import ConfigFileOnce, add_overrides, exit_on_user_error, parse_flags_first
from reid_dff.config import ConfigError, setup_cfg
from reid_dff.engine import eval_only_cfg, evaluate_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-eval`` / ``tools/eval.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE",
        action=ConfigFileOnce,
        help="YAML config (may use _BASE_)",
    )
    add_overrides(parser)
    return parse_flags_first(parser, argv)


def main(argv: list[str] | None = None) -> int:
    """Evaluate MODEL.WEIGHTS on the targets and write the report; 0 on success, exits 1 on a user error."""
    args = parse_args(argv)
    # Problems with the user's config, checkpoint or data get one clear line instead of a traceback.
    with exit_on_user_error("eval.py"):
        cfg = setup_cfg(args.config_file, args.opts)
        if not cfg.MODEL.WEIGHTS:
            raise ConfigError("nothing to evaluate: pass the checkpoint as MODEL.WEIGHTS path/to/model.pth")
        # Into a training run's folder: OUTPUT_DIR/eval_<weights>/, never over its files. The task of
        # MODEL.TASK (reid, classification) builds the model and prints its table.
        evaluate_checkpoint(eval_only_cfg(cfg))
    # The report is in OUTPUT_DIR/results.json; a shell (and console_scripts) needs an exit status.
    return 0


if __name__ == "__main__":
    sys.exit(main())
