"""Train a model from a config (MODEL.TASK: reid, or classification for Office-Home), or evaluate a checkpoint.

python tools/train_net.py --config-file configs/synthetic_demo.yaml
python tools/train_net.py --config-file configs/ms_cs_c3_to_ma.yaml OUTPUT_DIR output/ma SOLVER.BASE_LR 0.0007
python tools/train_net.py --config-file CFG --resume                   # continue OUTPUT_DIR/last.pth
python tools/train_net.py --config-file CFG --overwrite                # replace the run in OUTPUT_DIR
python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/ma/best.pth
torchrun --nproc_per_node=4 tools/train_net.py --config-file CFG      # DDP (NCCL on GPUs, gloo on CPU)
"""

import argparse
import sys

from reid_dff.cli.common import ConfigFileOnce, Remedies, add_overrides, exit_on_user_error, parse_flags_first
from reid_dff.config import setup_cfg
from reid_dff.data.image_check import BadImagesError
from reid_dff.engine import RunExistsError, Trainer, eval_only_cfg, evaluate_checkpoint, launch
from reid_dff.tasks import build_task

# One-line errors get the command-line remedy of their type.
REMEDIES: Remedies = {
    RunExistsError: "pass --resume to continue it, choose a fresh OUTPUT_DIR, or pass --overwrite to replace it",
    BadImagesError: "replace or delete them, or pass DATALOADER.ON_BAD_IMAGE skip to leave them out "
    "(with --resume too)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-train`` / ``tools/train_net.py``."""
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
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pth")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in an OUTPUT_DIR that holds one, deleting its checkpoints and results",
    )
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS on DATASETS.TARGETS")
    add_overrides(parser)
    args = parse_flags_first(parser, argv)
    if args.resume and args.eval_only:
        parser.error("--resume and --eval-only exclude each other")
    if args.overwrite and (args.resume or args.eval_only):
        parser.error("--overwrite starts a new training run; it excludes --resume and --eval-only")
    return args


def run(cfg, args):
    """One process's work (inside the torchrun process group when there is one)."""
    task = build_task(cfg)  # MODEL.TASK picks the data, model, evaluation and report
    if args.eval_only:
        return evaluate_checkpoint(eval_only_cfg(cfg))  # never over a training run's own results
    return Trainer(cfg, resume=args.resume, task=task, overwrite=args.overwrite).train()


def main(argv: list[str] | None = None) -> int:
    """Train (or ``--eval-only`` evaluate) from the command line; 0 on success, exits 1 on a user error."""
    args = parse_args(argv)
    # Problems with the user's config, files, data or run get one clear line instead of a traceback.
    with exit_on_user_error("train_net.py", REMEDIES):
        cfg = setup_cfg(args.config_file, args.opts)
        # The report is in OUTPUT_DIR/results.json; a shell (and console_scripts) needs an exit status.
        launch(run, cfg, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
